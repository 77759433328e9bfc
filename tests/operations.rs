//! Running it as a service, in process: live reload, access tokens, /metrics,
//! /healthz, per-feed credentials and retention with tombstones.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use common::{FixtureServer, Route, config_for};
use newsriver::Config;
use newsriver::scheduler::{Clock, Summary};
use newsriver::store::RetentionPolicy;
use newsriver::telemetry::Health;

/// Polls `check` every 50 ms until it holds; fails after `secs`.
async fn wait_until(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Daemon {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Daemon {
    /// Starts the daemon from the configuration file at `path`, with reload.
    async fn start(path: &Path) -> Self {
        let config = Config::load(path).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(newsriver::daemon::run_with(
            config,
            Some(path.to_path_buf()),
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

/// Writes `body` as the folder's configuration, with the folder's database
/// (`newsriver.db`, on this run's backend) as its `[storage]`.
fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("newsriver.toml");
    std::fs::write(&path, with_storage(dir, body)).unwrap();
    path
}

fn with_storage(dir: &Path, body: &str) -> String {
    format!("{}{body}", common::storage_toml(&dir.join("newsriver.db")))
}

/// Like an editor that saves by writing a new file and renaming it over the old.
fn replace_config(path: &Path, body: &str) {
    let temp = path.with_extension("toml.swp");
    let dir = path.parent().unwrap();
    std::fs::write(&temp, with_storage(dir, body)).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

fn feed_table(url: &str) -> String {
    format!("[[feed]]\nurl = \"{url}\"\ninterval = \"1s\"\n")
}

const HEAD: &str = "[fetch]\njitter = 0.0\ntimeout = \"5s\"\n";

#[tokio::test]
async fn reload_on_file_change_adds_and_removes_feeds_and_keeps_entries() {
    let server = FixtureServer::start().await;
    server.set("/a.xml", Route::fixture("rss2.xml"));
    server.set("/b.xml", Route::fixture("atom.xml"));
    let (a, b) = (server.url("/a.xml"), server.url("/b.xml"));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &format!("{HEAD}{}", feed_table(&a)));
    let daemon = Daemon::start(&path).await;

    wait_until(10, "feed a polled", || !server.seen("/a.xml").is_empty()).await;
    assert!(server.seen("/b.xml").is_empty());

    // Added by rewriting the file in place: polled at once.
    std::fs::write(
        &path,
        with_storage(
            dir.path(),
            &format!("{HEAD}{}{}", feed_table(&a), feed_table(&b)),
        ),
    )
    .unwrap();
    wait_until(10, "added feed b polled", || {
        !server.seen("/b.xml").is_empty()
    })
    .await;

    // Removed through an editor-style replace (the watch must survive it).
    replace_config(&path, &format!("{HEAD}{}", feed_table(&b)));
    let store = common::open_store(&dir.path().join("newsriver.db")).unwrap();
    wait_until(10, "feed a deactivated", || {
        store
            .feed_statuses()
            .unwrap()
            .iter()
            .any(|f| f.url == a && !f.active)
    })
    .await;
    // a stops: while b is polled several more times, a is not polled again.
    let a_polls = server.seen("/a.xml").len();
    let b_polls = server.seen("/b.xml").len();
    wait_until(15, "b polled 3 more times", || {
        server.seen("/b.xml").len() >= b_polls + 3
    })
    .await;
    assert_eq!(
        server.seen("/a.xml").len(),
        a_polls,
        "a removed feed was polled"
    );
    // Its entries are kept.
    let statuses = store.feed_statuses().unwrap();
    let a_status = statuses.iter().find(|f| f.url == a).unwrap();
    assert_eq!(a_status.entries, 4);

    // A second editor-style replace is still seen: the watch was re-armed.
    replace_config(
        &path,
        &format!("{HEAD}{}{}", feed_table(&a), feed_table(&b)),
    );
    wait_until(10, "feed a active again", || {
        store
            .feed_statuses()
            .unwrap()
            .iter()
            .any(|f| f.url == a && f.active)
    })
    .await;
    daemon.stop().await;
}

#[tokio::test]
async fn invalid_config_is_refused_with_its_position_and_the_running_one_stays() {
    let server = FixtureServer::start().await;
    server.set("/a.xml", Route::fixture("rss2.xml"));
    server.set("/b.xml", Route::fixture("atom.xml"));
    let (a, b) = (server.url("/a.xml"), server.url("/b.xml"));
    let dir = tempfile::tempdir().unwrap();
    let good = format!(
        "[access]\nadmin_token = \"let-me-in\"\n{HEAD}{}",
        feed_table(&a)
    );
    let path = write_config(dir.path(), &good);
    let daemon = Daemon::start(&path).await;
    wait_until(10, "feed a polled", || !server.seen("/a.xml").is_empty()).await;

    // Line 6, column 12: an invalid duration on the added feed.
    let broken = format!("{good}[[feed]]\nurl = \"{b}\"\ninterval = \"often\"\n");
    replace_config(&path, &broken);
    let client = reqwest::Client::new();
    let response = client
        .post(daemon.url("/admin/reload"))
        .bearer_auth("let-me-in")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let text = response.text().await.unwrap();
    assert!(
        text.contains(&format!(
            "{}:13:12: invalid duration \"often\"",
            path.display()
        )),
        "{text}"
    );
    // The running configuration stays: b is not polled, a still is.
    let a_polls = server.seen("/a.xml").len();
    wait_until(10, "a still polled", || {
        server.seen("/a.xml").len() > a_polls
    })
    .await;
    assert!(server.seen("/b.xml").is_empty());
    // The admin token in force is still the old one.
    let response = client
        .post(daemon.url("/admin/reload"))
        .bearer_auth("let-me-in")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);

    // Fixed: the reload goes through and reports what changed.
    let fixed = format!("{good}[[feed]]\nurl = \"{b}\"\n");
    std::fs::write(&path, with_storage(dir.path(), &fixed)).unwrap();
    let response = client
        .post(daemon.url("/admin/reload"))
        .bearer_auth("let-me-in")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("1 feed(s) added, 0 removed")
    );
    wait_until(10, "b polled", || !server.seen("/b.xml").is_empty()).await;
    daemon.stop().await;
}

#[tokio::test]
async fn admin_routes_need_the_admin_token_and_private_outputs_the_read_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[access]\nadmin_token = \"admin-secret\"\nread_token = \"reader-secret\"\n",
    );
    let daemon = Daemon::start(&path).await;
    let client = reqwest::Client::new();
    let status = |r: reqwest::Response| r.status().as_u16();

    for route in ["/metrics", "/status"] {
        let r = client.get(daemon.url(route)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{route} without a token");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"newsriver\""
        );
        let r = client
            .get(daemon.url(route))
            .bearer_auth("reader-secret")
            .send()
            .await
            .unwrap();
        assert_eq!(status(r), 401, "{route} with the read token");
    }
    let r = client
        .get(daemon.url("/metrics"))
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(status(r), 200);
    let r = client
        .post(daemon.url("/admin/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(status(r), 401);
    let r = client
        .post(daemon.url("/admin/reload"))
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(status(r), 200);

    // Outputs: the read token as a header or a query parameter, or the admin token.
    for route in ["/feed.atom", "/", "/feeds.opml"] {
        let r = client.get(daemon.url(route)).send().await.unwrap();
        assert_eq!(status(r), 401, "{route} without a token");
        let r = client
            .get(daemon.url(&format!("{route}?token=wrong")))
            .send()
            .await
            .unwrap();
        assert_eq!(status(r), 401, "{route} with a wrong token");
        let r = client
            .get(daemon.url(route))
            .bearer_auth("reader-secret")
            .send()
            .await
            .unwrap();
        assert_eq!(status(r), 200, "{route} with the read token");
        let r = client
            .get(daemon.url(&format!("{route}?token=reader-secret")))
            .send()
            .await
            .unwrap();
        assert_eq!(status(r), 200, "{route} with ?token=");
        let r = client
            .get(daemon.url(route))
            .bearer_auth("admin-secret")
            .send()
            .await
            .unwrap();
        assert_eq!(status(r), 200, "{route} with the admin token");
    }
    // Health stays open for load balancers and service managers.
    let r = client.get(daemon.url("/healthz")).send().await.unwrap();
    assert_eq!(status(r), 200);
    daemon.stop().await;
}

#[tokio::test]
async fn without_tokens_outputs_and_metrics_are_open_but_reload_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let daemon = Daemon::start(&path).await;
    let client = reqwest::Client::new();
    let r = client.get(daemon.url("/feed.atom")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(daemon.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(daemon.url("/admin/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("[access].admin_token"));
    daemon.stop().await;
}

#[tokio::test]
async fn metrics_after_a_poll_count_polls_entries_and_feeds_by_state() {
    let server = FixtureServer::start().await;
    server.set("/a.xml", Route::fixture("rss2.xml"));
    server.set("/gone.xml", Route::Status(500));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            "[[feed]]\nurl = \"{}\"\n[[feed]]\nurl = \"{}\"\n",
            server.url("/a.xml"),
            server.url("/gone.xml")
        ),
    );
    let daemon = Daemon::start(&path).await;
    let store = common::open_store(&dir.path().join("newsriver.db")).unwrap();
    wait_until(10, "both feeds polled", || {
        let statuses = store.feed_statuses().unwrap();
        statuses.len() == 2 && statuses.iter().all(|f| f.last_polled_at.is_some())
    })
    .await;
    let text = reqwest::get(daemon.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Counters are process-wide (other tests in this binary poll too), so
    // they are at least, gauges exactly, what this daemon did.
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("no {line_start} in:\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(value("newsriver_polls_total{outcome=\"stored\"}") >= 1.0);
    assert!(value("newsriver_polls_total{outcome=\"failed\"}") >= 1.0);
    assert!(value("newsriver_entries_stored_total{kind=\"new\"}") >= 4.0);
    assert!(value("newsriver_fetch_duration_seconds_count") >= 2.0);
    assert!(text.contains("newsriver_fetch_duration_seconds_bucket{le=\"0.5\"}"));
    assert!(text.contains("# TYPE newsriver_fetch_duration_seconds histogram"));
    assert_eq!(value("newsriver_feeds{state=\"ok\"}"), 1.0);
    assert_eq!(value("newsriver_feeds{state=\"failing\"}"), 1.0);
    assert_eq!(value("newsriver_entries "), 4.0);
    assert_eq!(value("newsriver_scheduler_lag_seconds"), 0.0);
    daemon.stop().await;
}

#[tokio::test]
async fn healthz_is_ok_when_running_and_503_when_the_scheduler_stalls() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "");
    let daemon = Daemon::start(&path).await;
    let r = reqwest::get(daemon.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok\ndatabase: ok\nscheduler: ok\n");
    daemon.stop().await;

    // A feed due ten minutes ago and a loop that last turned ten minutes ago:
    // the scheduler is stalled.
    let store = common::open_store(&dir.path().join("other.db")).unwrap();
    let clock = Clock::new();
    let then = clock.now() - chrono::Duration::minutes(10);
    store
        .sync_feeds(
            &[newsriver::store::FeedSpec {
                url: "http://a.example/".into(),
                title: None,
                interval: Duration::from_secs(60),
                tags: vec![],
                fixed_interval: false,
            }],
            then,
        )
        .unwrap();
    let health = Health {
        store,
        clock,
        heartbeat: Arc::new(AtomicI64::new(then.timestamp())),
        stall_after: Duration::from_secs(120),
    };
    let report = health.check().await;
    assert!(report.database.is_ok());
    assert!(!report.healthy());
    assert!(
        report.text().contains("scheduler: stalled"),
        "{}",
        report.text()
    );
    // The same lag with a loop that is turning is only busy, not stalled.
    health.heartbeat.store(
        clock.now().timestamp(),
        std::sync::atomic::Ordering::Relaxed,
    );
    assert!(health.check().await.healthy());
}

#[tokio::test]
async fn feeds_get_their_basic_auth_and_headers_from_the_config() {
    let server = FixtureServer::start().await;
    server.set("/private.xml", Route::fixture("rss2.xml"));
    server.set("/public.xml", Route::fixture("atom.xml"));
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "{}\
         [[feed]]\nurl = \"{}\"\nauth = {{ username = \"reader\", password = \"pa55word\" }}\n\
         headers = {{ X-Api-Key = \"k-123\" }}\n\
         [[feed]]\nurl = \"{}\"\n",
        common::storage_toml(&dir.path().join("river.db")),
        server.url("/private.xml"),
        server.url("/public.xml")
    );
    let config = Config::parse(&toml, Path::new("t.toml")).unwrap();
    let summary = Summary::of(&newsriver::poll_once(&config).await.unwrap());
    assert_eq!(summary.ok, 2);
    let private = &server.seen("/private.xml")[0].headers;
    // base64("reader:pa55word")
    assert_eq!(private["authorization"], "Basic cmVhZGVyOnBhNTV3b3Jk");
    assert_eq!(private["x-api-key"], "k-123");
    let public = &server.seen("/public.xml")[0].headers;
    assert!(public.get("authorization").is_none() && public.get("x-api-key").is_none());
}

#[tokio::test]
async fn retention_prunes_by_count_and_age_and_pruned_entries_never_return() {
    let server = FixtureServer::start().await;
    server.set("/a.xml", Route::fixture("rss2.xml"));
    let dir = tempfile::tempdir().unwrap();
    // Keep the newest 2 of the feed's 4 entries.
    let config = config_for(
        dir.path(),
        &[server.url("/a.xml")],
        "[retention]\nmax_entries = 2\n",
    );
    let first = Summary::of(&newsriver::poll_once(&config).await.unwrap());
    assert_eq!(first.new, 4, "stored first, then pruned");
    let store = newsriver::Store::open_configured(&config.storage).unwrap();
    assert_eq!(store.entry_count().unwrap(), 2);
    assert_eq!(store.tombstone_count().unwrap(), 2);
    let kept: Vec<String> = store
        .stories(10)
        .unwrap()
        .into_iter()
        .map(|s| s.title)
        .collect();
    assert_eq!(
        kept,
        [
            "City council approves riverside bike lanes",
            "Library extends weekend hours through winter"
        ]
    );

    // The feed still carries the pruned entries: they do not come back.
    let again = Summary::of(&newsriver::poll_once(&config).await.unwrap());
    assert_eq!((again.new, again.updated), (0, 0));
    assert_eq!(store.entry_count().unwrap(), 2);

    // By age: everything dated before 2026-11-25T00:00Z goes.
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-27T00:00:00Z")
        .unwrap()
        .to_utc();
    let by_age = RetentionPolicy {
        max_age: Some(Duration::from_secs(2 * 86400)),
        max_entries: None,
        keep_tombstones: Duration::from_secs(90 * 86400),
    };
    let counts = store.prune(by_age, now).unwrap();
    assert_eq!(
        counts.entries, 0,
        "both kept entries are from the 25th and 26th"
    );
    let by_age = RetentionPolicy {
        max_age: Some(Duration::from_secs(86400)),
        ..by_age
    };
    assert_eq!(store.prune(by_age, now).unwrap().entries, 1);
    assert_eq!(store.tombstone_count().unwrap(), 3);

    // Tombstones are forgotten once their feed has not carried the entry for
    // `keep_tombstones` (the second poll above saw all of them).
    let forget = RetentionPolicy {
        max_age: None,
        max_entries: None,
        keep_tombstones: Duration::from_secs(90 * 86400),
    };
    let in_days = |d: i64| chrono::Utc::now() + chrono::Duration::days(d);
    assert_eq!(
        store
            .prune(forget, in_days(89))
            .unwrap()
            .tombstones_forgotten,
        0
    );
    assert_eq!(
        store
            .prune(forget, in_days(91))
            .unwrap()
            .tombstones_forgotten,
        3
    );
}

#[tokio::test]
async fn reload_applies_fetch_settings_and_feed_credentials_to_the_next_polls() {
    let server = FixtureServer::start().await;
    server.set("/a.xml", Route::fixture("rss2.xml"));
    let a = server.url("/a.xml");
    let dir = tempfile::tempdir().unwrap();
    let before = format!(
        "[access]\nadmin_token = \"t\"\n[fetch]\njitter = 0.0\nuser_agent = \"before/1\"\n{}",
        feed_table(&a)
    );
    let path = write_config(dir.path(), &before);
    let daemon = Daemon::start(&path).await;
    wait_until(10, "a polled", || !server.seen("/a.xml").is_empty()).await;
    let first = &server.seen("/a.xml")[0].headers;
    assert_eq!(first["user-agent"], "before/1");
    assert!(first.get("x-api-key").is_none());

    let after = format!(
        "[access]\nadmin_token = \"t\"\n[fetch]\njitter = 0.0\nuser_agent = \"after/2\"\n{}headers = {{ X-Api-Key = \"k\" }}\n",
        feed_table(&a)
    );
    std::fs::write(&path, with_storage(dir.path(), &after)).unwrap();
    let r = reqwest::Client::new()
        .post(daemon.url("/admin/reload"))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Unless the file watcher got there first, the reload names the change.
    let text = r.text().await.unwrap();
    assert!(
        text.contains("0 feed(s) added, 0 removed, 1 changed")
            || text.contains("0 feed(s) added, 0 removed, 0 changed"),
        "{text}"
    );
    wait_until(10, "a polled with the new settings", || {
        server.seen("/a.xml").iter().any(|s| {
            s.headers["user-agent"] == "after/2"
                && s.headers.get("x-api-key").is_some_and(|v| v == "k")
        })
    })
    .await;
    daemon.stop().await;
}

#[tokio::test]
async fn the_daemon_prunes_in_the_background() {
    let server = FixtureServer::start().await;
    server.set("/a.xml", Route::fixture("rss2.xml"));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            "[retention]\nmax_entries = 1\nprune_every = \"1s\"\n[[feed]]\nurl = \"{}\"\n",
            server.url("/a.xml")
        ),
    );
    let daemon = Daemon::start(&path).await;
    let store = common::open_store(&dir.path().join("newsriver.db")).unwrap();
    wait_until(10, "pruned to one entry", || {
        store.tombstone_count().unwrap() == 3 && store.entry_count().unwrap() == 1
    })
    .await;
    let text = reqwest::get(daemon.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("newsriver_tombstones 3"), "{text}");
    daemon.stop().await;
}

/// Daemons sharing a database share the feed list the last of them applied:
/// a daemon whose file lists other feeds says so on /status and in
/// /status.json, and agrees again once a reload applies its own file.
#[tokio::test]
async fn a_daemon_whose_feed_list_is_not_the_one_in_force_says_so() {
    let server = FixtureServer::start().await;
    server.set("/a.xml", Route::fixture("rss2.xml"));
    server.set("/b.xml", Route::fixture("atom.xml"));
    let (a, b) = (server.url("/a.xml"), server.url("/b.xml"));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            "[access]\nadmin_token = \"let-me-in\"\n{HEAD}{}",
            feed_table(&a)
        ),
    );
    let daemon = Daemon::start(&path).await;
    wait_until(10, "feed a polled", || !server.seen("/a.xml").is_empty()).await;
    let client = reqwest::Client::new();
    let status = |path: &'static str| {
        let client = client.clone();
        let url = daemon.url(path);
        async move {
            client
                .get(url)
                .bearer_auth("let-me-in")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let list =
        |json: &str| serde_json::from_str::<serde_json::Value>(json).unwrap()["feed_list"].clone();
    assert_eq!(list(&status("/status.json").await)["agrees"], true);
    assert!(!status("/status").await.contains("id=\"feed-list\""));

    // Another process applies a list of two feeds to the same database.
    let other = common::open_store(&dir.path().join("newsriver.db")).unwrap();
    let spec = |url: &str| newsriver::store::FeedSpec {
        url: url.into(),
        title: None,
        interval: Duration::from_secs(1),
        tags: vec![],
        fixed_interval: true,
    };
    other
        .sync_feeds(&[spec(&a), spec(&b)], chrono::Utc::now())
        .unwrap();
    let json = list(&status("/status.json").await);
    assert_eq!(json["agrees"], false, "{json}");
    assert_eq!(json["feeds_in_this_file"], 1);
    assert_eq!(json["in_force"]["feeds"], 2);
    assert!(
        json["in_force"]["applied_by"]
            .as_str()
            .unwrap()
            .contains(':')
    );
    let page = status("/status").await;
    assert!(
        page.contains("lists other feeds than the list in force")
            && page.contains("1 feeds in its file; 2 in the list"),
        "{page}"
    );

    // A reload applies this daemon's file again.
    let response = client
        .post(daemon.url("/admin/reload"))
        .bearer_auth("let-me-in")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(list(&status("/status.json").await)["agrees"], true);
    assert!(!status("/status").await.contains("id=\"feed-list\""));
    daemon.stop().await;
}
