//! `/status` at scale: thousands of feeds generated in the test, filtered and
//! paged in SQL; the same over HTTP as HTML and JSON and from `newsriver
//! feeds`; the access tokens; hostile titles and errors escaped; one feed's
//! own page with its poll history and parse warnings.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{FixtureServer, Route};
use newsriver::Store;
use newsriver::access::{AccessControl, Secret, Tokens};
use newsriver::model::FeedId;
use newsriver::server::AppState;
use newsriver::status::{FeedFilter, PAGE_SIZE, StateFilter};
use newsriver::store::{Failures, FeedSpec, Moved, PollRecord};

const FEEDS: usize = 3_000;
const ADMIN: &str = "admin-secret";
const READ: &str = "reader-secret";
const HOSTILE: &str = "<script>alert('t')</script> Hostile & Co";

/// What the generated river holds, worked out from the same rules that
/// built it: feed `i` (0-based).
fn url(i: usize) -> String {
    format!("https://host{}.example/feeds/{i}.xml", i % 7)
}
fn title(i: usize) -> String {
    if i == 5 {
        HOSTILE.to_string()
    } else {
        format!("Outlet {i:04}")
    }
}
fn tags(i: usize) -> Vec<String> {
    let mut t = Vec::new();
    if i.is_multiple_of(3) {
        t.push("world".to_string());
    }
    if i.is_multiple_of(5) {
        t.push("tech & science".to_string());
    }
    t
}
/// Removed from the configuration: the last 50.
fn removed(i: usize) -> bool {
    i >= FEEDS - 50
}
fn failing(i: usize) -> bool {
    i % 10 == 5 && !removed(i)
}
fn ok(i: usize) -> bool {
    i % 10 < 5 && !removed(i)
}
fn new(i: usize) -> bool {
    !failing(i) && !ok(i) && !removed(i)
}

fn spec(i: usize) -> FeedSpec {
    FeedSpec {
        url: url(i),
        title: Some(title(i)),
        interval: Duration::from_secs(1800),
        tags: tags(i),
        fixed_interval: false,
    }
}

fn record(state: newsriver::model::FeedState, status: u16, error: Option<String>) -> PollRecord {
    PollRecord {
        state,
        status: Some(status),
        error,
        failures: if status >= 400 {
            Failures::Increment
        } else {
            Failures::Reset
        },
        next_poll: Utc::now() + chrono::Duration::minutes(30),
        interval: None,
        body_hash: None,
        validators: None,
        skip: None,
        moved: Moved::Keep,
        took_ms: Some(12),
    }
}

/// A database of [`FEEDS`] feeds in every state.
fn river(dir: &Path) -> Store {
    let store = common::open_store(&dir.join("river.db")).unwrap();
    let now = Utc::now();
    let all: Vec<FeedSpec> = (0..FEEDS).map(spec).collect();
    store.sync_feeds(&all, now).unwrap();
    let kept: Vec<FeedSpec> = (0..FEEDS).filter(|i| !removed(*i)).map(spec).collect();
    let ids = ids(&store);
    for (i, id) in ids.iter().enumerate() {
        if failing(i) {
            let error = if i == 5 {
                "HTTP 500 <img src=x onerror=alert(1)> and a very long tail ".repeat(4)
            } else {
                "HTTP 500".to_string()
            };
            store
                .record_poll(
                    *id,
                    now,
                    &record(newsriver::model::FeedState::Failing, 500, Some(error)),
                )
                .unwrap();
        } else if ok(i) {
            store
                .record_poll(
                    *id,
                    now,
                    &record(newsriver::model::FeedState::Ok, 304, None),
                )
                .unwrap();
        }
    }
    store.sync_feeds(&kept, now).unwrap();
    store
}

/// Feed ids in the order the feeds were generated.
fn ids(store: &Store) -> Vec<FeedId> {
    let statuses = store.feed_statuses().unwrap();
    (0..FEEDS)
        .map(|i| statuses.iter().find(|s| s.url == url(i)).unwrap().id)
        .collect()
}

fn expected(keep: impl Fn(usize) -> bool) -> Vec<String> {
    // Failing first, then by title (lower case), as the page orders them.
    let mut rows: Vec<(bool, String)> = (0..FEEDS)
        .filter(|i| keep(*i))
        .map(|i| (!failing(i), title(i)))
        .collect();
    rows.sort_by_key(|r| (r.0, r.1.to_lowercase()));
    rows.into_iter().map(|(_, t)| t).collect()
}

fn titles(store: &Store, filter: &FeedFilter) -> Vec<String> {
    store
        .feeds_filtered(filter)
        .unwrap()
        .into_iter()
        .map(|f| f.title.unwrap())
        .collect()
}

fn filter(
    state: Option<&str>,
    tag: Option<&str>,
    host: Option<&str>,
    q: Option<&str>,
) -> FeedFilter {
    FeedFilter::new(state, tag, host, q, None).unwrap()
}

#[test]
fn every_filter_and_page_is_answered_in_sql_on_thousands_of_feeds() {
    let dir = tempfile::tempdir().unwrap();
    let store = river(dir.path());

    assert_eq!(titles(&store, &FeedFilter::default()), expected(|_| true));
    assert_eq!(
        titles(&store, &filter(Some("failing"), None, None, None)),
        expected(failing)
    );
    assert_eq!(
        titles(&store, &filter(Some("ok"), None, None, None)),
        expected(ok)
    );
    assert_eq!(
        titles(&store, &filter(Some("new"), None, None, None)),
        expected(new)
    );
    assert_eq!(
        titles(&store, &filter(Some("retired"), None, None, None)),
        expected(removed)
    );
    assert_eq!(
        titles(&store, &filter(None, Some("world"), None, None)),
        expected(|i| i % 3 == 0)
    );
    assert_eq!(
        titles(&store, &filter(None, Some("tech & science"), None, None)),
        expected(|i| i % 5 == 0)
    );
    assert_eq!(
        titles(&store, &filter(None, None, Some("HOST3.example"), None)),
        expected(|i| i % 7 == 3)
    );
    // A host is matched whole: no feed is on "host3.exampl" or "example".
    assert!(titles(&store, &filter(None, None, Some("host3.exampl"), None)).is_empty());
    assert!(titles(&store, &filter(None, None, Some("example"), None)).is_empty());
    // Title or URL contains, case-insensitive; LIKE's wildcards are literal.
    assert_eq!(
        titles(&store, &filter(None, None, None, Some("outlet 012"))),
        expected(|i| i != 5 && format!("{i:04}").starts_with("012"))
    );
    assert_eq!(
        titles(&store, &filter(None, None, None, Some("/feeds/2999.xml"))),
        vec![title(2999)]
    );
    assert!(titles(&store, &filter(None, None, None, Some("%"))).is_empty());
    assert!(titles(&store, &filter(None, None, None, Some("outlet_0"))).is_empty());
    // Combined.
    assert_eq!(
        titles(
            &store,
            &filter(Some("failing"), Some("world"), Some("host1.example"), None)
        ),
        expected(|i| failing(i) && i % 3 == 0 && i % 7 == 1)
    );

    // Pages of PAGE_SIZE, walking through everything once.
    let all = expected(|_| true);
    let first = store.feed_page(&FeedFilter::default()).unwrap();
    assert_eq!(first.matching as usize, FEEDS);
    assert_eq!(first.pages, FEEDS.div_ceil(PAGE_SIZE));
    let mut walked = Vec::new();
    for page in 1..=first.pages {
        let p = store
            .feed_page(&FeedFilter::default().at_page(page))
            .unwrap();
        assert_eq!(p.page, page);
        assert!(p.feeds.len() <= PAGE_SIZE);
        walked.extend(p.feeds.into_iter().map(|f| f.title.unwrap()));
    }
    assert_eq!(walked, all);
    let beyond = store
        .feed_page(&FeedFilter::default().at_page(first.pages + 1))
        .unwrap();
    assert!(beyond.feeds.is_empty());
    assert_eq!(beyond.matching as usize, FEEDS);
    // A filtered page counts what matches.
    let failing_page = store
        .feed_page(&filter(Some("failing"), None, None, None))
        .unwrap();
    assert_eq!(failing_page.matching as usize, expected(failing).len());
    assert!(failing_page.feeds.iter().all(|f| f.last_error.is_some()));

    // The summary counts every state.
    let s = store.status_summary(Utc::now()).unwrap();
    assert_eq!(s.feeds.total as usize, FEEDS);
    assert_eq!(s.feeds.failing as usize, expected(failing).len());
    assert_eq!(s.feeds.ok as usize, expected(ok).len());
    assert_eq!(s.feeds.new as usize, expected(new).len());
    assert_eq!(s.feeds.retired as usize, expected(removed).len());
    assert_eq!(
        s.polls_last_hour as usize,
        expected(|i| failing(i) || ok(i)).len()
    );
    assert_eq!(s.failures.len(), 1);
    assert_eq!(s.failures[0].kind, "HTTP 500");
    assert_eq!(s.failures[0].feeds, s.feeds.failing);
    assert!(s.next_poll.is_some());
    assert!(s.database_bytes > 0);
}

#[test]
fn poll_history_keeps_the_newest_twenty_polls_of_each_feed() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("h.db")).unwrap();
    store.sync_feeds(&[spec(0), spec(1)], Utc::now()).unwrap();
    let ids = {
        let s = store.feed_statuses().unwrap();
        [s[0].id, s[1].id]
    };
    let start: DateTime<Utc> = Utc::now() - chrono::Duration::hours(2);
    for n in 0..25 {
        let at = start + chrono::Duration::minutes(n);
        let mut r = record(
            newsriver::model::FeedState::Failing,
            503,
            Some(format!("poll {n}")),
        );
        r.took_ms = Some(n as u64);
        store.record_poll(ids[0], at, &r).unwrap();
    }
    store
        .record_poll(
            ids[1],
            Utc::now(),
            &record(newsriver::model::FeedState::Ok, 304, None),
        )
        .unwrap();
    let d = store.feed_detail(ids[0]).unwrap().unwrap();
    assert_eq!(d.history.len(), 20);
    assert_eq!(
        d.history[0].error.as_deref(),
        Some("poll 24"),
        "newest first"
    );
    assert_eq!(d.history[19].error.as_deref(), Some("poll 5"));
    assert_eq!(d.history[0].duration_ms, 24);
    assert_eq!(d.history[0].outcome, "failed");
    assert_eq!(d.history[0].http_status, Some(503));
    let other = store.feed_detail(ids[1]).unwrap().unwrap();
    assert_eq!(other.history.len(), 1, "another feed's history is its own");
    assert_eq!(other.history[0].outcome, "not modified");
    assert!(store.feed_detail(999_999).unwrap().is_none());

    store
        .set_parse_warnings(
            ids[0],
            &["unescaped & in title".into(), "bad date\nline".into()],
        )
        .unwrap();
    let d = store.feed_detail(ids[0]).unwrap().unwrap();
    assert_eq!(d.parse_warnings, ["unescaped & in title", "bad date line"]);
    store.set_parse_warnings(ids[0], &[]).unwrap();
    assert!(
        store
            .feed_detail(ids[0])
            .unwrap()
            .unwrap()
            .parse_warnings
            .is_empty()
    );
}

/// The HTTP server over a store, with the admin and read tokens set.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    async fn start(store: Store) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = AppState {
            river_id: store.river_id().unwrap(),
            store,
            title: "Test River".into(),
            base_url: None,
            entries: 50,
            attribution: None,
            cache: Default::default(),
            searches: Arc::new(Default::default()),
            hub: None,
            agreement: Default::default(),
        };
        let access = AccessControl::new(Tokens {
            admin: Some(Secret::new(ADMIN)),
            read: Some(Secret::new(READ)),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(newsriver::server::serve_with(
            listener,
            state,
            axum::Router::new(),
            access,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            stop: Some(stop),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut r = reqwest::Client::new().get(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    async fn text(&self, path: &str) -> String {
        let r = self.get(path, Some(ADMIN)).await;
        assert_eq!(r.status(), 200, "{path}");
        r.text().await.unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The feed titles in the table of a page, in order.
fn table_titles(html: &str) -> Vec<String> {
    html.split("<tr class=\"")
        .skip(1)
        .map(|row| {
            let name = row.split("\">").nth(2).unwrap();
            name.split("</a>").next().unwrap().to_string()
        })
        .collect()
}

fn escaped(text: &str) -> String {
    html_escape::encode_quoted_attribute(text).into_owned()
}

#[tokio::test]
async fn status_page_pages_filters_and_escapes_at_scale() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(river(dir.path())).await;

    let html = server.text("/status").await;
    assert!(html.len() < 200_000, "first page is {} bytes", html.len());
    let rows = table_titles(&html);
    let all = expected(|_| true);
    assert_eq!(rows.len(), PAGE_SIZE);
    assert_eq!(
        rows,
        all[..PAGE_SIZE]
            .iter()
            .map(|t| escaped(t))
            .collect::<Vec<_>>()
    );
    let f = expected(failing).len();
    let text = format!(
        "{FEEDS} feeds: <a href=\"http://{}/status?state=ok\">{} ok</a>",
        server.addr,
        expected(ok).len()
    );
    assert!(html.contains(&text), "summary: {text}");
    assert!(html.contains(&format!("{f} failing</a>")));
    assert!(html.contains(&format!("{} retired</a>", expected(removed).len())));
    assert!(html.contains(&format!("HTTP 500: {f}")), "failures by kind");
    assert!(html.contains("Polls in the last hour"));
    assert!(html.contains(&format!("page 1 of {}", FEEDS.div_ceil(PAGE_SIZE))));
    // Hostile title and error: text, never markup; the error shortened.
    assert!(
        !html.contains("<script>alert") && !html.contains("<img"),
        "escaped"
    );
    assert!(html.contains("&lt;script&gt;alert(&#x27;t&#x27;)&lt;/script&gt; Hostile &amp; Co"));
    assert!(html.contains("HTTP 500 &lt;img src=x onerror=alert(1)&gt;"));

    let last = FEEDS.div_ceil(PAGE_SIZE);
    let html = server.text(&format!("/status?page={last}")).await;
    let rows = table_titles(&html);
    assert_eq!(rows.len(), FEEDS - (last - 1) * PAGE_SIZE);
    assert_eq!(rows.last().unwrap(), &escaped(all.last().unwrap()));
    assert!(html.contains("rel=\"prev\""));
    assert!(!html.contains("rel=\"next\""));

    let html = server
        .text("/status?state=failing&tag=world&host=host1.example")
        .await;
    assert_eq!(
        table_titles(&html),
        expected(|i| failing(i) && i % 3 == 0 && i % 7 == 1)
    );
    let html = server.text("/status?q=outlet+29&state=").await;
    assert_eq!(
        table_titles(&html),
        expected(|i| i != 5 && format!("{i:04}").starts_with("29"))
    );
    let html = server.text("/status?tag=tech+%26+science&page=2").await;
    let tech = expected(|i| i % 5 == 0);
    assert_eq!(table_titles(&html), tech[PAGE_SIZE..2 * PAGE_SIZE].to_vec());
    assert!(
        html.contains("href=\"http://")
            && html.contains("status?tag=tech+%26+science&amp;page=3\"")
    );
    let html = server.text("/status?q=nothing-matches-this").await;
    assert!(html.contains("No feed matches."));

    for bad in [
        "/status?state=sideways",
        "/status?page=0",
        "/status.json?page=x",
    ] {
        let r = server.get(bad, Some(ADMIN)).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert!(!r.text().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn status_json_has_the_summary_filters_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(river(dir.path())).await;
    let r = server.get("/status.json", Some(ADMIN)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(doc["summary"]["feeds"]["total"], FEEDS);
    assert_eq!(doc["summary"]["feeds"]["failing"], expected(failing).len());
    assert_eq!(doc["matching"], FEEDS);
    assert_eq!(doc["page"], 1);
    assert_eq!(doc["pages"], FEEDS.div_ceil(PAGE_SIZE));
    let feeds = doc["feeds"].as_array().unwrap();
    assert_eq!(feeds.len(), PAGE_SIZE);
    assert_eq!(
        feeds[0]["title"], HOSTILE,
        "JSON carries the title as it is"
    );
    assert_eq!(feeds[0]["state"], "failing");
    assert!(
        doc["next"]
            .as_str()
            .unwrap()
            .ends_with("/status.json?page=2")
    );

    let doc: serde_json::Value = serde_json::from_str(
        &server
            .text("/status.json?state=retired&host=host2.example")
            .await,
    )
    .unwrap();
    let want = expected(|i| removed(i) && i % 7 == 2);
    assert_eq!(doc["matching"], want.len());
    let got: Vec<&str> = doc["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["title"].as_str().unwrap())
        .collect();
    assert_eq!(got, want);
    assert!(
        doc["feeds"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["state"] == "removed")
    );
    assert!(doc["next"].is_null());
    assert_eq!(doc["filter"]["state"], "retired");
    assert_eq!(doc["filter"]["host"], "host2.example");
}

#[tokio::test]
async fn status_routes_need_the_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let store = river(dir.path());
    let id = ids(&store)[5];
    let server = Server::start(store).await;
    for path in [
        "/status".to_string(),
        "/status?state=failing".to_string(),
        "/status.json".to_string(),
        format!("/status/feeds/{id}"),
    ] {
        assert_eq!(
            server.get(&path, None).await.status(),
            401,
            "{path} without a token"
        );
        assert_eq!(
            server.get(&path, Some(READ)).await.status(),
            401,
            "{path} with the read token"
        );
        assert_eq!(server.get(&path, Some(ADMIN)).await.status(), 200, "{path}");
        let with_query = format!(
            "{path}{}token={ADMIN}",
            if path.contains('?') { "&" } else { "?" }
        );
        assert_eq!(
            server.get(&with_query, None).await.status(),
            200,
            "{with_query}"
        );
    }
    assert_eq!(
        server
            .get("/status/feeds/999999", Some(ADMIN))
            .await
            .status(),
        404
    );
    assert_eq!(
        server.get("/status/feeds/abc", Some(ADMIN)).await.status(),
        404
    );
    assert_eq!(
        server.get("/status/feeds/1", Some(READ)).await.status(),
        401
    );
}

#[tokio::test]
async fn a_feeds_own_page_shows_its_polls_warnings_and_schedule() {
    let fixtures = FixtureServer::start().await;
    fixtures.set(
        "/rss2.xml",
        Route::fixture("rss2.xml").with_validators("\"v1\"", "Tue, 01 Dec 2026 10:00:00 GMT"),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = common::config_for(dir.path(), &[fixtures.url("/rss2.xml")], "");
    // Two polls: one that stores, one that gets a 304.
    newsriver::poll_once(&config).await.unwrap();
    newsriver::poll_once(&config).await.unwrap();
    let store = newsriver::Store::open_configured(&config.storage).unwrap();
    let id = store.feed_statuses().unwrap()[0].id;
    store
        .set_parse_warnings(id, &["<b>recovered</b> from an unclosed <item>".into()])
        .unwrap();
    let server = Server::start(store).await;
    let html = server.text(&format!("/status/feeds/{id}")).await;
    assert!(html.contains("Northfield Ledger"), "{html}");
    assert!(
        html.contains("<code>&quot;v1&quot;</code>"),
        "ETag shown: {html}"
    );
    assert!(html.contains("Tue, 01 Dec 2026 10:00:00 GMT"));
    assert!(html.contains("&lt;b&gt;recovered&lt;/b&gt; from an unclosed &lt;item&gt;"));
    let history = html.split("<h2>Recent polls</h2>").nth(1).unwrap();
    assert_eq!(history.matches("<tr><td>").count(), 2, "{history}");
    let newest = history.find("not modified").unwrap();
    let oldest = history.find("stored").unwrap();
    assert!(newest < oldest, "newest first");
    assert!(history.contains("<td>304</td>") && history.contains("<td>200</td>"));
    assert!(history.contains(" ms</td>"));
    assert!(html.contains("Schedule</dt><dd>every"));
    // The table links each feed to its page.
    let status = server.text("/status").await;
    assert!(status.contains(&format!("/status/feeds/{id}\">Northfield Ledger</a>")));
}

#[tokio::test]
async fn feeds_command_takes_the_same_filters() {
    let dir = tempfile::tempdir().unwrap();
    drop(river(dir.path()));
    let config = dir.path().join("c.toml");
    std::fs::write(&config, common::storage_toml(&dir.path().join("river.db"))).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_newsriver"))
            .arg("feeds")
            .args(args)
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["--state", "failing", "--tag", "world", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let got: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert_eq!(got, expected(|i| failing(i) && i % 3 == 0));
    let (code, out, _) = run(&["--host", "host4.example", "--contains", "outlet 00"]);
    assert_eq!(code, Some(0));
    let want = expected(|i| i % 7 == 4 && i < 100 && i != 5);
    assert_eq!(out.lines().count(), want.len() + 1, "{out}");
    for (line, title) in out.lines().skip(1).zip(&want) {
        assert!(line.starts_with(title.as_str()), "{line}");
    }
    let (code, _, err) = run(&["--state", "sideways"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown state"), "{err}");
    let _ = StateFilter::ALL;
}
