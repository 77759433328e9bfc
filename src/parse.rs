//! Bytes → UTF-8 text → feed-rs → our model, with entry HTML sanitised.
//!
//! The stages, each its own module: `decode` (any encoding to UTF-8, the
//! declaration rewritten to agree), `prepare` (one quick-xml pass: polling
//! hints, a depth bound, and rewrites of what feed-rs rejects or misreads),
//! feed-rs itself, then `recover` (entry by entry) only if feed-rs still
//! refuses the document. Everything recovered goes through `convert` and the
//! sanitiser like any entry. The measured cost is in BENCHMARKS.md.

use feed_rs::model;
use url::Url;

use crate::model::{ParsedEntry, ParsedFeed, SourceMeta};
use crate::sanitize;

mod cdf;
mod decode;
mod prepare;
mod recover;

pub use decode::decode;

/// Why a body is not a feed we can read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The body is empty or whitespace.
    #[error("the response body is empty")]
    Empty,
    /// The body looks like a web page, not a feed.
    #[error("the response is an HTML page, not a feed")]
    HtmlPage,
    /// feed-rs could not read it.
    #[error("not a readable feed: {0}")]
    Invalid(String),
    /// Nested deeper than any feed: refused before it can exhaust the stack.
    #[error("not a readable feed: {0}")]
    TooDeep(#[from] prepare::TooDeep),
}

/// Parses a fetched body. `content_type` is the HTTP header, for its charset;
/// `feed_url` resolves relative links.
///
/// feed-rs reads the document once it is decoded and prepared (see
/// `prepare`); if it still refuses it, `recover` reads it entry by entry.
/// Whatever was wrong and recovered from is in [`ParsedFeed::warnings`].
pub fn parse(
    body: &[u8],
    content_type: Option<&str>,
    feed_url: &str,
) -> Result<ParsedFeed, ParseError> {
    let decoded = decode::decode(body, content_type);
    let mut warnings = decoded.warnings;
    let text = decoded
        .text
        .trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    if text.is_empty() {
        return Err(match decoded.unsupported {
            Some(label) => {
                ParseError::Invalid(format!("its character encoding {label:?} is not supported"))
            }
            None => ParseError::Empty,
        });
    }
    let text = decode::normalise_xml_declaration(text);
    let prepared = prepare::prepare(&text)?;
    warnings.extend(prepared.warnings);
    // A fresh parser for every parse: feed-rs keeps per-document state in
    // its parser and asserts (panics) if a parser that failed is used again.
    let parse_once = |text: &str| {
        feed_rs::parser::Builder::new()
            .base_uri(Some(feed_url))
            // An empty id tells us the source gave none; identity decides what to use.
            .id_generator(|_, _, _| String::new())
            .build()
            .parse(text.as_bytes())
    };
    let feed = match parse_once(&prepared.text) {
        Ok(feed) => feed,
        Err(e) => {
            if looks_like_html(&prepared.text) {
                return Err(ParseError::HtmlPage);
            }
            let whole = e.to_string();
            match recover::recover(&prepared.text, parse_once) {
                Some((feed, dropped)) => {
                    warnings.push(format!("read entry by entry ({})", short(&whole)));
                    warnings.extend(dropped);
                    feed
                }
                None => {
                    return Err(ParseError::Invalid(match decoded.unsupported {
                        Some(label) => {
                            format!("{whole} (its character encoding {label:?} is not supported)")
                        }
                        None => whole,
                    }));
                }
            }
        }
    };
    let base = Url::parse(feed_url).ok();
    let mut parsed = convert(feed, base.as_ref(), &prepared.abouts);
    if parsed.hints.ttl.is_none() {
        parsed.hints.ttl = prepared.hints.ttl;
    }
    parsed.hints.update_period = prepared.hints.update_period;
    parsed.hints.skip = prepared.hints.skip;
    parsed.warnings = warnings;
    if text.starts_with('{') {
        // feed-rs does not read JSON Feed's `hubs`.
        parsed.websub = json_feed_websub(&text, base.as_ref());
    }
    Ok(parsed)
}

fn short(error: &str) -> &str {
    match error.char_indices().nth(120) {
        Some((at, _)) => &error[..at],
        None => error,
    }
}

fn looks_like_html(text: &str) -> bool {
    let head: String = text
        .chars()
        .take(512)
        .collect::<String>()
        .to_ascii_lowercase();
    head.contains("<!doctype html") || head.contains("<html")
}

fn convert(feed: model::Feed, base: Option<&Url>, abouts: &[(String, String)]) -> ParsedFeed {
    let site_url = alternate_link(&feed.links, base);
    let meta = SourceMeta {
        id: non_empty(feed.id),
        title: feed.title.as_ref().map(plain_text).and_then(non_empty),
        site_url,
        rights: feed.rights.as_ref().map(plain_text).and_then(non_empty),
        author: feed.authors.first().and_then(person_name),
        updated: feed.updated.or(feed.published),
    };
    let entries = feed
        .entries
        .into_iter()
        .map(|entry| convert_entry(entry, base, abouts))
        .collect();
    let hints = crate::model::FeedHints {
        ttl: feed
            .ttl
            .filter(|m| *m > 0)
            .map(|m| std::time::Duration::from_secs(u64::from(m.min(60 * 24 * 365)) * 60)),
        ..Default::default()
    };
    let websub = crate::model::WebSubLinks {
        hubs: links_with_rel(&feed.links, "hub", base),
        self_url: links_with_rel(&feed.links, "self", base).into_iter().next(),
    };
    ParsedFeed {
        meta,
        entries,
        hints,
        warnings: Vec::new(),
        websub,
    }
}

/// The absolute http(s) URLs of the links with relation `rel` (a rel
/// attribute may list several relations).
fn links_with_rel(links: &[model::Link], rel: &str, base: Option<&Url>) -> Vec<String> {
    links
        .iter()
        .filter(|l| {
            l.rel.as_deref().is_some_and(|r| {
                r.split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case(rel))
            })
        })
        .filter_map(|l| absolute_url(l.href.trim(), base))
        .collect()
}

/// JSON Feed's `hubs` (those of type WebSub) and `feed_url`.
fn json_feed_websub(text: &str, base: Option<&Url>) -> crate::model::WebSubLinks {
    #[derive(serde::Deserialize)]
    struct Hub {
        #[serde(rename = "type", default)]
        kind: String,
        #[serde(default)]
        url: String,
    }
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(default)]
        hubs: Vec<Hub>,
        #[serde(default)]
        feed_url: Option<String>,
    }
    let Ok(doc) = serde_json::from_str::<Doc>(text) else {
        return Default::default();
    };
    crate::model::WebSubLinks {
        hubs: doc
            .hubs
            .iter()
            .filter(|h| {
                h.kind.eq_ignore_ascii_case("websub") || h.kind.eq_ignore_ascii_case("pubsubhubbub")
            })
            .filter_map(|h| absolute_url(h.url.trim(), base))
            .collect(),
        self_url: doc.feed_url.and_then(|u| absolute_url(u.trim(), base)),
    }
}

fn convert_entry(
    entry: model::Entry,
    feed_base: Option<&Url>,
    abouts: &[(String, String)],
) -> ParsedEntry {
    let link = alternate_link(&entry.links, feed_base);
    // Relative URLs inside the content resolve against its xml:base, else
    // the article, else the feed.
    let base = entry
        .base
        .as_deref()
        .and_then(|b| absolute_url(b.trim(), feed_base))
        .or_else(|| link.clone())
        .and_then(|l| Url::parse(&l).ok())
        .or_else(|| feed_base.cloned());
    // RSS 1.0 has no guid: an item's rdf:about is its identity.
    let about = || {
        let raw = entry.links.first().map(|l| l.href.trim())?;
        abouts
            .iter()
            .find(|(key, _)| key == raw || Some(key.as_str()) == link.as_deref())
            .map(|(_, about)| about.clone())
    };
    let guid = non_empty(entry.id.trim().to_string()).or_else(about);
    let summary = entry
        .summary
        .as_ref()
        .map(|t| html_of_text(t, base.as_ref()))
        .and_then(non_empty);
    let content = entry
        .content
        .as_ref()
        .and_then(|c| {
            let body = c.body.as_deref()?;
            let is_plain = essence(&c.content_type) == "text/plain";
            Some(if !is_plain || sanitize::looks_like_markup(body) {
                sanitize::html(body, base.as_ref())
            } else {
                sanitize::text_to_html(body)
            })
        })
        .and_then(non_empty);
    let title = entry
        .title
        .as_ref()
        .map(plain_text)
        .and_then(non_empty)
        .unwrap_or_default();
    ParsedEntry {
        guid,
        title,
        link,
        author: entry.authors.first().and_then(person_name),
        summary,
        content,
        rights: entry.rights.as_ref().map(plain_text).and_then(non_empty),
        published: entry.published,
        updated: entry.updated,
        categories: entry
            .categories
            .iter()
            .filter_map(|c| non_empty(c.label.clone().unwrap_or_else(|| c.term.clone())))
            .collect(),
    }
}

/// The first link that is an alternate (or has no rel), made absolute.
fn alternate_link(links: &[model::Link], base: Option<&Url>) -> Option<String> {
    links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .and_then(|l| absolute_url(l.href.trim(), base))
}

fn absolute_url(href: &str, base: Option<&Url>) -> Option<String> {
    if href.is_empty() {
        return None;
    }
    let url = match Url::parse(href) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => base?.join(href).ok()?,
        Err(_) => return None,
    };
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

/// A person's display name. RSS `<author>` is often "mail@example.org (Name)".
fn person_name(person: &model::Person) -> Option<String> {
    let raw = person.name.as_deref().map(str::trim).unwrap_or("");
    if let (Some(open), true) = (raw.find('('), raw.ends_with(')')) {
        let inner = raw[open + 1..raw.len() - 1].trim();
        if !inner.is_empty() {
            return Some(decode_entities(inner));
        }
    }
    non_empty(decode_entities(raw)).or_else(|| person.email.clone().and_then(non_empty))
}

/// Plain text of a feed-rs text construct: tags dropped, entities decoded,
/// whitespace collapsed.
fn plain_text(text: &model::Text) -> String {
    let raw = if essence(&text.content_type) != "text/plain"
        || sanitize::looks_like_markup(&text.content)
    {
        sanitize::strip_tags(&text.content)
    } else {
        text.content.clone()
    };
    let decoded = decode_entities(&raw);
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// HTML for a text construct that may be plain text or HTML.
fn html_of_text(text: &model::Text, base: Option<&Url>) -> String {
    if essence(&text.content_type) == "text/plain" && !sanitize::looks_like_markup(&text.content) {
        sanitize::text_to_html(&decode_entities(&text.content))
    } else {
        sanitize::html(&text.content, base)
    }
}

/// "type/subtype" of a media type, lower-case, without parameters.
fn essence(media_type: &impl std::fmt::Display) -> String {
    let full = media_type.to_string();
    full.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Entities such as `&mdash;` that arrive as literal text in titles and names.
fn decode_entities(text: &str) -> String {
    html_escape::decode_html_entities(text).into_owned()
}

fn non_empty(s: String) -> Option<String> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        None
    } else if trimmed.len() == s.len() {
        Some(s)
    } else {
        Some(trimmed.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websub_hub_and_self_are_read_from_atom_rss_and_json_feed() {
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>a</id><updated>2026-01-01T00:00:00Z</updated>
            <link rel="hub" href="https://hub.example/"/><link rel="self" href="/atom"/></feed>"#;
        let feed = parse(atom.as_bytes(), None, "http://a.example/x").unwrap();
        assert_eq!(feed.websub.hubs, ["https://hub.example/"]);
        assert_eq!(
            feed.websub.self_url.as_deref(),
            Some("http://a.example/atom")
        );
        let rss = r#"<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>R</title>
            <atom:link rel="hub" href="https://hub.example/r"/><atom:link rel="self" href="http://a.example/rss"/></channel></rss>"#;
        let feed = parse(rss.as_bytes(), None, "http://a.example/x").unwrap();
        assert_eq!(feed.websub.hubs, ["https://hub.example/r"]);
        assert_eq!(
            feed.websub.self_url.as_deref(),
            Some("http://a.example/rss")
        );
        let json = r#"{"version":"https://jsonfeed.org/version/1.1","title":"J","feed_url":"http://a.example/j",
            "hubs":[{"type":"rssCloud","url":"http://c.example/"},{"type":"WebSub","url":"https://hub.example/j"}],"items":[]}"#;
        let feed = parse(json.as_bytes(), None, "http://a.example/x").unwrap();
        assert_eq!(feed.websub.hubs, ["https://hub.example/j"]);
        assert_eq!(feed.websub.self_url.as_deref(), Some("http://a.example/j"));
        let plain = parse(
            b"<rss version=\"2.0\"><channel><title>P</title></channel></rss>",
            None,
            "http://a.example/",
        )
        .unwrap();
        assert!(plain.websub.hubs.is_empty());
    }

    #[test]
    fn valid_utf8_survives_a_wrong_label() {
        let body = "<?xml version=\"1.0\" encoding=\"windows-1252\"?><rss version=\"2.0\"><channel><title>Caf\u{e9} \u{2014} news</title></channel></rss>";
        let text = decode(body.as_bytes(), Some("text/xml; charset=iso-8859-1")).text;
        assert!(text.contains("Café — news"));
        let feed = parse(body.as_bytes(), None, "http://x.example/").unwrap();
        assert_eq!(feed.meta.title.as_deref(), Some("Café — news"));
    }

    #[test]
    fn windows_1252_without_declaration_decodes() {
        let mut body = b"<rss version=\"2.0\"><channel><title>Caf".to_vec();
        body.push(0xE9);
        body.extend_from_slice(
            b" \x97 news</title><item><title>x</title><guid>1</guid></item></channel></rss>",
        );
        let feed = parse(&body, None, "http://x.example/").unwrap();
        assert_eq!(feed.meta.title.as_deref(), Some("Café — news"));
    }

    #[test]
    fn http_charset_is_used_for_non_utf8_bytes() {
        // "ü" in ISO-8859-2 is 0xFC; "ł" is 0xB3 (in windows-1252 that is "³").
        let mut body = b"<rss version=\"2.0\"><channel><title>".to_vec();
        body.extend_from_slice(&[0xB3, 0xFC]);
        body.extend_from_slice(b"</title></channel></rss>");
        let feed = parse(
            &body,
            Some("application/rss+xml; charset=\"ISO-8859-2\""),
            "http://x.example/",
        )
        .unwrap();
        assert_eq!(feed.meta.title.as_deref(), Some("łü"));
    }

    #[test]
    fn bom_is_stripped() {
        let mut body = vec![0xEF, 0xBB, 0xBF];
        body.extend_from_slice(b"<rss version=\"2.0\"><channel><title>BOM</title></channel></rss>");
        let feed = parse(&body, None, "http://x.example/").unwrap();
        assert_eq!(feed.meta.title.as_deref(), Some("BOM"));
    }

    #[test]
    fn missing_ids_stay_missing_and_links_become_absolute() {
        let body = r#"<rss version="2.0"><channel><title>t</title><link>/</link>
            <item><title>A &amp;mdash; b</title><link>/a</link><description>&lt;p&gt;hi &lt;img src="/i.png"&gt;&lt;script&gt;x()&lt;/script&gt;&lt;/p&gt;</description><author>me@x.example (Me Writer)</author></item>
            </channel></rss>"#;
        let feed = parse(body.as_bytes(), None, "http://x.example/feed.xml").unwrap();
        let entry = &feed.entries[0];
        assert_eq!(entry.guid, None);
        assert_eq!(entry.link.as_deref(), Some("http://x.example/a"));
        assert_eq!(entry.title, "A — b");
        assert_eq!(entry.author.as_deref(), Some("Me Writer"));
        let summary = entry.summary.as_deref().unwrap();
        assert!(
            summary.contains(r#"src="http://x.example/i.png""#),
            "{summary}"
        );
        assert!(!summary.contains("script"), "{summary}");
    }

    #[test]
    fn html_and_empty_bodies_are_named() {
        assert!(matches!(
            parse(b"  \n", None, "http://x.example/"),
            Err(ParseError::Empty)
        ));
        assert!(matches!(
            parse(
                b"<!DOCTYPE html><html><body>hi</body></html>",
                None,
                "http://x.example/"
            ),
            Err(ParseError::HtmlPage)
        ));
        assert!(matches!(
            parse(b"<rss><chan", None, "http://x.example/"),
            Err(ParseError::Invalid(_))
        ));
    }
}
