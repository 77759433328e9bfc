//! Before feed-rs sees a document: bound its nesting, read the polling hints
//! feed-rs does not expose (sy:*, skipHours, skipDays), and rewrite the legacy
//! formats feed-rs 3 gets wrong (versionless RSS, RSS 0.93/0.94, Atom 0.3).

use std::borrow::Cow;
use std::time::Duration;

use quick_xml::events::Event;

use crate::model::FeedHints;

/// Deeper nesting than any real feed has; beyond it a document is refused
/// before a recursive parser could exhaust the stack.
pub const MAX_DEPTH: usize = 128;

/// Atom 0.3's namespace; feed-rs reads such feeds as Atom 1.0 with no entries.
const ATOM_03_NS: &str = "http://purl.org/atom/ns#";
const ATOM_10_NS: &str = "http://www.w3.org/2005/Atom";

#[derive(Debug, thiserror::Error)]
#[error("XML nested deeper than {MAX_DEPTH} elements")]
pub struct TooDeep;

/// Scans `text` once: hints, depth check, and the root element's name and
/// attributes for the legacy rewrites. XML errors end the scan quietly; feed-rs
/// reports them.
pub fn prepare(text: &str) -> Result<(Cow<'_, str>, FeedHints), TooDeep> {
    if text.starts_with('{') {
        return Ok((Cow::Borrowed(text), FeedHints::default()));
    }
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut root: Option<(String, std::ops::Range<usize>)> = None;
    let mut path: Vec<String> = Vec::new();
    let mut hints = FeedHints::default();
    let mut frequency: Option<u32> = None;
    let mut period: Option<u64> = None;
    loop {
        let before = reader.buffer_position() as usize;
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(TooDeep);
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).to_ascii_lowercase();
                if root.is_none() {
                    root = Some((name.clone(), before..reader.buffer_position() as usize));
                }
                path.push(name);
            }
            Ok(Event::Empty(e)) => {
                if root.is_none() {
                    let name =
                        String::from_utf8_lossy(e.local_name().as_ref()).to_ascii_lowercase();
                    root = Some((name, before..reader.buffer_position() as usize));
                }
            }
            Ok(Event::End(_)) => {
                depth = depth.saturating_sub(1);
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let value = t.xml10_content().unwrap_or_default();
                let value = value.trim();
                let last = path.last().map(String::as_str);
                let parent = path.len().checked_sub(2).map(|i| path[i].as_str());
                // Only channel-level elements count, not an item's.
                let in_item = path.iter().any(|p| p == "item" || p == "entry");
                if in_item {
                    continue;
                }
                match (parent, last) {
                    (_, Some("ttl")) => {
                        hints.ttl = value
                            .parse::<u64>()
                            .ok()
                            .filter(|m| *m > 0)
                            .map(|m| Duration::from_secs(m.min(60 * 24 * 365) * 60));
                    }
                    (_, Some("updateperiod")) => {
                        period = match value.to_ascii_lowercase().as_str() {
                            "hourly" => Some(3600),
                            "daily" => Some(86400),
                            "weekly" => Some(7 * 86400),
                            "monthly" => Some(30 * 86400),
                            "yearly" => Some(365 * 86400),
                            _ => None,
                        };
                    }
                    (_, Some("updatefrequency")) => {
                        frequency = value.parse().ok().filter(|f| *f > 0);
                    }
                    (Some("skiphours"), Some("hour")) => {
                        // RSS says 0–23; some write 24 for midnight.
                        if let Ok(h) = value.parse::<u32>()
                            && h <= 24
                        {
                            hints.skip.hours |= 1 << (h % 24);
                        }
                    }
                    (Some("skipdays"), Some("day")) => {
                        if let Some(d) = day_index(value) {
                            hints.skip.days |= 1 << d;
                        }
                    }
                    _ => {}
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    if let Some(p) = period {
        let per = u64::from(frequency.unwrap_or(1));
        hints.update_period = Some(Duration::from_secs(p / per));
    }
    if hints.skip.hours == (1 << 24) - 1 {
        // Skipping every hour would mean never polling: ignore it.
        hints.skip.hours = 0;
    }
    if hints.skip.days == 0x7f {
        hints.skip.days = 0;
    }
    let text = match root {
        Some((name, span)) => rewrite_legacy(text, &name, span),
        None => Cow::Borrowed(text),
    };
    Ok((text, hints))
}

fn day_index(day: &str) -> Option<u8> {
    let days = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let day = day.to_ascii_lowercase();
    days.iter().position(|d| *d == day).map(|i| i as u8)
}

/// Rewrites what feed-rs mishandles into what it reads well.
fn rewrite_legacy<'a>(text: &'a str, root: &str, span: std::ops::Range<usize>) -> Cow<'a, str> {
    let Some(tag) = text.get(span.clone()) else {
        return Cow::Borrowed(text);
    };
    match root {
        "rss" => {
            let version = attribute(tag, "version");
            if version.as_deref() == Some("2.0") || version.as_deref() == Some("0.91") {
                return Cow::Borrowed(text);
            }
            // Versionless, 0.92, 0.93, 0.94: all RSS 2.0 subsets as far as
            // reading goes.
            let rewritten = match version {
                Some(v) => tag.replacen(&format!("\"{v}\""), "\"2.0\"", 1).replacen(
                    &format!("'{v}'"),
                    "'2.0'",
                    1,
                ),
                None => tag.replacen("<rss", "<rss version=\"2.0\"", 1),
            };
            Cow::Owned(format!(
                "{}{}{}",
                &text[..span.start],
                rewritten,
                &text[span.end..]
            ))
        }
        "feed" if tag.contains(ATOM_03_NS) => Cow::Owned(atom_03_to_10(text)),
        _ => Cow::Borrowed(text),
    }
}

/// The value of attribute `name` in a start tag, either quote.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let mut rest = tag;
    while let Some(at) = rest.find(name) {
        let preceded_by_space = rest[..at].chars().last().is_some_and(char::is_whitespace);
        let after = rest[at + name.len()..].trim_start();
        if preceded_by_space && let Some(value) = after.strip_prefix('=') {
            let value = value.trim_start();
            let quote = value.chars().next()?;
            if quote == '"' || quote == '\'' {
                let inner = &value[1..];
                return Some(inner[..inner.find(quote)?].to_string());
            }
        }
        rest = &rest[at + name.len()..];
    }
    None
}

/// Atom 0.3 → 1.0: the namespace, and the elements that were renamed.
/// `mode="escaped"` content is what Atom 1.0 calls `type="html"`.
fn atom_03_to_10(text: &str) -> String {
    let mut out = text.replace(ATOM_03_NS, ATOM_10_NS);
    for (old, new) in [
        ("issued", "published"),
        ("modified", "updated"),
        ("tagline", "subtitle"),
        ("copyright", "rights"),
    ] {
        out = out
            .replace(&format!("<{old}>"), &format!("<{new}>"))
            .replace(&format!("<{old} "), &format!("<{new} "))
            .replace(&format!("</{old}>"), &format!("</{new}>"));
    }
    out.replace("mode=\"escaped\"", "")
        .replace("type=\"text/html\"", "type=\"html\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_read_from_the_channel_only() {
        let text = r#"<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel>
            <ttl>90</ttl><sy:updatePeriod>daily</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>
            <skipHours><hour>0</hour><hour>23</hour></skipHours><skipDays><day>Sunday</day></skipDays>
            <item><ttl>5</ttl></item></channel></rss>"#;
        let (_, hints) = prepare(text).unwrap();
        assert_eq!(hints.ttl, Some(Duration::from_secs(90 * 60)));
        assert_eq!(hints.update_period, Some(Duration::from_secs(6 * 3600)));
        assert_eq!(hints.skip.hours, 1 | 1 << 23);
        assert_eq!(hints.skip.days, 1 << 6);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!(
            "<rss version=\"2.0\">{}{}</rss>",
            "<a>".repeat(10_000),
            "</a>".repeat(10_000)
        );
        assert!(prepare(&deep).is_err());
        let fine = format!("<rss>{}{}</rss>", "<a>".repeat(50), "</a>".repeat(50));
        assert!(prepare(&fine).is_ok());
    }

    #[test]
    fn rss_versions_feed_rs_refuses_are_rewritten() {
        let (text, _) = prepare("<rss><channel/></rss>").unwrap();
        assert_eq!(text, "<rss version=\"2.0\"><channel/></rss>");
        let (text, _) =
            prepare("<?xml version='1.0'?>\n<rss version='0.93' a=\"b\"><channel/></rss>").unwrap();
        assert!(text.contains("<rss version='2.0' a=\"b\">"), "{text}");
        let (text, _) = prepare("<rss version=\"2.0\"><channel/></rss>").unwrap();
        assert!(matches!(text, Cow::Borrowed(_)));
    }
}

#[cfg(test)]
mod format_gaps {
    //! The feed-rs 3 gaps listed in DESIGN.md, through the whole parse.
    use crate::identity;
    use crate::parse::parse;

    const ATOM_03: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed version="0.3" xmlns="http://purl.org/atom/ns#" xml:lang="en">
  <title>Old Atom</title>
  <link rel="alternate" type="text/html" href="http://old.example/"/>
  <tagline>still here</tagline>
  <modified>2026-11-20T10:00:00Z</modified>
  <entry>
    <title>First</title>
    <link rel="alternate" type="text/html" href="http://old.example/1"/>
    <id>tag:old.example,2026:1</id>
    <issued>2026-11-19T09:00:00Z</issued>
    <modified>2026-11-19T10:00:00Z</modified>
    <content type="text/html" mode="escaped">&lt;p&gt;Hello &lt;b&gt;there&lt;/b&gt;&lt;/p&gt;</content>
  </entry>
  <entry>
    <title>Second</title>
    <link rel="alternate" type="text/html" href="http://old.example/2"/>
    <id>tag:old.example,2026:2</id>
    <issued>2026-11-20T09:00:00Z</issued>
    <summary>Short</summary>
  </entry>
</feed>"#;

    #[test]
    fn atom_03_yields_its_entries_with_dates_and_content() {
        let feed = parse(ATOM_03.as_bytes(), None, "http://old.example/atom").unwrap();
        assert_eq!(feed.meta.title.as_deref(), Some("Old Atom"));
        assert_eq!(feed.entries.len(), 2);
        let first = &feed.entries[0];
        assert_eq!(first.title, "First");
        assert_eq!(first.guid.as_deref(), Some("tag:old.example,2026:1"));
        assert_eq!(first.link.as_deref(), Some("http://old.example/1"));
        assert_eq!(
            first.published.map(|d| d.to_rfc3339()),
            Some("2026-11-19T09:00:00+00:00".into())
        );
        assert_eq!(
            first.updated.map(|d| d.to_rfc3339()),
            Some("2026-11-19T10:00:00+00:00".into())
        );
        let content = first.content.as_deref().unwrap_or("");
        assert!(content.contains("<b>there</b>"), "{content:?}");
    }

    #[test]
    fn versionless_and_0_93_rss_parse() {
        for root in [
            "<rss>",
            "<rss version=\"0.93\">",
            "<rss version='0.94'>",
            "<rss version=\"0.92\">",
        ] {
            let body = format!(
                "<?xml version=\"1.0\"?>{root}<channel><title>T</title><item><title>A</title><link>http://a.example/1</link></item></channel></rss>"
            );
            let feed = parse(body.as_bytes(), None, "http://a.example/")
                .unwrap_or_else(|e| panic!("{root}: {e}"));
            assert_eq!(feed.entries.len(), 1, "{root}");
            assert_eq!(feed.entries[0].title, "A");
        }
    }

    #[test]
    fn entries_without_guid_or_link_keep_their_identity_across_polls() {
        let body = r#"<rss version="2.0"><channel><title>T</title>
            <item><title>No id</title><description>Body one</description></item>
            <item><title>No id either</title><description>Body two</description></item>
            </channel></rss>"#;
        let keys = || -> Vec<String> {
            let feed = parse(body.as_bytes(), None, "http://a.example/").unwrap();
            identity::identify(feed.entries)
                .into_iter()
                .map(|e| e.key)
                .collect()
        };
        let first = keys();
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|k| k.starts_with("hash:")), "{first:?}");
        assert_eq!(first, keys());
    }

    #[test]
    fn billion_laughs_is_not_expanded() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]><rss version="2.0"><channel><title>&lol3;</title><item><title>&lol3;</title><guid>1</guid></item></channel></rss>"#;
        let feed = parse(laughs.as_bytes(), None, "http://a.example/").unwrap();
        assert!(
            feed.entries[0].title.len() < 20,
            "{:?}",
            feed.entries[0].title
        );
    }
}
