//! Hostile servers: every fault the fetch layer must survive, each served by
//! the fault server on loopback beside a healthy feed. For each: the poll
//! ends, the healthy feed still updates, and the failure is recorded on that
//! feed alone with the right state and next attempt.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::config_for;
use common::faults::{BILLION_LAUGHS, Fault, FaultServer};
use newsriver::fetch::Fetcher;
use newsriver::model::{FeedState, FeedStatus};
use newsriver::scheduler::{Clock, Outcome, ParseThreads, Policy, Poller};
use newsriver::store::FeedSpec;

const RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Healthy</title><link>http://h.example/</link>
<item><title>One</title><guid>1</guid><pubDate>Thu, 26 Nov 2026 09:15:00 +0000</pubDate></item>
<item><title>Two</title><guid>2</guid><pubDate>Thu, 26 Nov 2026 10:15:00 +0000</pubDate></item></channel></rss>"#;

/// Limits small enough to hit quickly, and a transfer deadline shorter than
/// the per-request timeout so the slow-drip guard is what fires.
const LIMITS: &str = "transfer_deadline = \"2s\"\nmax_body_bytes = 1048576\nmax_decompressed_bytes = 4194304\nmax_redirects = 5\n";

fn faults(server: &FaultServer) -> Vec<(String, Fault)> {
    let in_3h = (Utc::now() + chrono::Duration::hours(3)).to_rfc2822();
    let in_3h = in_3h.replace("+0000", "GMT");
    let mut wrong_label = RSS.replace("Healthy", "Caf\u{e9} \u{2014} ol\u{e9}");
    wrong_label = wrong_label.replace("encoding=\"UTF-8\"", "encoding=\"windows-1252\"");
    let deep = format!(
        "<rss version=\"2.0\"><channel>{}{}</channel></rss>",
        "<x>".repeat(50_000),
        "</x>".repeat(50_000)
    );
    let hops = (0..7).map(|i| {
        (
            format!("/hops-{i}"),
            Fault::redirect(302, &format!("/hops-{}", i + 1)),
        )
    });
    let mut all: Vec<(String, Fault)> = vec![
        ("/healthy", Fault::body("application/rss+xml", RSS)),
        ("/hang", Fault::Hang),
        (
            "/drip",
            Fault::Drip {
                every: Duration::from_millis(100),
            },
        ),
        ("/500", Fault::status(500, &[])),
        ("/503", Fault::status(503, &[("Retry-After", "7200")])),
        (
            "/429",
            Fault::status(429, &[("Retry-After", in_3h.as_str())]),
        ),
        ("/loop-a", Fault::redirect(301, &server.url("/loop-b"))),
        ("/loop-b", Fault::redirect(301, &server.url("/loop-a"))),
        ("/chain-1", Fault::redirect(301, &server.url("/chain-2"))),
        ("/chain-2", Fault::redirect(308, "/chain-3")),
        ("/chain-3", Fault::body("application/rss+xml", RSS)),
        (
            "/temporary",
            Fault::redirect(302, &server.url("/elsewhere")),
        ),
        ("/elsewhere", Fault::body("application/rss+xml", RSS)),
        ("/gone", Fault::status(410, &[])),
        (
            "/oversize",
            Fault::Answer {
                status: 200,
                headers: vec![],
                body: vec![b' '; 3 << 20].into(),
                length: false,
            },
        ),
        ("/bomb", Fault::gzip_bomb(1 << 30)),
        (
            "/laughs",
            Fault::body("application/rss+xml", BILLION_LAUGHS),
        ),
        (
            "/wrong-charset",
            Fault::body("text/xml; charset=iso-8859-1", wrong_label),
        ),
        ("/latin1-labelled-utf8", {
            // windows-1252 bytes that claim to be UTF-8, twice.
            let mut body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>Caf".to_vec();
            body.extend_from_slice(b"\xe9 \x97 news</title><item><title>x</title><guid>1</guid></item></channel></rss>");
            Fault::body("application/rss+xml; charset=utf-8", body)
        }),
        (
            "/invalid",
            Fault::body(
                "application/rss+xml",
                "<rss version=\"2.0\"><channel><title>x</chan",
            ),
        ),
        ("/empty", Fault::body("application/rss+xml", "")),
        (
            "/html",
            Fault::body(
                "text/html",
                "<!DOCTYPE html><html><head><title>Blog</title></head><body>Hi</body></html>",
            ),
        ),
        ("/deep", Fault::body("application/rss+xml", deep)),
    ]
    .into_iter()
    .map(|(path, fault)| (path.to_string(), fault))
    .collect();
    all.extend(hops);
    all
}

/// Feeds polled directly (redirect targets are reached only by redirect).
const POLLED: &[&str] = &[
    "/healthy",
    "/hang",
    "/drip",
    "/500",
    "/503",
    "/429",
    "/loop-a",
    "/chain-1",
    "/temporary",
    "/gone",
    "/oversize",
    "/bomb",
    "/laughs",
    "/wrong-charset",
    "/latin1-labelled-utf8",
    "/invalid",
    "/empty",
    "/html",
    "/deep",
    "/hops-0",
];

fn status_of<'a>(statuses: &'a [FeedStatus], server: &FaultServer, path: &str) -> &'a FeedStatus {
    let url = server.url(path);
    statuses.iter().find(|s| s.url == url).unwrap()
}

fn minutes_from_now(s: &FeedStatus) -> i64 {
    (s.next_poll_at - Utc::now()).num_minutes()
}

#[tokio::test]
async fn every_fault_is_recorded_on_its_feed_and_healthy_feeds_still_update() {
    let server = FaultServer::start().await;
    for (path, fault) in faults(&server) {
        server.set(&path, fault);
    }
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = POLLED.iter().map(|p| server.url(p)).collect();
    let config = config_for(dir.path(), &urls, LIMITS);

    // Returns at all: hangs and drips are cut off (their errors below say by
    // the transfer deadline, not the longer per-request timeout).
    let reports = newsriver::poll_once(&config).await.unwrap();
    assert_eq!(reports.len(), POLLED.len());

    let store = newsriver::Store::open_configured(&config.storage).unwrap();
    let statuses = store.feed_statuses().unwrap();
    for f in &statuses {
        eprintln!(
            "{:<40} {:<9} {:?} {:?}",
            f.url,
            f.state.as_str(),
            f.last_status,
            f.last_error
        );
    }
    let s = |p| status_of(&statuses, &server, p);

    // Healthy feeds, and those reached by a redirect, update.
    for path in ["/healthy", "/chain-1", "/temporary"] {
        assert_eq!(s(path).state, FeedState::Ok, "{path}: {:?}", s(path));
        assert_eq!(s(path).entries, 2, "{path}");
    }
    // Valid UTF-8 labelled latin-1 twice over still reads right.
    assert_eq!(s("/wrong-charset").state, FeedState::Ok);
    assert_eq!(s("/wrong-charset").title.as_deref(), Some("Café — olé"));
    // And the reverse: windows-1252 bytes labelled UTF-8.
    assert_eq!(
        s("/latin1-labelled-utf8").title.as_deref(),
        Some("Café — news")
    );

    // Ordinary failures: failing, one failure counted, retried after the interval (30 m).
    let failures = [
        ("/hang", "within 2s"),
        ("/drip", "within 2s"),
        ("/500", "HTTP 500"),
        ("/loop-a", "redirect loop"),
        ("/oversize", "larger than 1048576 bytes"),
        ("/bomb", "decompressed body larger than 4194304 bytes"),
        ("/invalid", "not a readable feed"),
        ("/empty", "empty"),
        ("/html", "this is a web page, not a feed"),
        ("/deep", "nested deeper"),
        ("/hops-0", "more than 5 redirects"),
    ];
    for (path, error) in failures {
        let f = s(path);
        assert_eq!(f.state, FeedState::Failing, "{path}: {f:?}");
        assert_eq!(f.failures, 1, "{path}");
        let message = f.last_error.as_deref().unwrap_or("");
        assert!(message.contains(error), "{path}: {message:?}");
        let next = minutes_from_now(f);
        assert!(
            (25..=34).contains(&next),
            "{path}: next attempt in {next} min"
        );
    }

    // Billion laughs: quick-xml does not expand custom entities, so the
    // document reads with the references left unexpanded: bounded.
    let laughs = s("/laughs");
    assert_eq!(laughs.state, FeedState::Ok, "{laughs:?}");
    let laugh_stories: Vec<_> = store
        .stories(100)
        .unwrap()
        .into_iter()
        .filter(|st| st.source.feed_url == server.url("/laughs"))
        .collect();
    assert_eq!(laugh_stories.len(), 1);
    let st = &laugh_stories[0];
    assert!(
        st.title.len() < 100 && st.summary.as_deref().unwrap_or("").len() < 100,
        "{st:?}"
    );

    // Retry-After: throttled, not a failure, next attempt when asked.
    let throttled = s("/503");
    assert_eq!(throttled.state, FeedState::Throttled);
    assert_eq!(throttled.failures, 0);
    assert_eq!(throttled.last_status, Some(503));
    assert!((118..=120).contains(&minutes_from_now(throttled)));
    let dated = s("/429");
    assert_eq!(dated.state, FeedState::Throttled);
    assert_eq!(dated.failures, 0);
    assert!((178..=180).contains(&minutes_from_now(dated)), "{dated:?}");

    // 410: retired, kept, not polled again.
    let gone = s("/gone");
    assert_eq!(gone.state, FeedState::Gone);
    assert!(gone.active, "a gone feed stays in the configuration's list");
    assert!(gone.last_error.as_deref().unwrap().contains("410"));

    let reports = newsriver::poll_once(&config).await.unwrap();
    assert_eq!(reports.len(), POLLED.len() - 1, "the gone feed is skipped");
    assert_eq!(server.hits("/gone"), 1);
    assert_eq!(server.hits("/healthy"), 2);
    // The second poll of an unchanged 200 writes nothing.
    let healthy = reports
        .iter()
        .find(|r| r.url == server.url("/healthy"))
        .unwrap();
    assert_eq!(healthy.outcome, Outcome::Unchanged { status: 200 });
    assert_eq!(store.duplicate_entries().unwrap(), 0);
}

#[tokio::test]
async fn the_daemon_keeps_running_through_every_fault_and_stops_cleanly() {
    let server = FaultServer::start().await;
    for (path, fault) in faults(&server) {
        server.set(&path, fault);
    }
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = POLLED.iter().map(|p| server.url(p)).collect();
    let config = config_for(dir.path(), &urls, LIMITS);
    let storage = config.storage.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(newsriver::run(config, listener, async move {
        let _ = stopped.await;
    }));
    // Wait until every feed has been polled once.
    let store = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(store) = newsriver::Store::open_configured(&storage)
            && store
                .feed_statuses()
                .unwrap()
                .iter()
                .all(|f| f.last_polled_at.is_some())
        {
            break store;
        }
    };
    // The server still answers.
    let page = reqwest::get(format!("http://{addr}/feed.atom"))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Two"));
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), daemon)
        .await
        .expect("the daemon stops promptly")
        .unwrap()
        .unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[tokio::test]
async fn a_permanent_redirect_is_adopted_after_three_polls_over_a_day_and_a_temporary_one_never() {
    let server = FaultServer::start().await;
    server.set("/old", Fault::redirect(301, &server.url("/new")));
    server.set("/new", Fault::body("application/rss+xml", RSS));
    server.set("/tmp", Fault::redirect(307, &server.url("/new")));
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(dir.path(), &[server.url("/old"), server.url("/tmp")], "");
    let store = newsriver::Store::open_configured(&config.storage).unwrap();
    let t0 = Utc::now();
    store
        .sync_feeds(
            &[
                FeedSpec {
                    url: server.url("/old"),
                    title: None,
                    interval: Duration::from_secs(1800),
                    tags: vec![],
                    fixed_interval: false,
                },
                FeedSpec {
                    url: server.url("/tmp"),
                    title: None,
                    interval: Duration::from_secs(1800),
                    tags: vec![],
                    fixed_interval: false,
                },
            ],
            t0,
        )
        .unwrap();
    // Polls at 0 h, 13 h and 26 h (wall clocks moved on by hand).
    for (hours, adopted) in [(0, false), (13, false), (26, true)] {
        let poller = Poller {
            store: store.clone(),
            fetcher: Fetcher::new(&config.fetch).unwrap(),
            clock: Clock::starting_at(t0 + chrono::Duration::hours(hours)),
            policy: Policy::from(&config.fetch),
            filters: Default::default(),
            parsing: ParseThreads::per_core().unwrap(),
        };
        for feed in store.active_feeds().unwrap() {
            poller.poll(feed).await;
        }
        let statuses = store.feed_statuses().unwrap();
        let old = status_of(&statuses, &server, "/old");
        assert_eq!(
            old.url,
            server.url("/old"),
            "the configured URL stays the key"
        );
        assert_eq!(old.fetch_url.is_some(), adopted, "after {hours} h: {old:?}");
        assert_eq!(status_of(&statuses, &server, "/tmp").fetch_url, None);
    }
    let feeds = store.active_feeds().unwrap();
    let old = feeds.iter().find(|f| f.url == server.url("/old")).unwrap();
    assert_eq!(old.fetch_url, server.url("/new"));
    let before = server.hits("/old");
    let poller = Poller {
        store: store.clone(),
        fetcher: Fetcher::new(&config.fetch).unwrap(),
        clock: Clock::new(),
        policy: Policy::from(&config.fetch),
        filters: Default::default(),
        parsing: ParseThreads::per_core().unwrap(),
    };
    poller.poll(old.clone()).await;
    assert_eq!(
        server.hits("/old"),
        before,
        "the old address is no longer asked"
    );
}

#[tokio::test]
async fn feed_credentials_follow_redirects_only_within_their_origin() {
    let home = FaultServer::start().await;
    let elsewhere = FaultServer::start().await;
    home.set("/to-self", Fault::redirect(302, "/feed"));
    home.set("/feed", Fault::body("application/rss+xml", RSS));
    home.set("/to-other", Fault::redirect(301, &elsewhere.url("/feed")));
    elsewhere.set("/feed", Fault::body("application/rss+xml", RSS));
    let dir = tempfile::tempdir().unwrap();
    let mut toml = format!(
        "{}[fetch]\nhost_gap = \"1ms\"\n",
        common::storage_toml(&dir.path().join("r.db"))
    );
    for path in ["/to-self", "/to-other"] {
        toml.push_str(&format!(
            "[[feed]]\nurl = \"{}\"\nauth = {{ username = \"reader\", password = \"sekrit\" }}\nheaders = {{ \"X-Api-Key\" = \"k-123\" }}\n",
            home.url(path)
        ));
    }
    let config = newsriver::Config::parse(&toml, std::path::Path::new("t.toml")).unwrap();
    let reports = newsriver::poll_once(&config).await.unwrap();
    assert!(
        reports
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Stored { .. })),
        "{reports:?}"
    );
    let with_credentials =
        |head: &String| head.contains("authorization: basic") && head.contains("x-api-key: k-123");
    // Same origin: every hop carries them.
    assert!(home.heads("/to-self").iter().all(with_credentials));
    assert_eq!(home.heads("/feed").len(), 1);
    assert!(home.heads("/feed").iter().all(with_credentials));
    // Another origin never sees them.
    assert!(home.heads("/to-other").iter().all(with_credentials));
    let leaked = elsewhere.heads("/feed");
    assert_eq!(leaked.len(), 1);
    assert!(
        !leaked[0].contains("authorization") && !leaked[0].contains("x-api-key"),
        "{}",
        leaked[0]
    );
}

#[tokio::test]
async fn a_connect_that_never_completes_is_cut_off_by_the_connect_timeout() {
    let (addr, _fillers, _listener) = common::faults::connect_hang().await;
    let healthy = FaultServer::start().await;
    healthy.set("/feed", Fault::body("application/rss+xml", RSS));
    let dir = tempfile::tempdir().unwrap();
    let hung = format!("http://{addr}/feed");
    let config = config_for(
        dir.path(),
        &[hung.clone(), healthy.url("/feed")],
        "transfer_deadline = \"30s\"\n",
    );
    let reports = newsriver::poll_once(&config).await.unwrap();
    let hung_report = reports.iter().find(|r| r.url == hung).unwrap();
    match &hung_report.outcome {
        Outcome::Failed {
            status: None,
            error,
        } => {
            // "timed out: client error (Connect): tcp connect error: …"
            // (hyper names the layer "Connect" or "tcp connect" depending
            // on where the timeout lands)
            assert!(
                error.contains("timed out") && error.to_lowercase().contains("connect"),
                "{error}"
            )
        }
        other => panic!("{other:?}"),
    }
    let ok = reports.iter().find(|r| r.url != hung).unwrap();
    assert!(
        matches!(ok.outcome, Outcome::Stored { new: 2, .. }),
        "{ok:?}"
    );
}

#[tokio::test]
async fn a_body_the_same_as_the_stored_one_is_answered_unchanged_and_not_kept() {
    use newsriver::fetch::{Fetched, RequestExtras, body_hash};
    use newsriver::model::Validators;
    use std::io::Write;

    // About 900 kB, so it arrives in many chunks; once with a length, once
    // ending when the connection closes, once in HTTP chunks of 100 bytes;
    // and gzip-encoded.
    let item =
        "<item><title>Same again</title><description>words words words</description></item>\n";
    let body = format!(
        "<rss version=\"2.0\"><channel>{}</channel></rss>",
        item.repeat(10_000)
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(body.as_bytes()).unwrap();
    let server = FaultServer::start().await;
    server.set("/length", Fault::body("application/rss+xml", body.clone()));
    server.set(
        "/chunked",
        Fault::Chunked {
            body: body.clone().into(),
            size: 100,
        },
    );
    server.set(
        "/close",
        Fault::Answer {
            status: 200,
            headers: vec![("Content-Type".into(), "application/rss+xml".into())],
            body: body.clone().into(),
            length: false,
        },
    );
    server.set(
        "/gzip",
        Fault::Answer {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "application/rss+xml".into()),
                ("Content-Encoding".into(), "gzip".into()),
            ],
            body: gz.finish().unwrap().into(),
            length: true,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(dir.path(), &[], LIMITS);
    let fetcher = Fetcher::new(&config.fetch).unwrap();
    let none = RequestExtras::default();
    let fetch = |path: &'static str, known: Option<String>| {
        let (fetcher, url, none) = (&fetcher, server.url(path), &none);
        async move {
            fetcher
                .fetch_with(&url, &Validators::default(), none, known.as_deref())
                .await
                .unwrap()
        }
    };
    let expected = body_hash(body.as_bytes());
    for path in ["/length", "/close", "/chunked", "/gzip"] {
        // Nothing known: the whole body, and its hash as `body_hash` makes it.
        let Fetched::Body(first) = fetch(path, None).await else {
            panic!("{path}: not a body");
        };
        assert_eq!(first.body, body.as_bytes(), "{path}");
        assert_eq!(
            first.body_hash.as_deref(),
            Some(expected.as_str()),
            "{path}"
        );
        // The same hash known: unchanged, and the body is not kept.
        match fetch(path, Some(expected.clone())).await {
            Fetched::Unchanged(r) => {
                assert!(r.body.is_empty(), "{path}");
                assert_eq!(r.status, 200);
                assert_eq!(r.body_hash.as_deref(), Some(expected.as_str()));
            }
            other => panic!("{path}: {other:?}"),
        }
        // Another hash known (an older body): the body again.
        let older = body_hash(b"<rss version=\"2.0\"><channel></channel></rss>");
        match fetch(path, Some(older)).await {
            Fetched::Body(r) => assert_eq!(r.body, body.as_bytes(), "{path}"),
            other => panic!("{path}: {other:?}"),
        }
    }
    // A body sent a byte at a time: whole, and unchanged when its hash is known.
    let small = body[..20_000].to_string();
    server.set(
        "/bytes",
        Fault::Chunked {
            body: small.clone().into(),
            size: 1,
        },
    );
    match fetch("/bytes", None).await {
        Fetched::Body(r) => assert_eq!(r.body, small.as_bytes()),
        other => panic!("{other:?}"),
    }
    let known = body_hash(small.as_bytes());
    assert!(matches!(
        fetch("/bytes", Some(known)).await,
        Fetched::Unchanged(_)
    ));
}
