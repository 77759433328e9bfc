//! Provenance added to an entry's content, for readers that ignore `<source>`:
//! an "Also reported by A, B" line for a story carried by several outlets, and
//! the optional `[output] attribution` notice. Shared by every output format.

use super::xml_safe;
use crate::model::Story;

fn esc(s: &str) -> String {
    html_escape::encode_text(&xml_safe(s)).into_owned()
}

fn attr(s: &str) -> String {
    html_escape::encode_double_quoted_attribute(&xml_safe(s)).into_owned()
}

/// "Also reported by A, B", each outlet linked to its copy; `None` for a
/// story with a single outlet.
pub fn also_reported_html(story: &Story) -> Option<String> {
    if story.also.is_empty() {
        return None;
    }
    let names: Vec<String> = story
        .also
        .iter()
        .map(|o| {
            let href = o.link.as_ref().or(o.source.site_url.as_ref());
            match href {
                Some(href) => format!("<a href=\"{}\">{}</a>", attr(href), esc(&o.source.title)),
                None => esc(&o.source.title),
            }
        })
        .collect();
    Some(format!(
        "<p class=\"newsriver-also\">Also reported by {}.</p>",
        names.join(", ")
    ))
}

/// The attribution notice: `template` with `{source}`, `{published}`,
/// `{link}`, `{author}` and `{title}` filled in from the primary copy.
pub fn notice(template: &str, story: &Story) -> String {
    let published = story
        .published
        .unwrap_or(story.updated)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string();
    let link = story
        .link
        .as_deref()
        .or(story.source.site_url.as_deref())
        .unwrap_or(&story.source.feed_url);
    // One pass, so a value that itself contains "{link}" is not expanded again.
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let v = match &after[..close] {
                "source" => story.source.title.as_str(),
                "published" => published.as_str(),
                "link" => link,
                "author" => story.author.as_str(),
                "title" => story.title.as_str(),
                _ => return None,
            };
            Some((v, close))
        });
        match value {
            Some((v, close)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The HTML appended to a story's content: the "also reported" line and the
/// notice, if any.
pub fn attribution_html(story: &Story, template: Option<&str>) -> Option<String> {
    let mut html = also_reported_html(story).unwrap_or_default();
    if let Some(template) = template {
        html.push_str(&format!(
            "<p class=\"newsriver-attribution\">{}</p>",
            esc(&notice(template, story))
        ));
    }
    (!html.is_empty()).then_some(html)
}

/// The story's content (or, without content, its summary) with the
/// attribution appended; `None` when there is nothing to show.
pub fn content_with_attribution(story: &Story, template: Option<&str>) -> Option<String> {
    let body = story.content.as_deref().or(story.summary.as_deref());
    match (body, attribution_html(story, template)) {
        (Some(body), Some(extra)) => Some(format!("{body}{extra}")),
        (Some(body), None) => Some(body.to_string()),
        (None, extra) => extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::fixtures::{outlet, story};

    fn with_outlets() -> Story {
        let mut s = story("Port strike ends");
        s.also.push(outlet(
            &s,
            "Harbour <Gazette>",
            Some("https://harbour.example/a?x=1&y=2"),
            "Port strike ends | HG",
            "Meridian Wire",
        ));
        s
    }

    #[test]
    fn also_reported_names_and_links_each_other_outlet() {
        let html = also_reported_html(&with_outlets()).unwrap();
        assert_eq!(
            html,
            "<p class=\"newsriver-also\">Also reported by <a href=\"https://harbour.example/a?x=1&amp;y=2\">Harbour &lt;Gazette&gt;</a>.</p>"
        );
        assert_eq!(also_reported_html(&story("alone")), None);
    }

    #[test]
    fn the_notice_fills_every_placeholder_once() {
        let s = story("T");
        assert_eq!(
            notice(
                "Originally published by {source} on {published}: {link}. {author}/{title} {x}",
                &s
            ),
            "Originally published by News & Co on 2026-11-20 10:00 UTC: https://news.example/a?x=1&y=2. Ann Writer/T {x}"
        );
        let content = content_with_attribution(&s, Some("From {source}")).unwrap();
        assert_eq!(
            content,
            "<p>Sum</p><p class=\"newsriver-attribution\">From News &amp; Co</p>"
        );
        assert_eq!(
            content_with_attribution(&s, None).as_deref(),
            Some("<p>Sum</p>")
        );
    }
}
