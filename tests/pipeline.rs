//! End to end: fixture feeds served on loopback → poll → SQLite → merged Atom feed.

mod common;

use std::time::Duration;

use common::{FixtureServer, Route, config_for};
use newsriver::scheduler::{Outcome, Summary};

const FORMATS: &[(&str, &str, &str, usize)] = &[
    ("/rss2.xml", "rss2.xml", "Northfield Ledger", 4),
    ("/rss1.rdf", "rss1.rdf", "Lakeside Science Digest", 4),
    ("/atom.xml", "atom.xml", "Riverbend Chronicle", 4),
    ("/feed.json", "feed.json", "Summit Tech Weekly", 4),
];

async fn serve_all_formats() -> FixtureServer {
    let server = FixtureServer::start().await;
    for (path, file, _, _) in FORMATS {
        server.set(path, Route::fixture(file));
    }
    server
}

/// Starts the daemon on 127.0.0.1:0; returns its address, a stop switch and its task.
async fn start_daemon(
    config: newsriver::Config,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(newsriver::run(config, listener, async move {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

#[tokio::test]
async fn one_poll_stores_every_format_and_the_merged_feed_credits_each_source() {
    let server = serve_all_formats().await;
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = FORMATS.iter().map(|(p, ..)| server.url(p)).collect();
    let config = config_for(dir.path(), &urls, "");

    let reports = newsriver::poll_once(&config).await.unwrap();
    let summary = Summary::of(&reports);
    assert_eq!(summary.ok, 4, "{reports:?}");
    assert_eq!(summary.new, 16);

    let (addr, stop, task) = start_daemon(config).await;
    let response = reqwest::get(format!("http://{addr}/feed.atom"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/atom+xml");
    let body = response.text().await.unwrap();
    let feed: atom_syndication::Feed = body.parse().expect("the merged feed is well-formed Atom");

    assert_eq!(feed.entries.len(), 16);
    assert!(
        feed.links
            .iter()
            .any(|l| l.rel == "self" && l.href == format!("http://{addr}/feed.atom"))
    );
    assert!(feed.generator.is_some());
    for (path, _, title, count) in FORMATS {
        let from_source: Vec<_> = feed
            .entries
            .iter()
            .filter(|e| e.source.as_ref().is_some_and(|s| s.title.value == *title))
            .collect();
        assert_eq!(from_source.len(), *count, "entries credited to {title}");
        for entry in from_source {
            let source = entry.source.as_ref().unwrap();
            assert!(
                source
                    .links
                    .iter()
                    .any(|l| l.rel == "self" && l.href == server.url(path)),
                "{title} self link"
            );
            assert!(
                source
                    .links
                    .iter()
                    .any(|l| l.rel == "alternate" && l.href.contains(".example/")),
                "{title} site link"
            );
            assert!(
                entry
                    .links
                    .iter()
                    .any(|l| l.rel == "alternate" && l.href.starts_with("https://"))
            );
            assert!(entry.id.starts_with("urn:uuid:"));
            assert!(!entry.authors.is_empty() && !entry.authors[0].name.is_empty());
            assert!(entry.published.is_some());
        }
    }
    // Newest first.
    let times: Vec<_> = feed.entries.iter().map(|e| e.published.unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    let home = reqwest::get(format!("http://{addr}/")).await.unwrap();
    assert_eq!(home.headers()["content-type"], "text/html; charset=utf-8");
    let html = home.text().await.unwrap();
    assert!(html.contains(r#"<link rel="alternate" type="application/atom+xml""#));
    assert!(html.contains("Riverbend bridge reopens after six-month repair"));

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn repolling_adds_no_duplicates_and_a_changed_feed_updates_in_place() {
    let server = serve_all_formats().await;
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = FORMATS.iter().map(|(p, ..)| server.url(p)).collect();
    let config = config_for(dir.path(), &urls, "");

    newsriver::poll_once(&config).await.unwrap();
    let again = Summary::of(&newsriver::poll_once(&config).await.unwrap());
    assert_eq!((again.new, again.updated), (0, 0));
    let store = newsriver::Store::open_configured(&config.storage).unwrap();
    assert_eq!(store.entry_count().unwrap(), 16);
    let uid_of_edited = store
        .stories(100)
        .unwrap()
        .into_iter()
        .find(|s| s.title == "City council approves riverside bike lanes")
        .unwrap()
        .uid;

    server.set("/rss2.xml", Route::fixture("rss2_changed.xml"));
    let changed = newsriver::poll_once(&config).await.unwrap();
    let rss = changed
        .iter()
        .find(|r| r.url.ends_with("/rss2.xml"))
        .unwrap();
    assert!(
        matches!(
            rss.outcome,
            Outcome::Stored {
                new: 1,
                updated: 1,
                ..
            }
        ),
        "{:?}",
        rss.outcome
    );
    assert_eq!(store.entry_count().unwrap(), 17);
    let stories = store.stories(100).unwrap();
    let edited = stories.iter().find(|s| s.uid == uid_of_edited).unwrap();
    assert_eq!(
        edited.title,
        "City council approves riverside bike lanes after late amendment"
    );
    assert!(
        stories
            .iter()
            .any(|s| s.title == "Water main break closes Elm Street")
    );
}

#[tokio::test]
async fn second_poll_is_conditional_and_a_304_writes_nothing() {
    let server = FixtureServer::start().await;
    let last_modified = "Wed, 25 Nov 2026 10:00:00 GMT";
    server.set(
        "/atom.xml",
        Route::fixture("atom.xml").with_validators("\"v1\"", last_modified),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(dir.path(), &[server.url("/atom.xml")], "");

    newsriver::poll_once(&config).await.unwrap();
    let store = newsriver::Store::open_configured(&config.storage).unwrap();
    let before = store.stories(100).unwrap();
    let status = &store.feed_statuses().unwrap()[0];
    assert_eq!(status.validators.etag.as_deref(), Some("\"v1\""));

    let reports = newsriver::poll_once(&config).await.unwrap();
    assert_eq!(reports[0].outcome, Outcome::NotModified);
    let seen = server.seen("/atom.xml");
    assert_eq!(seen.len(), 2);
    assert!(seen[0].headers.get("if-none-match").is_none());
    assert_eq!(seen[1].headers["if-none-match"], "\"v1\"");
    assert_eq!(seen[1].headers["if-modified-since"], last_modified);
    assert_eq!(seen[1].status, 304);
    assert!(
        seen[1].headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("newsriver/")
    );
    assert_eq!(
        store.stories(100).unwrap(),
        before,
        "a 304 changes no entry"
    );
    assert_eq!(store.feed_statuses().unwrap()[0].last_status, Some(304));
}

#[tokio::test]
async fn failing_feeds_are_recorded_and_the_others_still_arrive() {
    let server = FixtureServer::start().await;
    server.set("/ok.xml", Route::fixture("rss2.xml"));
    server.set("/broken.xml", Route::Status(500));
    server.set("/junk.xml", Route::feed("this is not a feed", "text/plain"));
    let unreachable = format!("http://{}/feed.xml", common::unreachable_addr().await);
    let dir = tempfile::tempdir().unwrap();
    let feeds = vec![
        server.url("/broken.xml"),
        unreachable.clone(),
        server.url("/junk.xml"),
        server.url("/ok.xml"),
    ];
    let config = config_for(dir.path(), &feeds, "");

    let started = chrono::Utc::now();
    let summary = Summary::of(&newsriver::poll_once(&config).await.unwrap());
    assert_eq!((summary.ok, summary.failed, summary.new), (1, 3, 4));

    let store = newsriver::Store::open_configured(&config.storage).unwrap();
    let statuses = store.feed_statuses().unwrap();
    let by_url = |u: &str| statuses.iter().find(|s| s.url == u).unwrap();
    let broken = by_url(&server.url("/broken.xml"));
    assert_eq!(broken.state, newsriver::model::FeedState::Failing);
    assert_eq!(broken.last_status, Some(500));
    assert_eq!(broken.last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(broken.failures, 1);
    assert!(broken.next_poll_at > started, "a retry is scheduled");
    let down = by_url(&unreachable);
    assert_eq!(down.state, newsriver::model::FeedState::Failing);
    assert_eq!(down.last_status, None);
    assert!(
        down.last_error.as_deref().unwrap().contains("connect"),
        "{:?}",
        down.last_error
    );
    let junk = by_url(&server.url("/junk.xml"));
    assert!(
        junk.last_error
            .as_deref()
            .unwrap()
            .starts_with("not a readable feed"),
        "{:?}",
        junk.last_error
    );
    let ok = by_url(&server.url("/ok.xml"));
    assert_eq!(ok.state, newsriver::model::FeedState::Ok);
    assert_eq!(ok.entries, 4);

    // A second failure counts up.
    newsriver::poll_once(&config).await.unwrap();
    let broken = store
        .feed_statuses()
        .unwrap()
        .into_iter()
        .find(|s| s.url == server.url("/broken.xml"))
        .unwrap();
    assert_eq!(broken.failures, 2);
}

#[tokio::test]
async fn the_daemon_polls_then_stops_cleanly_on_its_shutdown_signal() {
    let server = serve_all_formats().await;
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = FORMATS.iter().map(|(p, ..)| server.url(p)).collect();
    let config = config_for(dir.path(), &urls, "");
    let storage = config.storage.clone();

    let (addr, stop, task) = start_daemon(config).await;
    // The daemon polls new feeds at once; wait (bounded) for them to land.
    let mut entries = 0;
    for _ in 0..100 {
        let body = reqwest::get(format!("http://{addr}/feed.atom"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        entries = body.matches("<entry>").count();
        if entries == 16 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(entries, 16);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops promptly")
        .unwrap()
        .unwrap();
    assert!(
        reqwest::get(format!("http://{addr}/")).await.is_err(),
        "no longer serving"
    );

    let store = newsriver::Store::open_configured(&storage).unwrap();
    assert_eq!(store.entry_count().unwrap(), 16);
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert!(
        store
            .feed_statuses()
            .unwrap()
            .iter()
            .all(|f| f.state == newsriver::model::FeedState::Ok)
    );
}

#[tokio::test]
async fn the_merged_feed_answers_304_to_its_own_etag() {
    let server = serve_all_formats().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(dir.path(), &[server.url("/atom.xml")], "");
    newsriver::poll_once(&config).await.unwrap();
    let (addr, stop, task) = start_daemon(config).await;
    let client = reqwest::Client::new();
    let first = client
        .get(format!("http://{addr}/feed.atom"))
        .send()
        .await
        .unwrap();
    let etag = first.headers()["etag"].clone();
    let second = client
        .get(format!("http://{addr}/feed.atom"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 304);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn poll_once_keeps_the_per_host_gap() {
    let server = serve_all_formats().await;
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = FORMATS.iter().map(|(p, ..)| server.url(p)).collect();
    // Four feeds on one host, 150 ms apart; config_for's own gap is overridden.
    let mut config = config_for(dir.path(), &urls, "");
    config.fetch.host_gap = newsriver::config::Gap(Duration::from_millis(150));
    let summary = Summary::of(&newsriver::poll_once(&config).await.unwrap());
    assert_eq!(summary.ok, 4);
    let mut starts: Vec<std::time::Instant> = FORMATS
        .iter()
        .flat_map(|(p, ..)| server.seen(p))
        .map(|s| s.at)
        .collect();
    starts.sort();
    for pair in starts.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(140),
            "requests to one host {gap:?} apart"
        );
    }
}
