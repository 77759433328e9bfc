//! The merged feed as Atom 1.0 (RFC 4287), with `<source>` on every entry.

use atom_syndication::{
    Content, Entry, Feed, FixedDateTime, Generator, Link, Person, Source as AtomSource, Text,
};
use chrono::{DateTime, Utc};

use super::{FeedDoc, River, river_updated, xml_safe};
use crate::model::Story;

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

/// The merged feed as an Atom 1.0 document (its first page).
pub fn atom(river: &River, stories: &[Story]) -> String {
    atom_page(&FeedDoc::river_atom(river), stories)
}

/// One page of a view as an Atom 1.0 document, with RFC 5005 paging links.
pub fn atom_page(doc: &FeedDoc, stories: &[Story]) -> String {
    let mut links = vec![
        link(&doc.self_url, "self", Some("application/atom+xml"), None),
        link(&doc.html_url, "alternate", Some("text/html"), None),
    ];
    let paging = [
        ("first", Some(&doc.first_url)),
        ("next", doc.next_url.as_ref()),
        ("previous", doc.previous_url.as_ref()),
    ];
    for (rel, href) in paging {
        if let Some(href) = href {
            links.push(link(href, rel, Some("application/atom+xml"), None));
        }
    }
    let mut feed = Feed {
        id: xml_safe(&doc.id),
        title: Text::plain(xml_safe(&doc.title)),
        subtitle: Some(Text::plain(xml_safe(&doc.description))),
        updated: date(river_updated(stories)),
        links,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::fixtures::{river, story};

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
}
