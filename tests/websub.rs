//! WebSub, both ways, against a hub and an outlet written for the tests
//! (tests/common/hub.rs), all on 127.0.0.1:0; renewal and publish pings on
//! tokio's paused clock with an in-process hub.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::hub::{Outlet, Sign, TestHub, atom};
use newsriver::Config;
use newsriver::model::ParsedEntry;
use newsriver::scheduler::Clock;
use newsriver::store::{FeedSpec, Store};
use newsriver::websub::{self, HubClient};

const ATOM: &str = "application/atom+xml";

struct Daemon {
    addr: SocketAddr,
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

fn config_text(dir: &Path, addr: SocketAddr, fetch: &str, extra: &str, feeds: &[String]) -> String {
    let mut text = format!(
        "{}[fetch]\ntimeout = \"5s\"\nconnect_timeout = \"2s\"\nhost_gap = \"5ms\"\n{fetch}\n[output]\nbase_url = \"http://{addr}/\"\n{extra}\n",
        common::storage_toml(&dir.join("river.db"))
    );
    for url in feeds {
        text.push_str(&format!("[[feed]]\nurl = \"{url}\"\ntags = [\"world\"]\n"));
    }
    text
}

impl Daemon {
    /// Starts a daemon on `addr` (or a new port) whose config file is in `dir`.
    async fn start(
        dir: &Path,
        addr: Option<SocketAddr>,
        fetch: &str,
        extra: &str,
        feeds: &[String],
    ) -> Self {
        let listener =
            tokio::net::TcpListener::bind(addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()))
                .await
                .unwrap();
        let addr = listener.local_addr().unwrap();
        let path = dir.join("newsriver.toml");
        std::fs::write(&path, config_text(dir, addr, fetch, extra, feeds)).unwrap();
        let config = Config::load(&path).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(newsriver::daemon::run_with(
            config,
            Some(path),
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            dir: dir.to_path_buf(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(self.url(path)).await.unwrap()
    }

    async fn river(&self) -> String {
        self.get("/feed.atom").await.text().await.unwrap()
    }

    async fn stop(mut self) -> PathBuf {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
        self.dir.join("river.db")
    }
}

/// An outlet whose feed advertises `hub` (and itself) in its Link headers.
async fn outlet_on(hub: &TestHub, entries: &[(&str, &str)]) -> Outlet {
    let outlet = Outlet::start(&atom("Harbour Gazette", None, None, entries), ATOM, None).await;
    outlet.set_link(&format!(
        "<{}>; rel=\"hub\", <{}>; rel=\"self\"",
        hub.url(),
        outlet.url()
    ));
    outlet
}

/// Waits until the hub has verified one subscription and returns it.
async fn subscribed(hub: &TestHub) -> common::hub::Subscriber {
    hub.wait_for("a verified subscription", 15, |s| !s.subscribers.is_empty())
        .await;
    hub.with(|s| s.subscribers[0].clone())
}

async fn wait_for_text(daemon: &Daemon, path: &str, needle: &str, secs: u64) -> Duration {
    let start = Instant::now();
    loop {
        let body = daemon.get(path).await.text().await.unwrap();
        if body.contains(needle) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{needle:?} never appeared in {path}:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn websub_of(db: &Path) -> Vec<newsriver::store::WebSubStatus> {
    common::open_store(db)
        .unwrap()
        .websub_statuses(chrono::Utc::now())
        .unwrap()
}

#[tokio::test]
async fn a_hub_in_the_link_headers_is_subscribed_to_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start().await;
    // The document names another hub and no self link: the headers win.
    let outlet = Outlet::start(
        &atom(
            "Harbour Gazette",
            Some("http://127.0.0.1:9/other-hub"),
            None,
            &[("a1", "Port reopens")],
        ),
        ATOM,
        None,
    )
    .await;
    let topic = "https://harbour.example/feed.atom";
    outlet.set_link(&format!(
        "<{}>; rel=\"hub\", <{topic}>; rel=\"self\"",
        hub.url()
    ));
    let daemon = Daemon::start(dir.path(), None, "", "", &[outlet.url()]).await;
    let sub = subscribed(&hub).await;
    let request = hub.with(|s| s.requests[0].clone());
    assert_eq!(request.mode, "subscribe");
    assert_eq!(request.topic, topic);
    let prefix = daemon.url("/websub/");
    let token = request
        .callback
        .strip_prefix(&prefix)
        .expect("callback under base_url");
    assert_eq!(token.len(), 64, "an unguessable token: {token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let secret = request.secret.clone().expect("a hub.secret");
    assert!(secret.len() >= 32 && secret != token);
    assert_eq!(sub.callback, request.callback);
    assert!(hub.with(|s| s.verifications.iter().all(|v| v.echoed)));
    let page = daemon.get("/status").await.text().await.unwrap();
    assert!(
        page.contains("WebSub") && page.contains(&hub.url()) && page.contains("pushed"),
        "{page}"
    );
    let db = daemon.stop().await;
    let subs = websub_of(&db);
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].state, "active");
    assert!(subs[0].pushed);
    assert!(subs[0].lease_end.is_some());
}

#[tokio::test]
async fn a_hub_in_the_document_is_subscribed_to_with_its_self_link() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start().await;
    let topic = "https://harbour.example/self.atom";
    let outlet = Outlet::start(
        &atom(
            "Harbour Gazette",
            Some(&hub.url()),
            Some(topic),
            &[("a1", "Port reopens")],
        ),
        ATOM,
        None,
    )
    .await;
    let daemon = Daemon::start(dir.path(), None, "", "", &[outlet.url()]).await;
    let sub = subscribed(&hub).await;
    assert_eq!(sub.topic, topic);
    assert!(sub.callback.starts_with(&daemon.url("/websub/")));
    daemon.stop().await;
}

#[tokio::test]
async fn a_signed_push_lands_in_the_river_with_attribution_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start().await;
    let outlet = outlet_on(&hub, &[("a1", "Port reopens")]).await;
    let daemon = Daemon::start(dir.path(), None, "", "", &[outlet.url()]).await;
    let sub = subscribed(&hub).await;
    wait_for_text(&daemon, "/feed.atom", "Port reopens", 10).await;
    // The whole document again, with one entry more.
    let doc = atom(
        "Harbour Gazette",
        None,
        None,
        &[("a2", "Cranes return"), ("a1", "Port reopens")],
    );
    let pushed = Instant::now();
    assert_eq!(
        hub.push(&sub.topic, doc.as_bytes(), ATOM, Sign::Good).await,
        [200]
    );
    let took = wait_for_text(&daemon, "/feed.atom", "Cranes return", 5).await;
    let latency = pushed.elapsed();
    assert!(
        latency < Duration::from_secs(1),
        "push to river took {latency:?} ({took:?} after the answer)"
    );
    let river = daemon.river().await;
    let entry = &river[river.find("Cranes return").unwrap()..];
    let entry = &entry[..entry.find("</entry>").unwrap()];
    assert!(
        entry.contains("<source>") && entry.contains("Harbour Gazette"),
        "{entry}"
    );
    let db = daemon.stop().await;
    let subs = websub_of(&db);
    assert_eq!(subs[0].pushes, 1);
    assert!(subs[0].last_push_at.is_some());
    // While pushed, the safety-net poll waits for max_interval (12 h).
    let feed = &common::open_store(&db).unwrap().feed_statuses().unwrap()[0];
    assert!(
        feed.next_poll_at > chrono::Utc::now() + chrono::Duration::hours(11),
        "{:?}",
        feed.next_poll_at
    );
}

#[tokio::test]
async fn a_push_with_only_new_entries_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start().await;
    let outlet = outlet_on(&hub, &[("a1", "Port reopens"), ("a0", "Storm warning")]).await;
    let daemon = Daemon::start(dir.path(), None, "", "", &[outlet.url()]).await;
    let sub = subscribed(&hub).await;
    wait_for_text(&daemon, "/feed.atom", "Storm warning", 10).await;
    let only_new = atom("Harbour Gazette", None, None, &[("a3", "Ferry timetable")]);
    assert_eq!(
        hub.push(&sub.topic, only_new.as_bytes(), ATOM, Sign::Good)
            .await,
        [200]
    );
    wait_for_text(&daemon, "/feed.atom", "Ferry timetable", 5).await;
    let river = daemon.river().await;
    assert!(
        river.contains("Port reopens") && river.contains("Storm warning"),
        "{river}"
    );
    assert_eq!(river.matches("<entry>").count(), 3);
    daemon.stop().await;
}

#[tokio::test]
async fn pushes_with_bad_or_missing_signatures_are_acknowledged_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start().await;
    let outlet = outlet_on(&hub, &[("a1", "Port reopens")]).await;
    let daemon = Daemon::start(dir.path(), None, "", "", &[outlet.url()]).await;
    let sub = subscribed(&hub).await;
    wait_for_text(&daemon, "/feed.atom", "Port reopens", 10).await;
    let forged = atom("Harbour Gazette", None, None, &[("x1", "Forged story")]);
    assert_eq!(
        hub.push(&sub.topic, forged.as_bytes(), ATOM, Sign::Wrong)
            .await,
        [202]
    );
    assert_eq!(
        hub.push(&sub.topic, forged.as_bytes(), ATOM, Sign::Missing)
            .await,
        [202]
    );
    assert!(!daemon.river().await.contains("Forged story"));
    let metrics = daemon.get("/metrics").await.text().await.unwrap();
    let count = |result: &str| -> u64 {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("newsriver_websub_pushes_total")
                    && l.contains(&format!("result=\"{result}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        count("bad_signature") >= 1 && count("missing_signature") >= 1,
        "{metrics}"
    );
    // The subscription still works for a signed push.
    let good = atom("Harbour Gazette", None, None, &[("a2", "Real story")]);
    assert_eq!(
        hub.push(&sub.topic, good.as_bytes(), ATOM, Sign::Good)
            .await,
        [200]
    );
    wait_for_text(&daemon, "/feed.atom", "Real story", 5).await;
    let db = daemon.stop().await;
    assert_eq!(websub_of(&db)[0].pushes, 1, "only the signed push counts");
}

#[tokio::test]
async fn an_oversize_push_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start().await;
    let outlet = outlet_on(&hub, &[("a1", "Port reopens")]).await;
    let daemon = Daemon::start(
        dir.path(),
        None,
        "max_body_bytes = 4000",
        "",
        &[outlet.url()],
    )
    .await;
    let sub = subscribed(&hub).await;
    wait_for_text(&daemon, "/feed.atom", "Port reopens", 10).await;
    let long = "x".repeat(5000);
    let big = atom(
        "Harbour Gazette",
        None,
        None,
        &[("a9", &format!("Huge {long}"))],
    );
    assert_eq!(
        hub.push(&sub.topic, big.as_bytes(), ATOM, Sign::Good).await,
        [413]
    );
    assert!(!daemon.river().await.contains("Huge"));
    let db = daemon.stop().await;
    assert_eq!(websub_of(&db)[0].pushes, 0);
}

#[tokio::test]
async fn callback_routes_reject_malformed_requests_without_changing_state() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start().await;
    let outlet = outlet_on(&hub, &[("a1", "Port reopens")]).await;
    let daemon = Daemon::start(dir.path(), None, "", "", &[outlet.url()]).await;
    let sub = subscribed(&hub).await;
    let client = reqwest::Client::new();
    let topic = url::form_urlencoded::byte_serialize(sub.topic.as_bytes()).collect::<String>();
    let cb = &sub.callback;
    let other = daemon.url(&format!("/websub/{}", "0".repeat(64)));
    let gets = [
        (cb.clone(), 400),
        (format!("{cb}?hub.mode=subscribe&hub.topic={topic}"), 400),
        (
            format!("{cb}?hub.mode=bogus&hub.topic={topic}&hub.challenge=c"),
            400,
        ),
        (
            format!("{cb}?hub.mode=subscribe&hub.mode=subscribe&hub.topic={topic}&hub.challenge=c"),
            400,
        ),
        (
            format!(
                "{cb}?hub.mode=subscribe&hub.topic={topic}&hub.challenge=c&hub.lease_seconds=soon"
            ),
            400,
        ),
        // Well formed, but nothing of ours is pending: a replay, a wrong
        // topic, a mode we never asked for, another token.
        (
            format!(
                "{cb}?hub.mode=subscribe&hub.topic={topic}&hub.challenge=c&hub.lease_seconds=60"
            ),
            404,
        ),
        (
            format!("{cb}?hub.mode=subscribe&hub.topic=http%3A%2F%2Fx.example%2F&hub.challenge=c"),
            404,
        ),
        (
            format!("{cb}?hub.mode=unsubscribe&hub.topic={topic}&hub.challenge=c"),
            404,
        ),
        (
            format!("{cb}?hub.mode=denied&hub.topic=http%3A%2F%2Fx.example%2F"),
            404,
        ),
        (
            format!("{other}?hub.mode=subscribe&hub.topic={topic}&hub.challenge=c"),
            404,
        ),
        (daemon.url("/websub/short?hub.mode=subscribe"), 404),
    ];
    for (url, status) in &gets {
        let got = client.get(url).send().await.unwrap();
        assert_eq!(got.status().as_u16(), *status, "GET {url}");
        assert_ne!(
            got.text().await.unwrap(),
            "c",
            "a challenge echoed for {url}"
        );
    }
    let body = atom("Harbour Gazette", None, None, &[("z", "Injected")]);
    for url in [
        other.clone(),
        daemon.url("/websub/short"),
        daemon.url("/websub/"),
    ] {
        let got = client
            .post(&url)
            .header(
                "X-Hub-Signature",
                websub::sign_sha256(sub.secret.as_deref().unwrap().as_bytes(), body.as_bytes()),
            )
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert!(
            got.status().is_client_error(),
            "POST {url}: {}",
            got.status()
        );
    }
    assert!(!daemon.river().await.contains("Injected"));
    // Nothing changed: the subscription is active and takes signed pushes.
    let good = atom("Harbour Gazette", None, None, &[("a2", "Still subscribed")]);
    assert_eq!(
        hub.push(&sub.topic, good.as_bytes(), ATOM, Sign::Good)
            .await,
        [200]
    );
    let db = daemon.stop().await;
    let subs = websub_of(&db);
    assert_eq!(
        (
            subs[0].state.as_str(),
            subs[0].pushes,
            subs[0].last_error.as_deref()
        ),
        ("active", 1, None)
    );
    assert_eq!(hub.with(|s| s.requests.len()), 1);
}

#[tokio::test]
async fn a_feed_removed_from_the_toml_is_unsubscribed() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start().await;
    let outlet = outlet_on(&hub, &[("a1", "Port reopens")]).await;
    let extra = "[access]\nadmin_token = \"adm1n-token\"";
    let daemon = Daemon::start(dir.path(), None, "", extra, &[outlet.url()]).await;
    let sub = subscribed(&hub).await;
    let path = dir.path().join("newsriver.toml");
    std::fs::write(&path, config_text(dir.path(), daemon.addr, "", extra, &[])).unwrap();
    let reload = reqwest::Client::new()
        .post(daemon.url("/admin/reload"))
        .bearer_auth("adm1n-token")
        .send()
        .await
        .unwrap();
    assert!(
        reload.status().is_success(),
        "{}",
        reload.text().await.unwrap()
    );
    hub.wait_for("the unsubscription, verified", 15, |s| {
        s.subscribers.is_empty()
            && s.verifications
                .iter()
                .any(|v| v.mode == "unsubscribe" && v.echoed)
    })
    .await;
    let request = hub.with(|s| s.requests.last().cloned().unwrap());
    assert_eq!(
        (request.mode.as_str(), request.callback.as_str()),
        ("unsubscribe", sub.callback.as_str())
    );
    // The old callback takes nothing any more.
    let body = atom("Harbour Gazette", None, None, &[("a2", "Late")]);
    let status = common::hub::deliver(
        &reqwest::Client::new(),
        &sub,
        body.as_bytes(),
        ATOM,
        Sign::Good,
    )
    .await;
    assert_eq!(status, 404);
    let db = daemon.stop().await;
    assert_eq!(websub_of(&db)[0].state, "unsubscribed");
}

#[tokio::test]
async fn a_restart_keeps_subscriptions_without_asking_again() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start().await;
    let outlet = outlet_on(&hub, &[("a1", "Port reopens")]).await;
    let daemon = Daemon::start(dir.path(), None, "", "", &[outlet.url()]).await;
    let sub = subscribed(&hub).await;
    let addr = daemon.addr;
    daemon.stop().await;
    let daemon = Daemon::start(dir.path(), Some(addr), "", "", &[outlet.url()]).await;
    wait_for_text(&daemon, "/feed.atom", "Port reopens", 10).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        hub.with(|s| s.requests.len()),
        1,
        "no second subscription after a restart"
    );
    let doc = atom(
        "Harbour Gazette",
        None,
        None,
        &[("a2", "After the restart")],
    );
    assert_eq!(
        hub.push(&sub.topic, doc.as_bytes(), ATOM, Sign::Good).await,
        [200]
    );
    wait_for_text(&daemon, "/feed.atom", "After the restart", 5).await;
    daemon.stop().await;
}

#[tokio::test]
async fn published_feeds_announce_the_hub_and_changes_are_pinged() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start().await;
    let outlet = Outlet::start(
        &atom("Harbour Gazette", None, None, &[("a1", "Port reopens")]),
        ATOM,
        None,
    )
    .await;
    let extra = format!("[websub]\nhub = \"{}\"", hub.url());
    let daemon = Daemon::start(dir.path(), None, "", &extra, &[outlet.url()]).await;
    wait_for_text(&daemon, "/feed.atom", "Port reopens", 10).await;
    for path in [
        "/feed.atom",
        "/feed.rss",
        "/feed.json",
        "/tags/world/feed.atom",
        "/feeds/1/feed.json",
    ] {
        let response = daemon.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let link = response
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        assert!(
            link.contains(&format!("<{}>; rel=\"hub\"", hub.url())),
            "{path}: {link}"
        );
        assert!(
            link.contains(&format!("<{}>; rel=\"self\"", daemon.url(path))),
            "{path}: {link}"
        );
        let body = response.text().await.unwrap();
        let in_doc = if path.ends_with(".json") {
            body.contains("\"hubs\"") && body.contains(&hub.url())
        } else {
            body.contains("rel=\"hub\"") && body.contains(&hub.url())
        };
        assert!(in_doc, "{path}: {body}");
    }
    // The first poll stored entries: one ping names every view it changed.
    hub.wait_for("a publish ping", 10, |s| !s.pings.is_empty())
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pings = hub.with(|s| s.pings.clone());
    assert_eq!(pings.len(), 1, "{pings:?}");
    for path in [
        "/feed.atom",
        "/feed.rss",
        "/feed.json",
        "/feeds/1/feed.atom",
        "/tags/world/feed.rss",
    ] {
        assert!(
            pings[0].1.contains(&daemon.url(path)),
            "{path} not in {:?}",
            pings[0].1
        );
    }
    daemon.stop().await;
}

/// Each form posted, with when.
type Posts = Arc<Mutex<Vec<(tokio::time::Instant, Vec<(String, String)>)>>>;

/// A hub in the same process, for the paused clock: it records each form
/// and, for a subscription, verifies it at once through the store (as the
/// callback route would) with a one-hour lease.
#[derive(Debug, Clone)]
struct InProcessHub {
    store: Store,
    clock: Clock,
    lease: u64,
    /// Failures still to answer with a 503.
    refuse: Arc<Mutex<u32>>,
    posts: Posts,
}

impl InProcessHub {
    fn new(store: &Store, clock: Clock) -> Self {
        Self {
            store: store.clone(),
            clock,
            lease: 3600,
            refuse: Arc::default(),
            posts: Arc::default(),
        }
    }

    fn posts(&self) -> Vec<(tokio::time::Instant, Vec<(String, String)>)> {
        self.posts.lock().unwrap().clone()
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl HubClient for InProcessHub {
    async fn post_form(&self, _hub: &str, form: Vec<(String, String)>) -> Result<u16, String> {
        self.posts
            .lock()
            .unwrap()
            .push((tokio::time::Instant::now(), form.clone()));
        {
            let mut refuse = self.refuse.lock().unwrap();
            if *refuse > 0 {
                *refuse -= 1;
                return Ok(503);
            }
        }
        if field(&form, "hub.mode") == Some("subscribe") {
            let token = field(&form, "hub.callback")
                .and_then(|c| c.rsplit('/').next())
                .unwrap()
                .to_string();
            let topic = field(&form, "hub.topic").unwrap().to_string();
            let (lease, now) = (self.lease, self.clock.now());
            let ok = self
                .store
                .call(move |s| s.websub_verify(&token, "subscribe", &topic, lease, now))
                .await
                .unwrap();
            assert!(ok, "the subscription was pending");
        }
        Ok(202)
    }
}

fn feed_spec(url: &str) -> FeedSpec {
    FeedSpec {
        url: url.into(),
        title: None,
        interval: Duration::from_secs(1800),
        tags: vec!["world".into()],
        fixed_interval: false,
    }
}

#[tokio::test(start_paused = true)]
async fn leases_are_renewed_before_they_end() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("river.db")).unwrap();
    let clock = Clock::new();
    store
        .sync_feeds(&[feed_spec("http://outlet.example/feed")], clock.now())
        .unwrap();
    let id = store.active_feeds().unwrap()[0].id;
    store
        .record_websub_discovery(
            id,
            "http://hub.example/",
            "http://outlet.example/feed",
            clock.now(),
        )
        .unwrap();
    let hub = InProcessHub::new(&store, clock);
    let mut settings = websub::SubscriberSettings::new("http://river.example/");
    settings.tick = Duration::from_secs(60);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(websub::run_subscriber(
        store.clone(),
        clock,
        hub.clone(),
        settings,
        stop,
    ));
    let start = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3000)).await;
    assert_eq!(hub.posts().len(), 1, "one subscription, no renewal yet");
    let subs = store.websub_statuses(clock.now()).unwrap();
    assert!(subs[0].pushed);
    // A tenth of the lease (360 s) before its end, at the next tick.
    tokio::time::sleep(Duration::from_secs(600)).await;
    let posts = hub.posts();
    assert_eq!(posts.len(), 2, "renewed: {posts:?}");
    let (renewed_at, renewal) = &posts[1];
    let since = *renewed_at - start;
    assert!(
        since >= Duration::from_secs(3240) && since < Duration::from_secs(3600),
        "renewed after {since:?}"
    );
    assert_eq!(field(renewal, "hub.mode"), Some("subscribe"));
    assert_eq!(
        field(renewal, "hub.callback"),
        field(&posts[0].1, "hub.callback"),
        "same callback"
    );
    assert_eq!(
        field(renewal, "hub.secret"),
        field(&posts[0].1, "hub.secret"),
        "same secret"
    );
    let subs = store.websub_statuses(clock.now()).unwrap();
    assert!(
        subs[0].pushed
            && subs[0].lease_end.unwrap() > clock.now() + chrono::Duration::seconds(3000)
    );
    // Refused renewals are retried with backoff; the lease lapses and the
    // feed is polled again when none succeeds.
    *hub.refuse.lock().unwrap() = 100;
    tokio::time::sleep(Duration::from_secs(3600 + 120)).await;
    let subs = store.websub_statuses(clock.now()).unwrap();
    assert!(
        !subs[0].pushed,
        "the lapsed lease no longer stands in for polls: {subs:?}"
    );
    assert!(subs[0].last_error.as_deref().unwrap_or("").contains("503"));
    let due = store
        .due_feeds(
            clock.now() + chrono::Duration::days(1),
            10,
            &Default::default(),
        )
        .unwrap();
    assert!(!due[0].pushed);
    stop_tx.send_replace(true);
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn publish_pings_are_debounced_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("river.db")).unwrap();
    let clock = Clock::new();
    store
        .sync_feeds(&[feed_spec("http://outlet.example/feed")], clock.now())
        .unwrap();
    let id = store.active_feeds().unwrap()[0].id;
    let hub = InProcessHub::new(&store, clock);
    *hub.refuse.lock().unwrap() = 1;
    let settings = websub::PublisherSettings::new("http://hub.example/", "http://river.example/");
    let (debounce, retry) = (settings.debounce, settings.retry);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(websub::run_publisher(
        store.clone(),
        clock,
        hub.clone(),
        settings,
        stop,
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first_change = tokio::time::Instant::now();
    for n in 0..3 {
        let entry = ParsedEntry {
            guid: Some(format!("g{n}")),
            title: format!("Story {n}"),
            link: Some(format!("https://outlet.example/{n}")),
            ..Default::default()
        };
        let entries = newsriver::identity::identify(vec![entry]);
        let now = clock.now();
        store
            .save_poll(
                id,
                now,
                200,
                &Default::default(),
                &Default::default(),
                &entries,
                now,
            )
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    let posts = hub.posts();
    assert_eq!(
        posts.len(),
        2,
        "one ping, refused once and retried: {posts:?}"
    );
    assert!(
        posts[0].0 - first_change >= debounce,
        "sent before the debounce ended"
    );
    assert!(posts[1].0 - posts[0].0 >= retry, "retried without waiting");
    assert_eq!(posts[0].1, posts[1].1);
    let urls: Vec<&str> = posts[1]
        .1
        .iter()
        .filter(|(k, _)| k == "hub.url")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(field(&posts[1].1, "hub.mode"), Some("publish"));
    for url in [
        "http://river.example/feed.atom",
        "http://river.example/feed.json",
        &format!("http://river.example/feeds/{id}/feed.rss"),
        "http://river.example/tags/world/feed.atom",
    ] {
        assert!(urls.contains(&url), "{url} not in {urls:?}");
    }
    // Writes that change no published document (a 304's record) ping nothing.
    let record = newsriver::store::PollRecord {
        state: newsriver::model::FeedState::Ok,
        status: Some(304),
        error: None,
        failures: newsriver::store::Failures::Reset,
        next_poll: clock.now(),
        interval: None,
        body_hash: None,
        validators: None,
        skip: None,
        moved: newsriver::store::Moved::Keep,
        took_ms: Some(3),
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    store.record_poll(id, clock.now(), &record).unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(hub.posts().len(), 2);
    stop_tx.send_replace(true);
    task.await.unwrap();
}

#[test]
fn a_safety_poll_that_finds_unpushed_entries_falls_back_to_polling() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("river.db")).unwrap();
    let now = chrono::Utc::now();
    store
        .sync_feeds(&[feed_spec("http://outlet.example/feed")], now)
        .unwrap();
    let id = store.active_feeds().unwrap()[0].id;
    store
        .record_websub_discovery(id, "http://hub.example/", "http://outlet.example/feed", now)
        .unwrap();
    store
        .websub_begin(id, "subscribe", &"a".repeat(64), "secret", now)
        .unwrap();
    assert!(
        store
            .websub_verify(
                &"a".repeat(64),
                "subscribe",
                "http://outlet.example/feed",
                3600,
                now
            )
            .unwrap()
    );
    // Each look at the due feeds comes after the last one's claim ran out
    // (a shared database claims what it hands out).
    let lease = chrono::Duration::from_std(newsriver::store::CLAIM_LEASE).unwrap();
    let after = |n: i32| now + lease * (2 * n);
    let due = |at| store.due_feeds(at, 10, &Default::default()).unwrap();
    assert!(due(after(0))[0].pushed);
    // The first safety poll may find what was published before the
    // subscription; a later one that finds new entries means pushes stopped.
    let later = now + chrono::Duration::hours(1);
    assert!(!store.websub_safety_poll(id, 2, later).unwrap());
    assert!(!store.websub_safety_poll(id, 0, later).unwrap());
    assert!(store.websub_safety_poll(id, 1, later).unwrap());
    assert!(!due(after(1))[0].pushed);
    let subs = store.websub_statuses(now).unwrap();
    assert_eq!(subs[0].state, "stale");
    // A signed push proves the hub works again.
    store.websub_pushed(id, now).unwrap();
    assert!(due(after(2))[0].pushed);
}

/// A urlencoded POST (reqwest's `form` needs a feature this crate leaves off).
fn form_post(
    client: &reqwest::Client,
    url: &str,
    form: &[(&str, String)],
) -> reqwest::RequestBuilder {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
}

#[tokio::test]
async fn the_built_in_hub_delivers_a_pushed_article_to_two_subscribers_one_hanging() {
    use common::hub::Reader;
    let dir = tempfile::tempdir().unwrap();
    let source_hub = TestHub::start().await;
    let outlet = outlet_on(&source_hub, &[("a1", "Port reopens")]).await;
    let extra = "[websub]\nserve_hub = true\nmax_subscribers = 2\ndelivery_timeout = \"3s\"";
    let daemon = Daemon::start(dir.path(), None, "", extra, &[outlet.url()]).await;
    let sub = subscribed(&source_hub).await;
    wait_for_text(&daemon, "/feed.atom", "Port reopens", 10).await;
    let hub_url = daemon.url("/hub");
    let link = daemon.get("/feed.atom").await.headers()["link"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        link.contains(&format!("<{hub_url}>; rel=\"hub\"")),
        "{link}"
    );

    let (quick, hanging) = (Reader::start(false).await, Reader::start(true).await);
    let client = reqwest::Client::new();
    let topic = daemon.url("/feed.atom");
    let subscribe = |callback: String, secret: &str| {
        form_post(
            &client,
            &hub_url,
            &[
                ("hub.mode", "subscribe".to_string()),
                ("hub.topic", topic.clone()),
                ("hub.callback", callback),
                ("hub.secret", secret.to_string()),
                ("hub.lease_seconds", "3600".to_string()),
            ],
        )
    };
    assert_eq!(
        subscribe(quick.callback(), "quick-secret")
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        subscribe(hanging.callback(), "slow-secret")
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    // Malformed requests are 4xx and change nothing; a third subscriber is
    // over the limit.
    let third = Reader::start(false).await;
    let bad_forms: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![
            ("hub.mode", "subscribe".into()),
            ("hub.topic", topic.clone()),
        ],
        vec![
            ("hub.mode", "subscribe".into()),
            ("hub.topic", "http://elsewhere.example/feed".into()),
            ("hub.callback", third.callback()),
        ],
        vec![
            ("hub.mode", "subscribe".into()),
            ("hub.topic", topic.clone()),
            ("hub.callback", "ftp://x.example/".into()),
        ],
        vec![
            ("hub.mode", "subscribe".into()),
            ("hub.topic", topic.clone()),
            ("hub.callback", third.callback()),
            ("hub.secret", "s".repeat(201)),
        ],
        vec![
            ("hub.mode", "subscribe".into()),
            ("hub.topic", topic.clone()),
            ("hub.callback", third.callback()),
            ("hub.lease_seconds", "long".into()),
        ],
        vec![("hub.mode", "publish".into()), ("hub.url", topic.clone())],
        vec![
            ("hub.mode", "subscribe".into()),
            ("hub.topic", daemon.url("/searches/x/feed.atom")),
            ("hub.callback", third.callback()),
        ],
    ];
    tokio::time::sleep(Duration::from_millis(300)).await;
    for form in &bad_forms {
        let status = form_post(&client, &hub_url, form)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 400, "{form:?}");
    }
    let full = subscribe(third.callback(), "third").send().await.unwrap();
    assert_eq!(full.status(), 429);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        third.verified.lock().unwrap().is_empty(),
        "nothing refused was verified"
    );
    assert_eq!(*quick.verified.lock().unwrap(), ["subscribe"]);
    assert_eq!(*hanging.verified.lock().unwrap(), ["subscribe"]);

    // The outlet's hub pushes an article; newsriver's own hub passes the
    // river on to both readers.
    let doc = atom(
        "Harbour Gazette",
        None,
        None,
        &[("a2", "Cranes return"), ("a1", "Port reopens")],
    );
    let pushed = Instant::now();
    assert_eq!(
        source_hub
            .push(&sub.topic, doc.as_bytes(), ATOM, Sign::Good)
            .await,
        [200]
    );
    wait_for_text(&daemon, "/feed.atom", "Cranes return", 5).await;
    let deadline = pushed + Duration::from_secs(10);
    while quick.deliveries.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the quick reader got nothing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (at, body, signature, link) = quick.deliveries.lock().unwrap()[0].clone();
    let took = at - pushed;
    // Debounced (2 s, checked twice a second), never held up by the hanging reader.
    assert!(took < Duration::from_secs(4), "delivered after {took:?}");
    assert!(String::from_utf8_lossy(&body).contains("Cranes return"));
    assert_eq!(
        websub::check_signature(signature.as_deref(), b"quick-secret", &body),
        websub::Signature::Valid
    );
    let link = link.unwrap_or_default();
    assert!(
        link.contains("rel=\"hub\"") && link.contains(&format!("<{topic}>; rel=\"self\"")),
        "{link}"
    );
    assert!(hanging.deliveries.lock().unwrap().is_empty());
    println!("outlet push -> reader of newsriver's hub: {took:?}");
    daemon.stop().await;
}
