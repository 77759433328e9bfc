//! Stored stories → documents: the merged Atom feed and the HTML front page.

use atom_syndication::{
    Content, Entry, Feed, FixedDateTime, Generator, Link, Person, Source as AtomSource, Text,
};
use chrono::{DateTime, Utc};

use crate::model::Story;

/// The merged feed's own identity and addresses.
#[derive(Debug, Clone)]
pub struct River {
    /// Permanent id of the merged feed.
    pub id: String,
    pub title: String,
    /// Absolute URL of the service's root, ending in '/'.
    pub base_url: String,
}

impl River {
    pub fn atom_url(&self) -> String {
        format!("{}feed.atom", self.base_url)
    }
}

/// Removes characters that XML 1.0 does not allow; sources do send them.
pub fn xml_safe(s: &str) -> String {
    s.chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
        .collect()
}

fn date(d: DateTime<Utc>) -> FixedDateTime {
    d.fixed_offset()
}

fn link(href: &str, rel: &str, mime: Option<&str>, title: Option<&str>) -> Link {
    Link {
        href: xml_safe(href),
        rel: rel.to_string(),
        mime_type: mime.map(str::to_string),
        title: title.map(xml_safe),
        ..Default::default()
    }
}

/// The newest time anything in the river changed.
pub fn river_updated(stories: &[Story]) -> DateTime<Utc> {
    stories
        .iter()
        .map(|s| s.updated)
        .max()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// The merged feed as an Atom 1.0 document.
pub fn atom(river: &River, stories: &[Story]) -> String {
    let mut feed = Feed {
        id: river.id.clone(),
        title: Text::plain(xml_safe(&river.title)),
        updated: date(river_updated(stories)),
        links: vec![
            link(
                &river.atom_url(),
                "self",
                Some("application/atom+xml"),
                None,
            ),
            link(&river.base_url, "alternate", Some("text/html"), None),
        ],
        generator: Some(Generator {
            value: "newsriver".into(),
            uri: None,
            version: Some(env!("CARGO_PKG_VERSION").into()),
        }),
        ..Default::default()
    };
    feed.set_entries(stories.iter().map(atom_entry).collect::<Vec<_>>());
    feed.to_string()
}

fn atom_entry(story: &Story) -> Entry {
    let source = &story.source;
    let mut source_links = vec![link(&source.feed_url, "self", None, None)];
    if let Some(site) = &source.site_url {
        source_links.push(link(site, "alternate", Some("text/html"), None));
    }
    let atom_source = AtomSource {
        id: xml_safe(&source.id),
        title: Text::plain(xml_safe(&source.title)),
        updated: date(source.updated),
        links: source_links,
        rights: source.rights.as_deref().map(|r| Text::plain(xml_safe(r))),
        ..Default::default()
    };
    let mut entry = Entry {
        id: story.uid.clone(),
        title: Text::plain(xml_safe(&story.title)),
        updated: date(story.updated),
        published: story.published.map(date),
        authors: vec![Person {
            name: xml_safe(&story.author),
            ..Default::default()
        }],
        rights: story.rights.as_deref().map(|r| Text::plain(xml_safe(r))),
        source: Some(atom_source),
        summary: story.summary.as_deref().map(|s| Text::html(xml_safe(s))),
        ..Default::default()
    };
    if let Some(href) = &story.link {
        entry
            .links
            .push(link(href, "alternate", Some("text/html"), None));
    }
    if let Some(content) = &story.content {
        entry.content = Some(Content {
            value: Some(xml_safe(content)),
            content_type: Some("html".into()),
            ..Default::default()
        });
    } else if story.summary.is_none() && story.link.is_none() {
        // Atom wants content or an alternate link; the title is all there is.
        entry.summary = Some(Text::plain(xml_safe(&story.title)));
    }
    entry
}

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
    use crate::model::Source;

    fn story(title: &str) -> Story {
        let t = DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
            .unwrap()
            .to_utc();
        Story {
            uid: "urn:uuid:00000000-0000-8000-8000-000000000001".into(),
            title: title.into(),
            link: Some("https://news.example/a?x=1&y=2".into()),
            author: "Ann Writer".into(),
            summary: Some("<p>Sum</p>".into()),
            content: None,
            rights: None,
            published: Some(t),
            updated: t,
            source: Source {
                id: "https://news.example/feed".into(),
                title: "News & Co".into(),
                feed_url: "https://news.example/feed".into(),
                site_url: Some("https://news.example/".into()),
                rights: Some("© News".into()),
                updated: t,
            },
        }
    }

    fn river() -> River {
        River {
            id: "urn:uuid:00000000-0000-8000-8000-00000000000a".into(),
            title: "River".into(),
            base_url: "http://127.0.0.1:1/".into(),
        }
    }

    #[test]
    fn atom_round_trips_with_source_and_control_chars_removed() {
        let xml = atom(&river(), &[story("Bell\u{7} rings <loud>")]);
        let feed: Feed = xml.parse().expect("well-formed Atom");
        let entry = &feed.entries[0];
        assert_eq!(entry.title.value, "Bell rings <loud>");
        assert_eq!(entry.links[0].rel, "alternate");
        assert_eq!(entry.links[0].href, "https://news.example/a?x=1&y=2");
        let source = entry.source.as_ref().unwrap();
        assert_eq!(source.title.value, "News & Co");
        assert_eq!(source.rights.as_ref().unwrap().value, "© News");
        assert!(
            source
                .links
                .iter()
                .any(|l| l.rel == "self" && l.href == "https://news.example/feed")
        );
        assert!(
            feed.links
                .iter()
                .any(|l| l.rel == "self" && l.href == "http://127.0.0.1:1/feed.atom")
        );
    }

    #[test]
    fn home_page_escapes_what_it_shows() {
        let html = home_html(&river(), &[story("<script>alert(1)</script>")]);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;"), "{html}");
        assert!(html.contains("News &amp; Co"));
        assert!(html.contains(r#"<link rel="alternate" type="application/atom+xml""#));
    }
}
