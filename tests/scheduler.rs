//! The scheduler on tokio's paused clock: hours of simulated time in milliseconds.
//! Fetches go to an in-memory fake (real sockets and a paused clock do not mix);
//! parsing, storing and scheduling are the real ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use newsriver::Store;
use newsriver::fetch::{FetchError, FetchFeed, Fetched, Response};
use newsriver::model::Validators;
use newsriver::scheduler::{self, Clock, Policy, Poller};
use newsriver::store::FeedSpec;
use tokio::time::Instant;

#[derive(Debug, Clone)]
enum Answer {
    Feed(&'static str),
    Status(u16),
}

#[derive(Debug, Default)]
struct FakeWeb {
    answers: Mutex<HashMap<String, Answer>>,
    calls: Mutex<Vec<(String, Instant)>>,
    in_flight: Mutex<(usize, usize)>, // (now, max)
}

impl FakeWeb {
    fn times(&self, url: &str, start: Instant) -> Vec<Duration> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(u, _)| u == url)
            .map(|(_, t)| *t - start)
            .collect()
    }
}

const RSS: &str = r#"<rss version="2.0"><channel><title>T</title><link>http://f.example/</link>
<item><title>One</title><guid>1</guid><pubDate>Wed, 25 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>"#;

/// The fake as the poller holds it.
#[derive(Debug, Clone)]
struct Fake(Arc<FakeWeb>);

impl FetchFeed for Fake {
    async fn fetch(&self, url: &str, _validators: &Validators) -> Result<Fetched, FetchError> {
        let this = &self.0;
        this.calls
            .lock()
            .unwrap()
            .push((url.to_string(), Instant::now()));
        {
            let mut f = this.in_flight.lock().unwrap();
            f.0 += 1;
            f.1 = f.1.max(f.0);
        }
        // A fetch takes a little (virtual) time.
        tokio::time::sleep(Duration::from_millis(300)).await;
        this.in_flight.lock().unwrap().0 -= 1;
        let answer = this
            .answers
            .lock()
            .unwrap()
            .get(url)
            .cloned()
            .unwrap_or(Answer::Status(404));
        match answer {
            Answer::Feed(body) => Ok(Fetched::Body(Response {
                status: 200,
                body: Bytes::from_static(body.as_bytes()),
                content_type: Some("application/rss+xml".into()),
                validators: Validators::default(),
                final_url: url.to_string(),
                ..Default::default()
            })),
            Answer::Status(status) => Err(FetchError::Status {
                status,
                retry_after: None,
            }),
        }
    }
}

struct Harness {
    web: Arc<FakeWeb>,
    poller: Arc<Poller<Fake>>,
    _dir: tempfile::TempDir,
}

async fn harness(feeds: &[(&str, u64, Answer)], jitter: f64) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let clock = Clock::new();
    let web = Arc::new(FakeWeb::default());
    let specs: Vec<FeedSpec> = feeds
        .iter()
        .map(|(url, minutes, answer)| {
            web.answers
                .lock()
                .unwrap()
                .insert(url.to_string(), answer.clone());
            FeedSpec {
                url: url.to_string(),
                title: None,
                interval: Duration::from_secs(minutes * 60),
                tags: vec![],
            }
        })
        .collect();
    store.sync_feeds(&specs, clock.now()).unwrap();
    let poller = Arc::new(Poller {
        store,
        fetcher: Fake(web.clone()),
        clock,
        policy: Policy {
            jitter,
            max_backoff: Duration::from_secs(3 * 3600),
            // These tests are about fixed intervals; the adaptive interval
            // and per-host spacing have their own.
            adaptive: false,
            host_gap: Duration::from_millis(1),
            ..Policy::default()
        },
    });
    Harness {
        web,
        poller,
        _dir: dir,
    }
}

/// Runs the scheduler for `simulated` time, then stops it.
async fn run_for(h: &Harness, concurrency: usize, simulated: Duration) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(scheduler::run(h.poller.clone(), concurrency, stopped));
    tokio::time::sleep(simulated).await;
    stop.send(true).unwrap();
    task.await.unwrap();
}

fn minutes(d: Duration) -> f64 {
    d.as_secs_f64() / 60.0
}

#[tokio::test(start_paused = true)]
async fn each_feed_is_polled_at_its_own_interval_within_the_jitter_bounds() {
    let h = harness(
        &[
            ("http://a.example/10m", 10, Answer::Feed(RSS)),
            ("http://b.example/1h", 60, Answer::Feed(RSS)),
        ],
        0.1,
    )
    .await;
    let start = Instant::now();
    run_for(&h, 4, Duration::from_secs(6 * 3600)).await;

    for (url, interval) in [
        ("http://a.example/10m", 10.0),
        ("http://b.example/1h", 60.0),
    ] {
        let times = h.web.times(url, start);
        assert!(
            times[0] < Duration::from_secs(1),
            "new feeds are polled at once: {times:?}"
        );
        let gaps: Vec<f64> = times.windows(2).map(|w| minutes(w[1] - w[0])).collect();
        // ±10 % jitter, plus the fetch time and one second of timestamp rounding.
        for gap in &gaps {
            assert!(
                *gap >= interval * 0.9 - 0.02 && *gap <= interval * 1.1 + 0.03,
                "{url}: gap {gap} min outside ±10 %: {gaps:?}"
            );
        }
        let expected = 360.0 / interval;
        assert!(
            (gaps.len() as f64 - expected).abs() <= expected * 0.12 + 1.0,
            "{url}: {} polls in 6 h",
            times.len()
        );
        // Jitter really varies the gaps.
        let spread = gaps.iter().cloned().fold(f64::MIN, f64::max)
            - gaps.iter().cloned().fold(f64::MAX, f64::min);
        assert!(
            spread > interval * 0.02,
            "{url}: gaps do not vary: {gaps:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_feed_backs_off_exponentially_up_to_the_cap_without_delaying_others() {
    let h = harness(
        &[
            ("http://down.example/", 10, Answer::Status(500)),
            ("http://up.example/", 10, Answer::Feed(RSS)),
        ],
        0.0,
    )
    .await;
    let start = Instant::now();
    run_for(&h, 4, Duration::from_secs(12 * 3600)).await;

    let gaps: Vec<f64> = h
        .web
        .times("http://down.example/", start)
        .windows(2)
        .map(|w| minutes(w[1] - w[0]))
        .collect();
    let rounded: Vec<u64> = gaps.iter().map(|g| g.round() as u64).collect();
    // 10, 20, 40, 80, 160 minutes, then capped at max_backoff (3 h).
    assert_eq!(&rounded[..6], &[10, 20, 40, 80, 160, 180], "{gaps:?}");
    let healthy = h.web.times("http://up.example/", start).len();
    assert!(
        (70..=74).contains(&healthy),
        "the healthy feed keeps its 10-minute schedule: {healthy} polls in 12 h"
    );

    let status = h.poller.store.feed_statuses().unwrap();
    let down = status
        .iter()
        .find(|s| s.url == "http://down.example/")
        .unwrap();
    assert!(down.failures >= 6);
    assert_eq!(down.last_error.as_deref(), Some("HTTP 500"));
    assert!(down.next_poll_at > h.poller.clock.now());
}

#[tokio::test(start_paused = true)]
async fn no_more_than_the_concurrency_limit_is_fetched_at_once() {
    let feeds: Vec<(String, u64, Answer)> = (0..20)
        .map(|i| (format!("http://f{i}.example/"), 10, Answer::Feed(RSS)))
        .collect();
    let borrowed: Vec<(&str, u64, Answer)> = feeds
        .iter()
        .map(|(u, m, a)| (u.as_str(), *m, a.clone()))
        .collect();
    let h = harness(&borrowed, 0.1).await;
    run_for(&h, 3, Duration::from_secs(3600)).await;
    let max = h.web.in_flight.lock().unwrap().1;
    assert_eq!(
        max, 3,
        "at most `concurrency` fetches at once, and the limit is used"
    );
    assert!(
        h.poller
            .store
            .feed_statuses()
            .unwrap()
            .iter()
            .all(|s| s.entries == 1)
    );
}
