//! A view as RSS 2.0: `<source url>` names the outlet, `dc:creator` the author,
//! `guid isPermaLink="false"` carries the permanent id, and `atom:link` gives the
//! self reference and RFC 5005 paging links.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rss::extension::atom::{AtomExtension, Link};
use rss::extension::dublincore::DublinCoreExtension;
use rss::{Channel, Guid, Item, Source};

use super::{FeedDoc, river_updated, xml_safe};
use crate::model::Story;

/// RFC 822 dates, as RSS 2.0 requires ("Fri, 20 Nov 2026 10:00:00 +0000").
fn date(d: DateTime<Utc>) -> String {
    d.to_rfc2822()
}

fn atom_link(href: &str, rel: &str) -> Link {
    Link {
        href: xml_safe(href),
        rel: rel.to_string(),
        mime_type: Some("application/rss+xml".into()),
        ..Default::default()
    }
}

/// One page of a view as an RSS 2.0 document.
pub fn rss(doc: &FeedDoc, stories: &[Story]) -> String {
    let mut links = vec![
        atom_link(&doc.self_url, "self"),
        atom_link(&doc.first_url, "first"),
    ];
    if let Some(next) = &doc.next_url {
        links.push(atom_link(next, "next"));
    }
    if let Some(previous) = &doc.previous_url {
        links.push(atom_link(previous, "previous"));
    }
    if let Some(hub) = &doc.hub {
        links.push(atom_link(hub, "hub"));
    }
    let channel = Channel {
        title: xml_safe(&doc.title),
        link: xml_safe(&doc.html_url),
        description: xml_safe(&doc.description),
        last_build_date: Some(date(river_updated(stories))),
        generator: Some(format!("newsriver {}", env!("CARGO_PKG_VERSION"))),
        docs: Some("https://www.rssboard.org/rss-specification".into()),
        atom_ext: Some(AtomExtension { links }),
        items: stories
            .iter()
            .map(|s| rss_item(s, doc.attribution.as_deref()))
            .collect(),
        namespaces: BTreeMap::new(),
        ..Default::default()
    };
    channel.to_string()
}

fn rss_item(story: &Story, attribution: Option<&str>) -> Item {
    let html = |s: &str| xml_safe(s);
    // RSS has room for one `<source>`: the other outlets of a story and the
    // attribution notice go in the text, after the text they belong to
    // (content:encoded, else the description).
    let extra = super::attribution::attribution_html(story, attribution).unwrap_or_default();
    let with_extra = |s: &str| html(&format!("{s}{extra}"));
    // description carries the short form; content:encoded the full text when
    // there is both.
    let (description, content) = match (&story.summary, &story.content) {
        (Some(summary), Some(content)) => (Some(html(summary)), Some(with_extra(content))),
        (Some(only), None) | (None, Some(only)) => (Some(with_extra(only)), None),
        (None, None) if story.link.is_none() => (
            Some(with_extra(&html_escape::encode_text(&xml_safe(
                &story.title,
            )))),
            None,
        ),
        (None, None) if !extra.is_empty() => (Some(html(&extra)), None),
        (None, None) => (None, None),
    };
    let mut dc = DublinCoreExtension {
        creators: vec![xml_safe(&story.author)],
        ..Default::default()
    };
    if let Some(rights) = &story.rights {
        dc.rights.push(xml_safe(rights));
    }
    Item {
        title: Some(xml_safe(&story.title)),
        link: story.link.as_deref().map(xml_safe),
        description,
        content,
        guid: Some(Guid {
            value: xml_safe(&story.uid),
            permalink: false,
        }),
        pub_date: Some(date(story.published.unwrap_or(story.updated))),
        source: Some(Source {
            url: xml_safe(&story.source.feed_url),
            title: Some(xml_safe(&story.source.title)),
        }),
        dublin_core_ext: Some(dc),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::fixtures::{outlet, story};

    fn doc() -> FeedDoc {
        FeedDoc {
            id: "urn:uuid:00000000-0000-8000-8000-00000000000a".into(),
            title: "River".into(),
            description: "d".into(),
            self_url: "http://127.0.0.1:1/feed.rss?before=5.1".into(),
            first_url: "http://127.0.0.1:1/feed.rss".into(),
            html_url: "http://127.0.0.1:1/".into(),
            next_url: Some("http://127.0.0.1:1/feed.rss?before=3.1".into()),
            previous_url: Some("http://127.0.0.1:1/feed.rss?after=4.1".into()),
            attribution: None,
            hub: None,
        }
    }

    #[test]
    fn rss_round_trips_with_source_creator_guid_and_paging() {
        let xml = rss(&doc(), &[story("Bell\u{7} rings <loud>")]);
        let channel: Channel = xml.parse().expect("well-formed RSS");
        let item = &channel.items[0];
        assert_eq!(item.title.as_deref(), Some("Bell rings <loud>"));
        assert_eq!(item.link.as_deref(), Some("https://news.example/a?x=1&y=2"));
        let guid = item.guid.as_ref().unwrap();
        assert_eq!(guid.value, "urn:uuid:00000000-0000-8000-8000-000000000001");
        assert!(!guid.permalink);
        assert!(xml.contains(r#"<guid isPermaLink="false">"#), "{xml}");
        let source = item.source.as_ref().unwrap();
        assert_eq!(source.url, "https://news.example/feed");
        assert_eq!(source.title.as_deref(), Some("News & Co"));
        let dc = item.dublin_core_ext.as_ref().unwrap();
        assert_eq!(dc.creators, ["Ann Writer"]);
        assert!(
            item.author.is_none(),
            "RSS <author> must be an e-mail address"
        );
        DateTime::parse_from_rfc2822(item.pub_date.as_deref().unwrap()).unwrap();
        let links = &channel.atom_ext.as_ref().unwrap().links;
        let rel = |r: &str| links.iter().find(|l| l.rel == r).map(|l| l.href.as_str());
        assert_eq!(rel("self"), Some("http://127.0.0.1:1/feed.rss?before=5.1"));
        assert_eq!(rel("first"), Some("http://127.0.0.1:1/feed.rss"));
        assert_eq!(rel("next"), Some("http://127.0.0.1:1/feed.rss?before=3.1"));
        assert_eq!(
            rel("previous"),
            Some("http://127.0.0.1:1/feed.rss?after=4.1")
        );
        assert!(xml.contains(r#"xmlns:atom="http://www.w3.org/2005/Atom""#));
        assert!(xml.contains(r#"xmlns:dc="http://purl.org/dc/elements/1.1/""#));
    }

    #[test]
    fn other_outlets_and_the_notice_follow_the_text_with_one_source() {
        let mut s = story("Port strike ends");
        s.also.push(outlet(
            &s,
            "Harbour Gazette",
            Some("https://harbour.example/port"),
            "Port strike ends",
            "Meridian Wire",
        ));
        let mut d = doc();
        d.attribution = Some("Originally published by {source}.".into());
        let xml = rss(&d, &[s.clone()]);
        let channel: Channel = xml.parse().expect("well-formed RSS");
        let item = &channel.items[0];
        assert_eq!(
            item.description.as_deref(),
            Some(
                "<p>Sum</p><p class=\"newsriver-also\">Also reported by <a href=\"https://harbour.example/port\">Harbour Gazette</a>.</p><p class=\"newsriver-attribution\">Originally published by News &amp; Co.</p>"
            )
        );
        assert_eq!(
            item.source.as_ref().unwrap().title.as_deref(),
            Some("News & Co")
        );
        assert_eq!(xml.matches("<source").count(), 1, "{xml}");
        // With full content, the summary stays short and the content carries it.
        s.content = Some("<p>Full</p>".into());
        let channel: Channel = rss(&d, &[s]).parse().unwrap();
        let item = &channel.items[0];
        assert_eq!(item.description.as_deref(), Some("<p>Sum</p>"));
        let content = item.content.as_deref().unwrap();
        assert!(
            content.starts_with("<p>Full</p><p class=\"newsriver-also\">Also reported by"),
            "{content}"
        );
    }
}
