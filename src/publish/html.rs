//! The front page: what this service is, where its feed is, the newest stories.

use super::{River, xml_safe};
use crate::model::Story;

fn esc(s: &str) -> String {
    html_escape::encode_safe(&xml_safe(s)).into_owned()
}

/// The front page: what this is, where the feed is, and the newest stories.
pub fn home_html(river: &River, stories: &[Story]) -> String {
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
        items.push_str(&format!(
            "<li><h2>{title}</h2><p class=\"meta\">{source}{byline} · <time datetime=\"{}\">{}</time></p></li>\n",
            when.to_rfc3339(),
            when.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    if items.is_empty() {
        items.push_str(
            "<li>No entries yet: the feeds have not been polled, or they are empty.</li>\n",
        );
    }
    let title = esc(&river.title);
    let atom = esc(&river.atom_url());
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="alternate" type="application/atom+xml" title="{title}" href="{atom}">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 46rem; margin: 0 auto; padding: 1rem; line-height: 1.45; color: #222; }}
ol {{ list-style: none; padding: 0; }}
li {{ border-bottom: 1px solid #ddd; padding: .6rem 0; }}
h2 {{ font-size: 1.05rem; margin: 0; }}
.meta {{ margin: .2rem 0 0; color: #555; font-size: .9rem; }}
a {{ color: #0645ad; }}
</style>
</head>
<body>
<header>
<h1>{title}</h1>
<p>A merged feed of many sources, republished by newsriver. Every entry names the outlet that first published it.
Subscribe: <a href="{atom}">{atom}</a> (Atom).</p>
</header>
<main>
<ol>
{items}</ol>
</main>
</body>
</html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::fixtures::{river, story};

    #[test]
    fn home_page_escapes_what_it_shows() {
        let html = home_html(&river(), &[story("<script>alert(1)</script>")]);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;"), "{html}");
        assert!(html.contains("News &amp; Co"));
        assert!(html.contains(r#"<link rel="alternate" type="application/atom+xml""#));
    }
}
