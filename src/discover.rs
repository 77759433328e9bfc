//! Finding the feeds a site offers from its address: the `<link
//! rel="alternate">` of RSS, Atom and JSON Feed types in its page, else the
//! usual paths (`/feed`, `/rss.xml`, …). A candidate counts only once it has
//! been fetched and parsed as a feed; a link to another web page is not
//! followed further. Fetches go through the daemon's [`Fetcher`], with its
//! limits (size, redirects and loops, deadline).
//!
//! The page is read with html5ever's tokenizer (already in the tree through
//! ammonia): tags and attributes as a browser reads them, no DOM built.

use std::cell::{Cell, RefCell};

use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use url::Url;

use crate::fetch::{FetchError, Fetched, Fetcher};
use crate::model::Validators;

/// Feed links a page may advertise: more is not a site's feed list.
pub const MAX_ADVERTISED: usize = 50;

/// Paths tried, from the site's root, when the page advertises no feed.
pub const COMMON_PATHS: [&str; 6] = [
    "/feed",
    "/rss.xml",
    "/atom.xml",
    "/index.xml",
    "/feed.json",
    "/feed/",
];

/// A feed format, as discovery names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFormat {
    Rss,
    Atom,
    JsonFeed,
}

impl FeedFormat {
    pub fn label(self) -> &'static str {
        match self {
            FeedFormat::Rss => "RSS",
            FeedFormat::Atom => "Atom",
            FeedFormat::JsonFeed => "JSON Feed",
        }
    }

    /// The format a `<link type>` names, if it names a feed.
    fn of_type(content_type: &str) -> Option<Self> {
        let t = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match t.as_str() {
            "application/rss+xml" | "application/rdf+xml" => Some(FeedFormat::Rss),
            "application/atom+xml" => Some(FeedFormat::Atom),
            "application/feed+json" | "application/json" => Some(FeedFormat::JsonFeed),
            _ => None,
        }
    }

    /// The format of a body that parsed as a feed, from its first markup.
    fn sniff(body: &[u8]) -> Self {
        let head = String::from_utf8_lossy(&body[..body.len().min(2048)]).to_ascii_lowercase();
        let head = head.trim_start_matches('\u{feff}').trim_start();
        if head.starts_with('{') {
            FeedFormat::JsonFeed
        } else if head.contains("<feed") {
            FeedFormat::Atom
        } else {
            FeedFormat::Rss
        }
    }
}

/// A feed link found in a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    /// Absolute.
    pub url: String,
    pub format: FeedFormat,
    pub title: Option<String>,
}

/// A feed found and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// As advertised or probed (not where its redirects led).
    pub url: String,
    pub format: FeedFormat,
    /// The feed's own title, else the link's.
    pub title: Option<String>,
    pub entries: usize,
}

/// A candidate that turned out not to be a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub url: String,
    pub why: String,
}

/// What discovery found at an address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    pub feeds: Vec<Found>,
    pub rejected: Vec<Rejected>,
    /// Whether the feeds came from the common paths (the page advertised none).
    pub probed: bool,
}

/// Why discovery found nothing to show.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("not an http(s) address: {0}")]
    BadUrl(String),
    #[error("cannot fetch {url}: {error}")]
    Fetch { url: String, error: FetchError },
    #[error(
        "the page advertises {count} feeds (more than {MAX_ADVERTISED}): not a site's feed list"
    )]
    TooManyLinks { count: usize },
}

/// Tags of interest, collected as the tokenizer meets them.
#[derive(Default)]
struct LinkSink {
    /// (rel, type, href, title) of every `<link>`.
    links: RefCell<Vec<[Option<String>; 4]>>,
    base: RefCell<Option<String>>,
    /// `<link>` tags seen, counted even beyond what is kept.
    seen: Cell<usize>,
}

impl TokenSink for LinkSink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let Token::TagToken(tag) = token else {
            return TokenSinkResult::Continue;
        };
        if tag.kind != TagKind::StartTag {
            return TokenSinkResult::Continue;
        }
        let attr = |name: &str| {
            tag.attrs
                .iter()
                .find(|a| &*a.name.local == name)
                .map(|a| a.value.to_string())
        };
        match &*tag.name {
            "link" => {
                self.seen.set(self.seen.get() + 1);
                // Bounded: a page is at most the fetch limit, and this keeps
                // at most a few times what any site's list holds.
                if self.links.borrow().len() <= MAX_ADVERTISED * 20 {
                    self.links.borrow_mut().push([
                        attr("rel"),
                        attr("type"),
                        attr("href"),
                        attr("title"),
                    ]);
                }
            }
            "base" if self.base.borrow().is_none() => {
                *self.base.borrow_mut() = attr("href");
            }
            // What a browser reads as text, not tags.
            "script" => return TokenSinkResult::RawData(RawKind::ScriptData),
            "style" | "noscript" | "iframe" | "noembed" | "noframes" | "xmp" => {
                return TokenSinkResult::RawData(RawKind::Rawtext);
            }
            "title" | "textarea" => return TokenSinkResult::RawData(RawKind::Rcdata),
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// The feeds a page advertises, in its order, resolved against `page_url`
/// (or the page's `<base href>`), each URL once.
pub fn advertised(html: &str, page_url: &Url) -> Result<Vec<Advertised>, DiscoverError> {
    let tokenizer = Tokenizer::new(LinkSink::default(), TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(html.into());
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let sink = tokenizer.sink;
    let base = sink
        .base
        .borrow()
        .as_deref()
        .and_then(|b| page_url.join(b.trim()).ok())
        .unwrap_or_else(|| page_url.clone());
    let mut found: Vec<Advertised> = Vec::new();
    let mut count = 0;
    for [rel, content_type, href, title] in sink.links.borrow().iter() {
        let alternate = rel.as_deref().is_some_and(|r| {
            r.split_ascii_whitespace()
                .any(|t| t.eq_ignore_ascii_case("alternate"))
        });
        let (Some(format), Some(href)) = (
            content_type.as_deref().and_then(FeedFormat::of_type),
            href.as_deref().map(str::trim).filter(|h| !h.is_empty()),
        ) else {
            continue;
        };
        if !alternate {
            continue;
        }
        let Ok(url) = base.join(href) else {
            continue;
        };
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        count += 1;
        let url = url.to_string();
        if found.iter().any(|f| f.url == url) {
            continue;
        }
        found.push(Advertised {
            url,
            format,
            title: title
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string),
        });
    }
    if count > MAX_ADVERTISED {
        return Err(DiscoverError::TooManyLinks { count });
    }
    Ok(found)
}

/// Whether a body that did not parse as a feed is a web page.
pub fn is_web_page(body: &[u8], content_type: Option<&str>) -> bool {
    let html_type = content_type.is_some_and(|t| {
        let t = t.trim_start().to_ascii_lowercase();
        t.starts_with("text/html") || t.starts_with("application/xhtml")
    });
    let head = String::from_utf8_lossy(&body[..body.len().min(1024)]).to_ascii_lowercase();
    // A broken feed served as text/html is still a broken feed.
    let feed_root = ["<rss", "<feed", "<rdf:rdf"]
        .iter()
        .any(|r| head.contains(r));
    head.contains("<!doctype html") || head.contains("<html") || (html_type && !feed_root)
}

/// The error a poll records for a `[[feed]] url` that answers with a web
/// page: the feeds the page offers, so the configuration can be fixed (it is
/// never rewritten for the user).
pub fn web_page_error(body: &[u8], content_type: Option<&str>, page_url: &str) -> String {
    let text = crate::parse::decode(body, content_type);
    let offers = Url::parse(page_url)
        .ok()
        .and_then(|u| advertised(&text.text, &u).ok())
        .unwrap_or_default();
    if offers.is_empty() {
        return "this is a web page, not a feed, and it advertises no feed \
                (`newsriver discover URL` also tries the usual paths)"
            .to_string();
    }
    let listed: Vec<&str> = offers.iter().take(5).map(|a| a.url.as_str()).collect();
    let more = match offers.len() {
        n if n > 5 => format!(" and {} more", n - 5),
        _ => String::new(),
    };
    format!(
        "this is a web page; it offers {}{more} (set one as the [[feed]] url)",
        listed.join(", ")
    )
}

/// Fetches `url` and reads it as a feed; `Err` says why it is not one.
async fn read_feed(
    fetcher: &Fetcher,
    url: &str,
) -> Result<Result<(FeedFormat, Option<String>, usize), String>, FetchError> {
    let response = match fetcher.fetch(url, &Validators::default()).await? {
        Fetched::Body(r) | Fetched::Unchanged(r) | Fetched::NotModified(r) => r,
    };
    let final_url = response.final_url.clone();
    match crate::parse::parse(&response.body, response.content_type.as_deref(), &final_url) {
        Ok(feed) => Ok(Ok((
            FeedFormat::sniff(&response.body),
            feed.meta.title,
            feed.entries.len(),
        ))),
        Err(_) if is_web_page(&response.body, response.content_type.as_deref()) => {
            Ok(Err("a web page, not a feed".to_string()))
        }
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// The feeds `url` offers: itself if it is a feed; else those its page
/// advertises that parse as feeds; else those of the usual paths that do.
/// `gap` is the pause between two requests (`[fetch] host_gap`): discovery
/// asks one host for several addresses in a row.
pub async fn discover(
    fetcher: &Fetcher,
    url: &str,
    gap: std::time::Duration,
) -> Result<Discovery, DiscoverError> {
    let page_url = Url::parse(url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| DiscoverError::BadUrl(url.to_string()))?;
    let fetch_error = |url: &str, error| DiscoverError::Fetch {
        url: url.to_string(),
        error,
    };
    let response = match fetcher
        .fetch(page_url.as_str(), &Validators::default())
        .await
        .map_err(|e| fetch_error(page_url.as_str(), e))?
    {
        Fetched::Body(r) | Fetched::Unchanged(r) | Fetched::NotModified(r) => r,
    };
    let final_url = Url::parse(&response.final_url).unwrap_or_else(|_| page_url.clone());
    let mut discovery = Discovery::default();
    // The address given is a feed itself.
    if let Ok(feed) = crate::parse::parse(
        &response.body,
        response.content_type.as_deref(),
        final_url.as_str(),
    ) {
        discovery.feeds.push(Found {
            url: page_url.to_string(),
            format: FeedFormat::sniff(&response.body),
            title: feed.meta.title,
            entries: feed.entries.len(),
        });
        return Ok(discovery);
    }
    let text = crate::parse::decode(&response.body, response.content_type.as_deref());
    let offers = advertised(&text.text, &final_url)?;
    let candidates: Vec<(String, Option<String>)> = if offers.is_empty() {
        discovery.probed = true;
        COMMON_PATHS
            .iter()
            .filter_map(|p| final_url.join(p).ok())
            .map(|u| (u.to_string(), None))
            .collect()
    } else {
        offers.into_iter().map(|a| (a.url, a.title)).collect()
    };
    for (url, link_title) in candidates {
        tokio::time::sleep(gap).await;
        match read_feed(fetcher, &url).await {
            Ok(Ok((format, title, entries))) => discovery.feeds.push(Found {
                url,
                format,
                title: title.or(link_title),
                entries,
            }),
            Ok(Err(why)) => discovery.rejected.push(Rejected { url, why }),
            Err(e) => discovery.rejected.push(Rejected {
                url,
                why: e.to_string(),
            }),
        }
    }
    Ok(discovery)
}

/// The `[[feed]]` table for a found feed, as TOML text.
pub fn feed_table(found: &Found) -> String {
    let mut table = toml_edit::Table::new();
    table.insert("url", toml_edit::value(found.url.as_str()));
    if let Some(title) = &found.title {
        table.insert("title", toml_edit::value(title.as_str()));
    }
    let mut array = toml_edit::ArrayOfTables::new();
    array.push(table);
    let mut doc = toml_edit::DocumentMut::new();
    doc.insert("feed", toml_edit::Item::ArrayOfTables(array));
    doc.to_string()
}

/// Why a feed cannot be added to a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("{0}")]
    Config(String),
    #[error("{0} is already configured")]
    Known(String),
}

/// `toml_text` with a `[[feed]]` table for `found` appended: every byte of
/// the file as it was, then the table. A file that lists its feeds as an
/// inline `feed = [...]` array gets the feed there instead (as OPML import does).
pub fn add_to_toml(
    toml_text: &str,
    config_path: &std::path::Path,
    found: &Found,
) -> Result<String, AddError> {
    let config = crate::Config::parse(toml_text, config_path)
        .map_err(|e| AddError::Config(e.to_string()))?;
    let url = Url::parse(&found.url).map_err(|e| AddError::Config(e.to_string()))?;
    if config.feeds.iter().any(|f| *f.url() == url) {
        return Err(AddError::Known(found.url.clone()));
    }
    let doc: toml_edit::DocumentMut = toml_text
        .parse()
        .map_err(|e: toml_edit::TomlError| AddError::Config(e.to_string()))?;
    let text = match doc.get("feed") {
        Some(toml_edit::Item::Value(toml_edit::Value::Array(_))) => {
            let mut doc = doc;
            if let Some(toml_edit::Item::Value(toml_edit::Value::Array(array))) =
                doc.get_mut("feed")
            {
                let mut table = toml_edit::InlineTable::new();
                table.insert("url", found.url.as_str().into());
                if let Some(title) = &found.title {
                    table.insert("title", title.as_str().into());
                }
                array.push(table);
            }
            doc.to_string()
        }
        _ => {
            let mut text = toml_text.to_string();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!(
                "# Found by `newsriver discover` on {}.\n",
                chrono::Utc::now().format("%Y-%m-%d")
            ));
            text.push_str(&feed_table(found));
            text
        }
    };
    // What is written must load.
    crate::Config::parse(&text, config_path).map_err(|e| AddError::Config(e.to_string()))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("https://news.example/section/page.html").unwrap()
    }

    #[test]
    fn alternate_links_of_feed_types_are_found_and_resolved() {
        let html = r#"<!DOCTYPE html><html><head>
            <link rel="stylesheet" type="text/css" href="/s.css">
            <LINK REL="Alternate" TYPE="application/rss+xml" title=" Main " href="feed.xml">
            <link rel="alternate" type="application/atom+xml; charset=utf-8" href="//cdn.example/atom">
            <link rel="alternate" type="application/feed+json" href="https://news.example/feed.json">
            <link rel="alternate" type="text/html" hreflang="fr" href="/fr/">
            <link rel="alternate" type="application/rss+xml" href="feed.xml">
            <link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
            <script>document.write('<link rel="alternate" type="application/rss+xml" href="/fake">')</script>
            </head><body></body></html>"#;
        let found = advertised(html, &page()).unwrap();
        let urls: Vec<&str> = found.iter().map(|f| f.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://news.example/section/feed.xml",
                "https://cdn.example/atom",
                "https://news.example/feed.json"
            ]
        );
        assert_eq!(found[0].format, FeedFormat::Rss);
        assert_eq!(found[0].title.as_deref(), Some("Main"));
        assert_eq!(found[1].format, FeedFormat::Atom);
        assert_eq!(found[2].format, FeedFormat::JsonFeed);
    }

    #[test]
    fn base_href_resolves_relative_links() {
        let html = r#"<head><base href="https://other.example/blog/"><link rel="alternate" type="application/atom+xml" href="atom.xml"></head>"#;
        let found = advertised(html, &page()).unwrap();
        assert_eq!(found[0].url, "https://other.example/blog/atom.xml");
    }

    #[test]
    fn a_page_with_hundreds_of_feed_links_is_refused() {
        let links: String = (0..300)
            .map(|i| format!(r#"<link rel="alternate" type="application/rss+xml" href="/f{i}">"#))
            .collect();
        assert!(matches!(
            advertised(&links, &page()),
            Err(DiscoverError::TooManyLinks { count: 300 })
        ));
    }

    #[test]
    fn web_page_errors_name_the_offered_feeds() {
        let html = br#"<html><head><link rel="alternate" type="application/rss+xml" href="/feed.xml"></head></html>"#;
        let e = web_page_error(html, Some("text/html"), "https://news.example/");
        assert_eq!(
            e,
            "this is a web page; it offers https://news.example/feed.xml (set one as the [[feed]] url)"
        );
        let e = web_page_error(b"<html></html>", None, "https://news.example/");
        assert!(e.starts_with("this is a web page, not a feed, and it advertises no feed"));
        assert!(is_web_page(b"<p>hi</p>", Some("text/html; charset=utf-8")));
        assert!(!is_web_page(
            b"<rss version=\"2.0\"><channel>",
            Some("text/html")
        ));
        assert!(!is_web_page(b"not a feed", Some("application/xml")));
    }

    #[test]
    fn feed_tables_escape_what_they_hold() {
        let found = Found {
            url: "https://x.example/feed?a=1".into(),
            format: FeedFormat::Rss,
            title: Some("Quote \" and \\ back".into()),
            entries: 1,
        };
        let table = feed_table(&found);
        let parsed: toml::Table = toml::from_str(&table).unwrap();
        let feed = &parsed["feed"].as_array().unwrap()[0];
        assert_eq!(feed["title"].as_str().unwrap(), "Quote \" and \\ back");
        assert!(table.starts_with("[[feed]]\n"), "{table}");
    }
}
