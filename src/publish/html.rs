//! The pages people read: the front page (the newest stories) and `/status`
//! (every feed's health). Server-rendered, no scripts, no external assets;
//! everything shown is escaped.

use chrono::{DateTime, Utc};

use super::{Format, River, xml_safe};
use crate::model::Story;

/// Escapes for both text and double- or single-quoted attributes (& < > " ').
pub(crate) fn esc(s: &str) -> String {
    html_escape::encode_quoted_attribute(&xml_safe(s)).into_owned()
}

/// The front page: what this is, where the feed is, and the newest stories.
pub fn home_html(river: &River, stories: &[Story]) -> String {
    home_page(river, stories, None)
}

/// The front page, or one of its older pages; `older_url` links the next one.
pub fn home_page(river: &River, stories: &[Story], older_url: Option<&str>) -> String {
    river_page(river, stories, older_url, &Extras::default())
}

/// A named search as the front page lists it: name, query and feed address.
#[derive(Debug, Clone)]
pub struct SearchLink {
    pub name: String,
    pub query: String,
}

/// The front page with its list of named searches (`[[search]]`).
pub fn home_page_with_searches(
    river: &River,
    stories: &[Story],
    older_url: Option<&str>,
    searches: &[SearchLink],
) -> String {
    let extras = Extras {
        after_header: searches_list(river, searches),
        ..Extras::default()
    };
    river_page(river, stories, older_url, &extras)
}

/// `/search?q=`: the stories matching a query, or why the query was refused
/// (`error`), with the search box filled in.
pub fn search_page(
    river: &River,
    query: &str,
    stories: &[Story],
    older_url: Option<&str>,
    error: Option<&str>,
) -> String {
    let base = esc(&river.base_url);
    let q = form_value(query);
    let heading = if query.trim().is_empty() {
        "<h2 class=\"view\">Search</h2>\n<p>Words must all match; \"quoted phrases\", OR, -excluded, title:, author: and source: work too.</p>\n".to_string()
    } else if let Some(message) = error {
        format!(
            "<h2 class=\"view\">Search: {}</h2>\n<p class=\"error\">This query cannot be read: {}</p>\n",
            esc(query),
            esc(message)
        )
    } else {
        format!(
            "<h2 class=\"view\">Search: {}</h2>\n<p>Subscribe to this search: <a href=\"{base}search.atom?q={q}\">Atom</a>, <a href=\"{base}search.rss?q={q}\">RSS</a>, <a href=\"{base}search.json?q={q}\">JSON Feed</a>.</p>\n",
            esc(query)
        )
    };
    let extras = Extras {
        query: Some(query.to_string()),
        after_header: heading,
        empty: if query.trim().is_empty() || error.is_some() {
            String::new()
        } else {
            "<li>No stories match this query.</li>\n".to_string()
        },
        title_suffix: (!query.trim().is_empty()).then(|| format!("search: {query}")),
    };
    river_page(river, stories, older_url, &extras)
}

/// A query as the value of `?q=`, percent-encoded and then escaped for HTML.
fn form_value(query: &str) -> String {
    esc(&url::form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>())
}

/// The named searches, each with its feeds (on `/` and `/status`).
pub fn searches_list(river: &River, searches: &[SearchLink]) -> String {
    if searches.is_empty() {
        return String::new();
    }
    let base = esc(&river.base_url);
    let items: String = searches
        .iter()
        .map(|s| {
            let name = esc(&s.name);
            format!(
                "<li><a href=\"{base}searches/{name}/feed.atom\">{name}</a> <code>{}</code> (<a href=\"{base}searches/{name}/feed.rss\">RSS</a>, <a href=\"{base}searches/{name}/feed.json\">JSON</a>)</li>\n",
                esc(&s.query)
            )
        })
        .collect();
    format!(
        "<section class=\"searches\">\n<h2>Saved searches</h2>\n<ul>\n{items}</ul>\n</section>\n"
    )
}

/// The WebSub subscriptions, as a section of `/status` (none: empty).
pub fn websub_list(subs: &[crate::store::WebSubStatus]) -> String {
    if subs.is_empty() {
        return String::new();
    }
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or("never".to_string(), |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
    };
    let rows: String = subs
        .iter()
        .map(|s| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                esc(&s.url),
                if s.pushed { "pushed" } else { "polled" },
                esc(&s.hub),
                esc(&s.state),
                when(s.lease_end),
                when(s.last_push_at),
                esc(s.last_error.as_deref().unwrap_or("none")),
            )
        })
        .collect();
    format!(
        "<section class=\"websub\">\n<h2>WebSub</h2>\n<table>\n<tr><th>Feed</th><th>Pushed</th><th>Hub</th><th>State</th><th>Lease ends</th><th>Last push</th><th>Last error</th></tr>\n{rows}</table>\n</section>\n"
    )
}

/// What a page of stories shows besides the river itself.
#[derive(Debug, Default)]
struct Extras {
    /// The search box's value.
    query: Option<String>,
    /// Shown between the header and the stories.
    after_header: String,
    /// Shown instead of the stories when there are none (else the default).
    empty: String,
    /// Appended to the page title.
    title_suffix: Option<String>,
}

fn river_page(
    river: &River,
    stories: &[Story],
    older_url: Option<&str>,
    extras: &Extras,
) -> String {
    let mut items = String::new();
    for story in stories {
        let title = match &story.link {
            Some(href) => format!("<a href=\"{}\">{}</a>", esc(href), esc(&story.title)),
            None => esc(&story.title),
        };
        let when = story.published.unwrap_or(story.updated);
        let source = match &story.source.site_url {
            Some(site) => format!("<a href=\"{}\">{}</a>", esc(site), esc(&story.source.title)),
            None => esc(&story.source.title),
        };
        let byline = if story.author == story.source.title {
            String::new()
        } else {
            format!(" · {}", esc(&story.author))
        };
        // The other outlets that carried the story, each linked to its copy.
        let also = if story.also.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = story
                .also
                .iter()
                .map(|o| match o.link.as_ref().or(o.source.site_url.as_ref()) {
                    Some(href) => {
                        format!("<a href=\"{}\">{}</a>", esc(href), esc(&o.source.title))
                    }
                    None => esc(&o.source.title),
                })
                .collect();
            format!(
                "<p class=\"also\">Also reported by {}</p>",
                names.join(", ")
            )
        };
        items.push_str(&format!(
            "<li><h2>{title}</h2><p class=\"meta\">{source}{byline} · <time datetime=\"{}\">{}</time></p>{also}</li>\n",
            when.to_rfc3339(),
            when.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    if items.is_empty() && !extras.empty.is_empty() {
        items.push_str(&extras.empty);
    } else if items.is_empty() && extras.query.is_none() {
        items.push_str(
            "<li>No entries yet: the feeds have not been polled, or they are empty.</li>\n",
        );
    }
    let title = esc(&river.title);
    let page_title = match &extras.title_suffix {
        Some(suffix) => format!("{title} — {}", esc(suffix)),
        None => title.clone(),
    };
    let search_box = format!(
        "<form role=\"search\" method=\"get\" action=\"{}search\"><input type=\"search\" name=\"q\" value=\"{}\" maxlength=\"{}\" aria-label=\"Search the river\" placeholder=\"karabakh OR &quot;nagorno karabakh&quot; -sport\"> <button type=\"submit\">Search</button></form>\n",
        esc(&river.base_url),
        esc(extras.query.as_deref().unwrap_or_default()),
        crate::search::MAX_QUERY_CHARS
    );
    let after_header = &extras.after_header;
    let atom = esc(&river.atom_url());
    let discovery = discovery_links(river);
    let base = esc(&river.base_url);
    let older = older_url.map_or_else(String::new, |u| {
        format!(
            "<p><a rel=\"next\" href=\"{}\">Older stories →</a></p>\n",
            esc(u)
        )
    });
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{page_title}</title>
{discovery}<style>
body {{ font-family: system-ui, sans-serif; max-width: 46rem; margin: 0 auto; padding: 1rem; line-height: 1.45; color: #222; }}
ol {{ list-style: none; padding: 0; }}
li {{ border-bottom: 1px solid #ddd; padding: .6rem 0; }}
h2 {{ font-size: 1.05rem; margin: 0; }}
.meta {{ margin: .2rem 0 0; color: #555; font-size: .9rem; }}
.also {{ margin: .1rem 0 0; color: #555; font-size: .85rem; }}
a {{ color: #0645ad; }}
</style>
</head>
<body>
<header>
<h1>{title}</h1>
<p>A merged feed of many sources, republished by newsriver. Every entry names the outlet that first published it.
Subscribe: <a href="{atom}">{atom}</a> (Atom), or the same as <a href="{base}feed.rss">RSS</a> or <a href="{base}feed.json">JSON Feed</a>.
Feed health: <a href="{base}status">status</a>.</p>
{search_box}</header>
<main>
{after_header}<ol>
{items}</ol>
{older}
</main>
</body>
</html>
"#
    )
}

/// `<link rel="alternate">` for each format of the merged feed.
pub(crate) fn discovery_links(river: &River) -> String {
    Format::ALL
        .iter()
        .map(|f| {
            format!(
                "<link rel=\"alternate\" type=\"{}\" title=\"{} ({})\" href=\"{}{}\">\n",
                f.content_type(),
                esc(&river.title),
                f.label(),
                esc(&river.base_url),
                f.file_name()
            )
        })
        .collect()
}

pub(crate) fn time(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => format!(
            "<time datetime=\"{}\">{}</time>",
            t.to_rfc3339(),
            t.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        None => "never".to_string(),
    }
}

/// A tag as one URL path segment, percent-encoded.
pub fn path_segment(text: &str) -> String {
    let mut url = url::Url::parse("http://x/").expect("a constant URL parses");
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.push(text);
    }
    url.path().trim_start_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::fixtures::{outlet, river, story};

    #[test]
    fn home_page_escapes_what_it_shows() {
        let html = home_html(&river(), &[story("<script>alert(1)</script>")]);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;"), "{html}");
        assert!(html.contains("News &amp; Co"));
        for t in [
            "application/atom+xml",
            "application/rss+xml",
            "application/feed+json",
        ] {
            assert!(
                html.contains(&format!(r#"<link rel="alternate" type="{t}""#)),
                "{t}"
            );
        }
    }

    #[test]
    fn home_page_lists_the_other_outlets_of_a_story() {
        let mut s = story("Port strike ends");
        s.also.push(outlet(
            &s,
            "Harbour <Gazette>",
            Some("https://harbour.example/port?a=1&b=2"),
            "Port strike ends",
            "Meridian Wire",
        ));
        let mut courier = outlet(&s, "Courier", None, "Port strike ends", "Courier");
        courier.source.site_url = None;
        s.also.push(courier);
        let html = home_html(&river(), &[s, story("alone")]);
        assert!(
            html.contains("<p class=\"also\">Also reported by <a href=\"https://harbour.example/port?a=1&amp;b=2\">Harbour &lt;Gazette&gt;</a>, Courier</p>"),
            "{html}"
        );
        assert_eq!(html.matches("Also reported by").count(), 1);
    }
}
