//! The scheduler's hooks on tokio's paused clock: a wake-up after a reload
//! changed the feed list, and the heartbeat /healthz reads; and its limit on
//! documents parsed at once.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use newsriver::fetch::{FetchError, FetchFeed, Fetched, Response};
use newsriver::model::Validators;
use newsriver::scheduler::{self, Clock, Hooks, Policy, Poller};
use newsriver::store::FeedSpec;
use tokio::time::Instant;

const RSS: &str = r#"<rss version="2.0"><channel><title>T</title><link>http://f.example/</link>
<item><title>One</title><guid>1</guid></item></channel></rss>"#;

/// Answers every URL with the same small feed and records when it was asked.
#[derive(Debug, Clone, Default)]
struct Fake(Arc<Mutex<Vec<(String, Instant)>>>);

impl FetchFeed for Fake {
    async fn fetch(&self, url: &str, _: &Validators) -> Result<Fetched, FetchError> {
        self.0
            .lock()
            .unwrap()
            .push((url.to_string(), Instant::now()));
        Ok(Fetched::Body(Response {
            status: 200,
            body: Bytes::from_static(RSS.as_bytes()),
            content_type: None,
            validators: Validators::default(),
            final_url: url.to_string(),
            ..Default::default()
        }))
    }
}

fn spec(url: &str) -> FeedSpec {
    FeedSpec {
        url: url.into(),
        title: None,
        interval: Duration::from_secs(3600),
        tags: vec![],
        fixed_interval: false,
    }
}

#[tokio::test(start_paused = true)]
async fn a_wake_up_makes_a_newly_added_feed_poll_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("s.db")).unwrap();
    let clock = Clock::new();
    store
        .sync_feeds(&[spec("http://a.example/")], clock.now())
        .unwrap();
    let fake = Fake::default();
    let poller = Arc::new(Poller {
        store: store.clone(),
        fetcher: fake.clone(),
        clock,
        policy: Policy {
            jitter: 0.0,
            max_backoff: Duration::from_secs(3600),
            adaptive: false,
            ..Policy::default()
        },
        filters: Default::default(),
        parsing: scheduler::ParseThreads::per_core().unwrap(),
    });
    let hooks = Hooks::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let start = Instant::now();
    let task = tokio::spawn(scheduler::run_with(poller, 4, stopped, hooks.clone()));

    tokio::time::sleep(Duration::from_secs(600)).await;
    let beat = hooks.heartbeat.load(Ordering::Relaxed);
    assert!(beat > 0, "the loop records its turns");
    // A reload adds b while the scheduler sleeps until a is due again (in 50
    // minutes), then wakes it.
    let woke = clock.now().timestamp();
    store
        .sync_feeds(
            &[spec("http://a.example/"), spec("http://b.example/")],
            clock.now(),
        )
        .unwrap();
    hooks.wake.notify_one();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let calls = fake.0.lock().unwrap().clone();
    let b: Vec<Duration> = calls
        .iter()
        .filter(|(u, _)| u == "http://b.example/")
        .map(|(_, t)| *t - start)
        .collect();
    assert_eq!(b.len(), 1, "{calls:?}");
    assert!(
        b[0] >= Duration::from_secs(600) && b[0] < Duration::from_secs(605),
        "b polled at {:?}, not when a fell due",
        b[0]
    );
    // The wake-up turned the loop, so /healthz sees a fresh heartbeat.
    assert!(
        hooks.heartbeat.load(Ordering::Relaxed) >= woke,
        "heartbeat {} before the wake-up at {woke}",
        hooks.heartbeat.load(Ordering::Relaxed)
    );
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// Answers every URL with a feed of 100 items, each URL its own guids.
#[derive(Debug, Clone)]
struct Big;

impl FetchFeed for Big {
    async fn fetch(&self, url: &str, _: &Validators) -> Result<Fetched, FetchError> {
        let items: String = (0..100)
            .map(|i| {
                format!(
                    "<item><title>Item {i} of {url}</title><guid>{url}#{i}</guid>\
                     <description>&lt;p&gt;Words {i} about the harbour, the council and the river.&lt;/p&gt;</description></item>"
                )
            })
            .collect();
        Ok(Fetched::Body(Response {
            status: 200,
            body: Bytes::from(format!(
                "<rss version=\"2.0\"><channel><title>T</title><link>http://f.example/</link>{items}</channel></rss>"
            )),
            content_type: None,
            validators: Validators::default(),
            final_url: url.to_string(),
            ..Default::default()
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_more_documents_parse_at_once_than_there_are_parse_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("s.db")).unwrap();
    let clock = Clock::new();
    let specs: Vec<FeedSpec> = (0..16)
        .map(|i| spec(&format!("http://host{i}.example/feed")))
        .collect();
    store.sync_feeds(&specs, clock.now()).unwrap();
    let parsing = scheduler::ParseThreads::new(2).unwrap();
    let poller = Arc::new(Poller {
        store: store.clone(),
        fetcher: Big,
        clock,
        policy: Policy::default(),
        filters: Default::default(),
        parsing: parsing.clone(),
    });
    // All 16 fetched at once: on threads of their own, each would parse at once.
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let reports = scheduler::poll_all_with(poller, 16, stopped, |_| {}, |_| {})
        .await
        .unwrap();
    assert_eq!(reports.len(), 16);
    assert_eq!(
        parsing.entered(),
        16,
        "every document went to a parse thread"
    );
    assert!(
        (1..=2).contains(&parsing.most_at_once()),
        "{} documents parsed at once",
        parsing.most_at_once()
    );
    assert_eq!(store.entry_count().unwrap(), 16 * 100, "every entry stored");
}
