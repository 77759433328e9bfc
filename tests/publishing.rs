//! Publishing end to end: every format and view parsed back and checked the way
//! the W3C feed validator checks ids, dates, links and self references; RFC 5005
//! paging; conditional requests; compression; the render cache.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::{FixtureServer, Route};
use newsriver::Config;
use regex::Regex;
use url::Url;

/// (path on the fixture server, file, tags)
const FEEDS: &[(&str, &str, &[&str])] = &[
    ("/rss2.xml", "core/rss2.xml", &["local", "news"]),
    ("/rss1.rdf", "core/rss1.rdf", &["science"]),
    ("/atom.xml", "core/atom.xml", &["local"]),
    ("/feed.json", "core/feed.json", &["tech"]),
    ("/quirks.json", "publishing/quirks.json", &["quirks"]),
];
const TOTAL: usize = 18;

struct River {
    server: FixtureServer,
    _dir: tempfile::TempDir,
    config: Config,
}

async fn river(entries: usize) -> River {
    river_with(entries, "").await
}

async fn river_with(entries: usize, extra: &str) -> River {
    let server = FixtureServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut toml = format!(
        "{extra}\n{}[output]\nentries = {entries}\ntitle = \"Test River\"\n",
        common::storage_toml(&dir.path().join("river.db"))
    );
    for (path, file, tags) in FEEDS {
        let body = std::fs::read(common::fixtures_dir().join(file)).unwrap();
        let content_type = if file.ends_with(".json") {
            "application/feed+json"
        } else {
            "application/xml"
        };
        server.set(path, Route::feed(body, content_type));
        toml.push_str(&format!(
            "[[feed]]\nurl = \"{}\"\ntags = {tags:?}\n",
            server.url(path)
        ));
    }
    let config = Config::parse(&toml, Path::new("test.toml")).unwrap();
    let reports = newsriver::poll_once(&config).await.unwrap();
    let summary = newsriver::scheduler::Summary::of(&reports);
    assert_eq!(
        (summary.ok, summary.new),
        (FEEDS.len(), TOTAL),
        "{reports:?}"
    );
    River {
        server,
        _dir: dir,
        config,
    }
}

struct Daemon {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Daemon {
    async fn start(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(newsriver::run(config, listener, async move {
            let _ = stopped.await;
        }));
        Daemon {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> (reqwest::header::HeaderMap, String) {
        let response = reqwest::get(self.url(path)).await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        let headers = response.headers().clone();
        (headers, response.text().await.unwrap())
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

fn is_absolute_http(url: &str) -> bool {
    Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// Every `href`/`src` inside entry HTML is an absolute http(s) URL.
fn assert_content_urls_absolute(html: &str, what: &str) {
    let attr = Regex::new(r#"(?i)\b(?:href|src)\s*=\s*"([^"]*)""#).unwrap();
    for cap in attr.captures_iter(html) {
        let url = html_escape::decode_html_entities(&cap[1]).into_owned();
        assert!(
            is_absolute_http(&url),
            "{what}: relative URL {url:?} in {html}"
        );
    }
}

/// Characters XML 1.0 forbids must never be written.
fn assert_xml_chars_only(text: &str) {
    for c in text.chars() {
        assert!(
            matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..),
            "character {c:?} is not allowed in XML"
        );
    }
}

/// The validator's id, date, link and self-reference checks for an Atom document.
fn check_atom(xml: &str, fetched: &str) -> atom_syndication::Feed {
    assert_xml_chars_only(xml);
    let feed: atom_syndication::Feed = xml.parse().expect("well-formed Atom");
    assert!(Url::parse(&feed.id).is_ok(), "feed id {} is a URI", feed.id);
    let selfs: Vec<_> = feed.links.iter().filter(|l| l.rel == "self").collect();
    assert_eq!(selfs.len(), 1);
    assert_eq!(selfs[0].href, fetched, "self link is the URL fetched");
    for link in &feed.links {
        assert!(is_absolute_http(&link.href), "feed link {}", link.href);
    }
    // Dates as written: RFC 3339, always.
    let date = Regex::new(r"<(updated|published)>([^<]*)</").unwrap();
    let mut dates = 0;
    for cap in date.captures_iter(xml) {
        chrono::DateTime::parse_from_rfc3339(&cap[2])
            .unwrap_or_else(|e| panic!("<{}>{}: {e}", &cap[1], &cap[2]));
        dates += 1;
    }
    assert!(dates > feed.entries.len());
    let mut ids = HashSet::new();
    for entry in &feed.entries {
        assert!(Url::parse(&entry.id).is_ok(), "entry id {}", entry.id);
        assert!(ids.insert(entry.id.clone()), "duplicate id {}", entry.id);
        assert!(!entry.authors.is_empty() && !entry.authors[0].name.is_empty());
        for link in &entry.links {
            assert!(is_absolute_http(&link.href), "entry link {}", link.href);
        }
        assert!(
            entry.links.iter().any(|l| l.rel == "alternate") || entry.content.is_some(),
            "an entry needs an alternate link or content"
        );
        let source = entry.source.as_ref().expect("every entry names its source");
        assert!(Url::parse(&source.id).is_ok(), "source id {}", source.id);
        assert!(!source.title.value.is_empty());
        assert!(
            source
                .links
                .iter()
                .any(|l| l.rel == "self" && is_absolute_http(&l.href))
        );
        for html in [
            entry.content.as_ref().and_then(|c| c.value.clone()),
            entry.summary.as_ref().map(|s| s.value.clone()),
        ]
        .into_iter()
        .flatten()
        {
            assert_content_urls_absolute(&html, &entry.id);
            assert!(!html.to_lowercase().contains("<script"), "{html}");
        }
    }
    feed
}

/// The same checks for RSS 2.0.
fn check_rss(xml: &str, fetched: &str) -> rss::Channel {
    assert_xml_chars_only(xml);
    let channel: rss::Channel = xml.parse().expect("well-formed RSS");
    assert!(is_absolute_http(&channel.link));
    assert!(!channel.description.is_empty());
    let links = &channel.atom_ext.as_ref().expect("atom:link").links;
    let selfs: Vec<_> = links.iter().filter(|l| l.rel == "self").collect();
    assert_eq!(selfs.len(), 1);
    assert_eq!(selfs[0].href, fetched);
    assert_eq!(selfs[0].mime_type.as_deref(), Some("application/rss+xml"));
    for link in links {
        assert!(is_absolute_http(&link.href));
    }
    chrono::DateTime::parse_from_rfc2822(channel.last_build_date.as_deref().unwrap()).unwrap();
    let mut guids = HashSet::new();
    for item in &channel.items {
        let guid = item.guid.as_ref().expect("every item has a guid");
        assert!(!guid.permalink && guid.value.starts_with("urn:uuid:"));
        assert!(guids.insert(guid.value.clone()));
        chrono::DateTime::parse_from_rfc2822(item.pub_date.as_deref().expect("pubDate"))
            .unwrap_or_else(|e| panic!("pubDate {:?}: {e}", item.pub_date));
        if let Some(link) = &item.link {
            assert!(is_absolute_http(link), "{link}");
        }
        let source = item.source.as_ref().expect("<source url>");
        assert!(is_absolute_http(&source.url));
        assert!(source.title.as_deref().is_some_and(|t| !t.is_empty()));
        let dc = item.dublin_core_ext.as_ref().expect("dc:creator");
        assert!(!dc.creators.is_empty() && !dc.creators[0].is_empty());
        for html in [item.description.clone(), item.content.clone()]
            .into_iter()
            .flatten()
        {
            assert_content_urls_absolute(&html, &guid.value);
        }
    }
    channel
}

#[tokio::test]
async fn every_format_passes_the_validator_checks_and_credits_each_source() {
    let river = river(100).await;
    let daemon = Daemon::start(river.config.clone()).await;

    let (headers, xml) = daemon.get("/feed.atom").await;
    assert_eq!(headers["content-type"], "application/atom+xml");
    let atom = check_atom(&xml, &daemon.url("/feed.atom"));
    assert_eq!(atom.entries.len(), TOTAL);
    let quirky = atom
        .entries
        .iter()
        .find(|e| e.title.value.starts_with("Bell"))
        .unwrap();
    assert_eq!(quirky.title.value, "Bell  rings  twice ");
    assert_eq!(quirky.authors[0].name, "Q  Writer");
    let content = quirky.content.as_ref().unwrap().value.clone().unwrap();
    // Relative URLs in content resolve against the entry's own link, at ingest.
    for url in [
        r#"href="https://quirky.example/2026/about""#,
        r#"src="https://quirky.example/2026/11/pics/a.jpg""#,
        r#"href="https://cdn.quirky.example/x""#,
    ] {
        assert!(content.contains(url), "{url} in {content}");
    }
    let second = atom
        .entries
        .iter()
        .find(|e| e.title.value == "Relative link story")
        .unwrap();
    // A relative item link resolves against the document's own address.
    let origin = river.server.url("");
    assert_eq!(second.links[0].href, format!("{origin}/relative/story-two"));
    let content = second.content.as_ref().unwrap().value.clone().unwrap();
    assert!(
        content.contains(&format!(r#"href="{origin}/x?a=1&amp;b=2""#)),
        "{content}"
    );
    assert!(
        content.contains(&format!(r#"src="{origin}/relative/y.png""#)),
        "{content}"
    );

    let (headers, xml) = daemon.get("/feed.rss").await;
    assert_eq!(headers["content-type"], "application/rss+xml");
    let channel = check_rss(&xml, &daemon.url("/feed.rss"));
    assert_eq!(channel.items.len(), TOTAL);
    let atom_ids: Vec<&str> = atom.entries.iter().map(|e| e.id.as_str()).collect();
    let rss_ids: Vec<&str> = channel
        .items
        .iter()
        .map(|i| i.guid.as_ref().unwrap().value.as_str())
        .collect();
    assert_eq!(atom_ids, rss_ids, "the same stories, same order, same ids");

    let (headers, text) = daemon.get("/feed.json").await;
    assert_eq!(headers["content-type"], "application/feed+json");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(json["feed_url"], daemon.url("/feed.json"));
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), TOTAL);
    for (item, id) in items.iter().zip(&atom_ids) {
        assert_eq!(item["id"], *id);
        assert!(
            item["authors"][0]["name"]
                .as_str()
                .is_some_and(|n| !n.is_empty())
        );
        let source = &item["_newsriver"]["source"];
        assert!(is_absolute_http(source["feed_url"].as_str().unwrap()));
        assert!(source["title"].as_str().is_some_and(|t| !t.is_empty()));
    }

    let (headers, html) = daemon.get("/").await;
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    for (t, f) in [
        ("application/atom+xml", "feed.atom"),
        ("application/rss+xml", "feed.rss"),
        ("application/feed+json", "feed.json"),
    ] {
        let href = daemon.url(&format!("/{f}"));
        assert!(
            html.contains(&format!(r#"<link rel="alternate" type="{t}""#))
                && html.contains(&format!(r#"href="{href}""#)),
            "autodiscovery of {f}"
        );
    }
    assert!(!html.contains("<script>"));
    daemon.stop().await;
}

#[tokio::test]
async fn tag_and_source_views_have_their_own_id_title_and_self_link() {
    let river = river(100).await;
    let daemon = Daemon::start(river.config.clone()).await;
    let (_, river_xml) = daemon.get("/feed.atom").await;
    let main: atom_syndication::Feed = river_xml.parse().unwrap();

    let (_, xml) = daemon.get("/tags/local/feed.atom").await;
    let local = check_atom(&xml, &daemon.url("/tags/local/feed.atom"));
    assert_eq!(
        local.entries.len(),
        8,
        "rss2 and atom fixtures carry the tag"
    );
    assert!(local.entries.iter().all(|e| {
        let t = &e.source.as_ref().unwrap().title.value;
        t == "Northfield Ledger" || t == "Riverbend Chronicle"
    }));
    assert_ne!(local.id, main.id);
    assert_eq!(local.title.value, "Test River — local");
    // Stable: the same id on every fetch and in every format.
    let (_, again) = daemon.get("/tags/local/feed.atom").await;
    assert_eq!(
        again.parse::<atom_syndication::Feed>().unwrap().id,
        local.id
    );
    let (_, json) = daemon.get("/tags/local/feed.json").await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["_newsriver"]["id"], local.id.as_str());
    assert_eq!(json["items"].as_array().unwrap().len(), 8);
    let (_, rss) = daemon.get("/tags/science/feed.rss").await;
    let science = check_rss(&rss, &daemon.url("/tags/science/feed.rss"));
    assert_eq!(science.items.len(), 4);

    // Per source: the status page links each source's own feed.
    let statuses = newsriver::Store::open_configured(&river.config.storage)
        .unwrap()
        .feed_statuses()
        .unwrap();
    let atom_feed = statuses
        .iter()
        .find(|f| f.url == river.server.url("/atom.xml"))
        .unwrap();
    let path = format!("/feeds/{}/feed.atom", atom_feed.id);
    let (headers, xml) = daemon.get(&path).await;
    assert_eq!(headers["content-type"], "application/atom+xml");
    let source = check_atom(&xml, &daemon.url(&path));
    assert_eq!(source.entries.len(), 4);
    assert_eq!(source.title.value, "Riverbend Chronicle — via Test River");
    assert!(source.id != main.id && source.id != local.id);
    // Each feed's own status page links the source's own feed.
    let (_, status) = daemon.get(&format!("/status/feeds/{}", atom_feed.id)).await;
    assert!(status.contains(&format!(r#"href="{}""#, daemon.url(&path))));

    for missing in [
        "/tags/nope/feed.atom",
        "/tags/local/feed.xml",
        "/feeds/999/feed.rss",
        "/feeds/abc/feed.rss",
    ] {
        let r = reqwest::get(daemon.url(missing)).await.unwrap();
        assert_eq!(r.status(), 404, "{missing}");
    }
    let r = reqwest::get(daemon.url("/feed.atom?before=garbage"))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    daemon.stop().await;
}

/// Follows `rel` links from `start` until there are none; returns the entry ids seen.
async fn walk(daemon: &Daemon, start: &str, rel: &str) -> (Vec<String>, usize) {
    let mut url = daemon.url(start);
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let xml = reqwest::get(&url).await.unwrap().text().await.unwrap();
        let feed = check_atom(&xml, &url);
        pages += 1;
        let first = feed.links.iter().find(|l| l.rel == "first").unwrap();
        assert_eq!(first.href, daemon.url(start.split('?').next().unwrap()));
        let page: Vec<String> = feed.entries.iter().map(|e| e.id.clone()).collect();
        if rel == "previous" {
            ids.splice(0..0, page);
        } else {
            ids.extend(page);
        }
        match feed.links.iter().find(|l| l.rel == rel) {
            Some(next) => url = next.href.clone(),
            None => return (ids, pages),
        }
        assert!(pages < 50, "paging loops");
    }
}

#[tokio::test]
async fn paged_feeds_walk_back_through_every_entry_and_forward_again() {
    let river = river(5).await;
    let daemon = Daemon::start(river.config.clone()).await;
    let (older, pages) = walk(&daemon, "/feed.atom", "next").await;
    assert_eq!(pages, 4, "18 entries, 5 a page");
    assert_eq!(older.len(), TOTAL);
    assert_eq!(
        older.iter().collect::<HashSet<_>>().len(),
        TOTAL,
        "no repeats"
    );

    // From the last page, `previous` leads back to the first, page by page.
    let xml = reqwest::get(daemon.url("/feed.atom"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut feed: atom_syndication::Feed = xml.parse().unwrap();
    assert!(
        !feed.links.iter().any(|l| l.rel == "previous"),
        "the first page has no previous"
    );
    while let Some(next) = feed.links.iter().find(|l| l.rel == "next").cloned() {
        let xml = reqwest::get(&next.href)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        feed = xml.parse().unwrap();
    }
    let last_page_start = feed
        .links
        .iter()
        .find(|l| l.rel == "self")
        .unwrap()
        .href
        .trim_start_matches(&daemon.url(""))
        .to_string();
    let (newer, pages) = walk(&daemon, &last_page_start, "previous").await;
    assert_eq!(pages, 4);
    assert_eq!(
        newer, older,
        "walking forward sees the same entries in the same order"
    );

    // RSS and JSON Feed page the same way.
    let rss = reqwest::get(daemon.url("/feed.rss"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let channel = check_rss(&rss, &daemon.url("/feed.rss"));
    let links = &channel.atom_ext.as_ref().unwrap().links;
    let next = links.iter().find(|l| l.rel == "next").unwrap();
    assert!(next.href.starts_with(&daemon.url("/feed.rss?before=")));
    let json: serde_json::Value = serde_json::from_str(
        &reqwest::get(daemon.url("/feed.json"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let next = json["next_url"].as_str().unwrap();
    let page2: serde_json::Value =
        serde_json::from_str(&reqwest::get(next).await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(page2["items"][0]["id"], older[5].as_str());

    // People page back through the river too.
    let (_, html) = daemon.get("/").await;
    assert_eq!(html.matches("<li><h2>").count(), 5);
    let link = Regex::new(r#"<a rel="next" href="([^"]+)">Older stories"#).unwrap();
    let older_page = link.captures(&html).expect("a link to older stories")[1].to_string();
    let older_page = html_escape::decode_html_entities(&older_page).into_owned();
    assert!(
        older_page.starts_with(&daemon.url("/?before=")),
        "{older_page}"
    );
    let html2 = reqwest::get(&older_page)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(html2.matches("<li><h2>").count(), 5);
    assert_ne!(html, html2);
    daemon.stop().await;
}

#[tokio::test]
async fn conditional_requests_get_304_until_the_data_changes() {
    let river = river(100).await;
    let daemon = Daemon::start(river.config.clone()).await;
    let client = reqwest::Client::new();
    for path in [
        "/feed.atom",
        "/feed.rss",
        "/feed.json",
        "/",
        "/status",
        "/tags/tech/feed.atom",
    ] {
        let first = client.get(daemon.url(path)).send().await.unwrap();
        assert_eq!(first.status(), 200);
        let etag = first.headers()["etag"].to_str().unwrap().to_string();
        assert!(
            etag.starts_with('"') && !etag.starts_with("W/"),
            "strong ETag: {etag}"
        );
        let modified = first.headers()["last-modified"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(first.headers().contains_key("cache-control"));
        let again = client
            .get(daemon.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers()["etag"], etag.as_str());
        let by_date = client
            .get(daemon.url(path))
            .header("if-modified-since", &modified)
            .send()
            .await
            .unwrap();
        assert_eq!(by_date.status(), 304, "{path} by date");
        let stale = client
            .get(daemon.url(path))
            .header("if-none-match", "\"not-it\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 200);
    }

    let etag_of = |r: &reqwest::Response| r.headers()["etag"].to_str().unwrap().to_string();
    let before = client.get(daemon.url("/feed.atom")).send().await.unwrap();
    let etag = etag_of(&before);
    // Another process (poll --once) stores a change: the next request sees it.
    river
        .server
        .set("/rss2.xml", Route::fixture("rss2_changed.xml"));
    newsriver::poll_once(&river.config).await.unwrap();
    let after = client
        .get(daemon.url("/feed.atom"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        200,
        "changed data is never answered with 304"
    );
    assert_ne!(etag_of(&after), etag);
    daemon.stop().await;
}

#[tokio::test]
async fn gzip_and_brotli_bodies_decode_to_the_document() {
    use std::io::Read;
    let river = river(100).await;
    let daemon = Daemon::start(river.config.clone()).await;
    let plain_client = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .build()
        .unwrap();
    let plain = plain_client
        .get(daemon.url("/feed.atom"))
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_etag = plain.headers()["etag"].to_str().unwrap().to_string();
    let plain = plain.bytes().await.unwrap();
    for encoding in ["gzip", "br"] {
        let response = plain_client
            .get(daemon.url("/feed.atom"))
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["content-encoding"], encoding);
        assert!(
            response.headers()["vary"]
                .to_str()
                .unwrap()
                .to_lowercase()
                .contains("accept-encoding")
        );
        let etag = response.headers()["etag"].to_str().unwrap().to_string();
        assert_ne!(
            etag, plain_etag,
            "an encoded body is another representation"
        );
        let body = response.bytes().await.unwrap();
        assert!(
            body.len() < plain.len() / 2,
            "{encoding}: {} of {}",
            body.len(),
            plain.len()
        );
        let mut decoded = Vec::new();
        match encoding {
            "gzip" => flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut decoded),
            _ => brotli::Decompressor::new(&body[..], 4096).read_to_end(&mut decoded),
        }
        .unwrap();
        assert_eq!(decoded, plain, "{encoding} decodes to the document");
        // The encoded ETag revalidates too.
        let again = plain_client
            .get(daemon.url("/feed.atom"))
            .header("accept-encoding", encoding)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
    }
    daemon.stop().await;
}

#[tokio::test]
async fn documents_render_once_per_change_of_the_stored_data() {
    let river = river(100).await;
    let store = newsriver::Store::open_configured(&river.config.storage).unwrap();
    let state = newsriver::server::AppState {
        store: store.clone(),
        river_id: "urn:uuid:00000000-0000-8000-8000-00000000000a".into(),
        title: "T".into(),
        base_url: None,
        entries: 100,
        attribution: None,
        cache: Default::default(),
        searches: Default::default(),
        hub: None,
        agreement: Default::default(),
    };
    let cache = state.cache.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(newsriver::server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let get = |p: &str| reqwest::get(format!("http://{addr}{p}"));
    for _ in 0..3 {
        assert_eq!(get("/feed.atom").await.unwrap().status(), 200);
    }
    assert_eq!(
        cache.stats(),
        (2, 1),
        "rendered once, served from cache twice"
    );
    get("/feed.rss").await.unwrap();
    assert_eq!(cache.stats(), (2, 2), "each document is cached on its own");
    // Any write (here a failed poll) invalidates.
    let id = store.feed_statuses().unwrap()[0].id;
    let now = chrono::Utc::now();
    store
        .record_failure(id, now, Some(500), "boom", now)
        .unwrap();
    get("/feed.atom").await.unwrap();
    get("/feed.atom").await.unwrap();
    assert_eq!(cache.stats(), (3, 3));
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_read_token_guards_every_format_and_view_and_no_shared_cache_keeps_them() {
    let river = river_with(100, "[access]\nread_token = \"s3cret\"").await;
    let daemon = Daemon::start(river.config.clone()).await;
    let client = reqwest::Client::new();
    for path in [
        "/feed.rss",
        "/feed.json",
        "/tags/local/feed.atom",
        "/feeds/1/feed.json",
        "/",
    ] {
        let open = client.get(daemon.url(path)).send().await.unwrap();
        assert_eq!(open.status(), 401, "{path} without the token");
        let with = client
            .get(daemon.url(path))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(with.status(), 200, "{path} with the token");
        let cache_control = with.headers()["cache-control"].to_str().unwrap();
        assert!(!cache_control.contains("public"), "{path}: {cache_control}");
    }
    daemon.stop().await;
}
