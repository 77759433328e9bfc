//! The scheduler on tokio's paused clock: hours of simulated time in milliseconds.
//! Fetches go to an in-memory fake (real sockets and a paused clock do not mix);
//! parsing, storing and scheduling are the real ones.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use newsriver::fetch::{FetchError, FetchFeed, Fetched, Response, RetryAfter};
use newsriver::model::Validators;
use newsriver::scheduler::{self, Clock, Policy, Poller};
use newsriver::store::FeedSpec;
use tokio::time::Instant;

#[derive(Debug, Clone)]
enum Answer {
    Feed(&'static str),
    Status(u16),
    /// 429/503 with Retry-After: seconds, or an HTTP date that far ahead.
    Throttle {
        status: u16,
        wait: Duration,
        as_date: bool,
    },
    /// An RSS feed of 30 items published every `every`, newest now.
    Publishing {
        every: Duration,
        ttl_minutes: Option<u64>,
    },
    /// Never answers; the fetch gives up at its deadline.
    Hang(Duration),
    /// Answers in turn; the last one repeats.
    Seq(Vec<Answer>),
}

#[derive(Debug, Default)]
struct FakeWeb {
    answers: Mutex<HashMap<String, Answer>>,
    calls: Mutex<Vec<(String, Instant)>>,
    in_flight: Mutex<(usize, usize)>, // (now, max)
    /// Per host: (in flight now, most at once).
    host_in_flight: Mutex<HashMap<String, (usize, usize)>>,
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

/// The fake as the poller holds it, with the poller's clock for dates.
#[derive(Debug, Clone)]
struct Fake(Arc<FakeWeb>, Clock);

fn publishing_rss(now: chrono::DateTime<chrono::Utc>, every: Duration, ttl: Option<u64>) -> String {
    let every = chrono::Duration::from_std(every).unwrap();
    // Dates on a fixed grid, so the document changes only when an item is due.
    let newest = chrono::DateTime::from_timestamp(
        now.timestamp() - now.timestamp() % every.num_seconds(),
        0,
    )
    .unwrap();
    let mut rss = String::from(
        r#"<rss version="2.0"><channel><title>P</title><link>http://p.example/</link>"#,
    );
    if let Some(ttl) = ttl {
        rss.push_str(&format!("<ttl>{ttl}</ttl>"));
    }
    for i in 0..30 {
        let at = newest - every * i;
        rss.push_str(&format!(
            "<item><title>Item {}</title><guid>{}</guid><pubDate>{}</pubDate></item>",
            at.timestamp(),
            at.timestamp(),
            at.to_rfc2822()
        ));
    }
    rss.push_str("</channel></rss>");
    rss
}

impl FetchFeed for Fake {
    async fn fetch(&self, url: &str, _validators: &Validators) -> Result<Fetched, FetchError> {
        let this = &self.0;
        let host = scheduler::host_of(url);
        this.calls
            .lock()
            .unwrap()
            .push((url.to_string(), Instant::now()));
        {
            let mut f = this.in_flight.lock().unwrap();
            f.0 += 1;
            f.1 = f.1.max(f.0);
            let mut hosts = this.host_in_flight.lock().unwrap();
            let h = hosts.entry(host.clone()).or_default();
            h.0 += 1;
            h.1 = h.1.max(h.0);
        }
        let answer = {
            let mut answers = this.answers.lock().unwrap();
            match answers.get_mut(url) {
                Some(Answer::Seq(list)) if list.len() > 1 => list.remove(0),
                Some(Answer::Seq(list)) => list[0].clone(),
                Some(a) => a.clone(),
                None => Answer::Status(404),
            }
        };
        // A fetch takes a little (virtual) time; a hanging one, long.
        let took = match &answer {
            Answer::Hang(d) => *d,
            _ => Duration::from_millis(300),
        };
        tokio::time::sleep(took).await;
        this.in_flight.lock().unwrap().0 -= 1;
        this.host_in_flight
            .lock()
            .unwrap()
            .get_mut(&host)
            .unwrap()
            .0 -= 1;
        let now = self.1.now();
        match answer {
            Answer::Throttle {
                status,
                wait,
                as_date,
            } => Err(FetchError::Status {
                status,
                retry_after: Some(if as_date {
                    RetryAfter::At(now + chrono::Duration::from_std(wait).unwrap())
                } else {
                    RetryAfter::Seconds(wait.as_secs())
                }),
            }),
            Answer::Publishing { every, ttl_minutes } => Ok(Fetched::Body(Response {
                status: 200,
                body: Bytes::from(publishing_rss(now, every, ttl_minutes)),
                final_url: url.to_string(),
                ..Default::default()
            })),
            Answer::Hang(limit) => Err(FetchError::Deadline { limit }),
            Answer::Seq(_) => unreachable!("sequences hold plain answers"),
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

async fn harness<S: AsRef<str>>(feeds: &[(S, u64, Answer)], jitter: f64) -> Harness {
    harness_with(
        feeds,
        Policy {
            jitter,
            max_backoff: Duration::from_secs(3 * 3600),
            // These tests are about fixed intervals; the adaptive interval
            // and per-host spacing have their own.
            adaptive: false,
            host_gap: Duration::from_millis(1),
            ..Policy::default()
        },
    )
    .await
}

async fn harness_with<S: AsRef<str>>(feeds: &[(S, u64, Answer)], policy: Policy) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("s.db")).unwrap();
    let clock = Clock::new();
    let web = Arc::new(FakeWeb::default());
    let specs: Vec<FeedSpec> = feeds
        .iter()
        .map(|(url, minutes, answer)| {
            let url = url.as_ref();
            web.answers
                .lock()
                .unwrap()
                .insert(url.to_string(), answer.clone());
            FeedSpec {
                url: url.to_string(),
                title: None,
                interval: Duration::from_secs(minutes * 60),
                tags: vec![],
                // As if its [[feed]] set `interval`.
                fixed_interval: url.contains("/own-interval"),
            }
        })
        .collect();
    store.sync_feeds(&specs, clock.now()).unwrap();
    let poller = Arc::new(Poller {
        store,
        fetcher: Fake(web.clone(), clock),
        clock,
        policy,
        filters: Default::default(),
        parsing: scheduler::ParseThreads::per_core().unwrap(),
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
    let h = harness(&feeds, 0.1).await;
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

fn polite(jitter: f64) -> Policy {
    Policy {
        jitter,
        max_backoff: Duration::from_secs(3 * 3600),
        adaptive: false,
        ..Policy::default()
    }
}

fn status_of(h: &Harness, url: &str) -> newsriver::model::FeedStatus {
    h.poller
        .store
        .feed_statuses()
        .unwrap()
        .into_iter()
        .find(|s| s.url == url)
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn retry_after_delays_the_next_poll_and_is_not_counted_as_a_failure() {
    let throttled = |status, minutes: u64, as_date| {
        Answer::Seq(vec![
            Answer::Throttle {
                status,
                wait: Duration::from_secs(minutes * 60),
                as_date,
            },
            Answer::Feed(RSS),
        ])
    };
    let h = harness_with(
        &[
            ("http://a.example/503", 10, throttled(503, 120, false)),
            ("http://b.example/429", 10, throttled(429, 90, true)),
            ("http://c.example/huge", 10, throttled(429, 100 * 60, false)),
        ],
        polite(0.0),
    )
    .await;
    let start = Instant::now();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(scheduler::run(h.poller.clone(), 4, stopped));
    tokio::time::sleep(Duration::from_secs(30)).await;
    let c = status_of(&h, "http://c.example/huge");
    assert_eq!(c.state, newsriver::model::FeedState::Throttled);
    assert_eq!(c.failures, 0);
    assert!(
        c.last_error.as_deref().unwrap().contains("wait 21600s"),
        "{c:?}"
    );
    tokio::time::sleep(Duration::from_secs(7 * 3600)).await;
    stop.send(true).unwrap();
    task.await.unwrap();

    for (url, wait) in [
        ("http://a.example/503", 120.0),
        ("http://b.example/429", 90.0),
    ] {
        let times = h.web.times(url, start);
        let gaps: Vec<f64> = times.windows(2).map(|w| minutes(w[1] - w[0])).collect();
        assert!((gaps[0] - wait).abs() < 0.1, "{url}: waited {gaps:?}");
        // Then back to the ordinary 10 minutes: the throttle was no failure.
        assert!(
            gaps[1..].iter().all(|g| (g - 10.0).abs() < 0.1),
            "{url}: {gaps:?}"
        );
        let s = status_of(&h, url);
        assert_eq!(s.state, newsriver::model::FeedState::Ok);
        assert_eq!(s.failures, 0);
    }
    // A Retry-After of 100 hours is capped at max_retry_after (6 h).
    let times = h.web.times("http://c.example/huge", start);
    assert!(
        (minutes(times[1] - times[0]) - 360.0).abs() < 0.1,
        "{times:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn many_feeds_on_one_host_are_spread_out_and_other_hosts_are_not_held_up() {
    let mut feeds: Vec<(String, u64, Answer)> = (0..30)
        .map(|i| {
            (
                format!("http://big.example/feed/{i}"),
                10,
                Answer::Feed(RSS),
            )
        })
        .collect();
    feeds.push(("http://small.example/feed".into(), 10, Answer::Feed(RSS)));
    let h = harness_with(
        &feeds,
        Policy {
            host_concurrency: 1,
            host_gap: Duration::from_secs(2),
            ..polite(0.1)
        },
    )
    .await;
    let start = Instant::now();
    run_for(&h, 8, Duration::from_secs(3600)).await;

    let calls = h.web.calls.lock().unwrap().clone();
    let mut big: Vec<Duration> = calls
        .iter()
        .filter(|(u, _)| u.starts_with("http://big.example/"))
        .map(|(_, t)| *t - start)
        .collect();
    big.sort();
    let closest = big.windows(2).map(|w| w[1] - w[0]).min().unwrap();
    assert!(
        closest >= Duration::from_secs(2),
        "closest requests to one host: {closest:?}"
    );
    assert_eq!(h.web.host_in_flight.lock().unwrap()["big.example"].1, 1);
    // The 30 feeds of the first round were spread over about a minute…
    let first_round = &big[..30];
    assert!(
        first_round[29] >= Duration::from_secs(58),
        "{first_round:?}"
    );
    // …and the other host did not wait for them.
    let small = h.web.times("http://small.example/feed", start);
    assert!(small[0] < Duration::from_secs(1), "{small:?}");
    // Every feed still kept its 10-minute schedule (±10 % jitter + spacing).
    for (url, _, _) in &feeds {
        let n = h.web.times(url, start).len();
        assert!((6..=8).contains(&n), "{url}: {n} polls in an hour");
    }
}

#[tokio::test(start_paused = true)]
async fn the_adaptive_interval_follows_each_feeds_publishing_rate() {
    let publishing = |every_min: u64, ttl_minutes| Answer::Publishing {
        every: Duration::from_secs(every_min * 60),
        ttl_minutes,
    };
    let h = harness_with(
        &[
            ("http://hourly.example/", 30, publishing(60, None)),
            ("http://busy.example/", 30, publishing(1, None)),
            ("http://slow.example/", 30, publishing(3 * 24 * 60, None)),
            ("http://ttl.example/", 30, publishing(60, Some(180))),
            ("http://fixed.example/", 30, Answer::Feed(RSS)),
            (
                "http://pinned.example/own-interval",
                30,
                publishing(1, None),
            ),
        ],
        Policy {
            adaptive: true,
            min_interval: Duration::from_secs(5 * 60),
            max_interval: Duration::from_secs(12 * 3600),
            ..polite(0.0)
        },
    )
    .await;
    let start = Instant::now();
    run_for(&h, 4, Duration::from_secs(25 * 3600)).await;
    let gaps = |url| -> Vec<f64> {
        h.web
            .times(url, start)
            .windows(2)
            .map(|w| minutes(w[1] - w[0]))
            .collect()
    };
    let near = |gaps: &[f64], want: f64| gaps.iter().all(|g| (g - want).abs() < 0.1);
    let within = |gaps: &[f64], low: f64, high: f64| gaps.iter().all(|g| *g >= low && *g <= high);
    // An item an hour: about an hour (the gap is measured up to now, so it
    // breathes a little with where in the hour the poll falls).
    let hourly = gaps("http://hourly.example/");
    assert!(within(&hourly, 56.0, 62.0), "{hourly:?}");
    // An item a minute: floored at min_interval.
    let busy = gaps("http://busy.example/");
    assert!(near(&busy, 5.0), "{busy:?}");
    // An item every three days: capped at max_interval.
    let slow = gaps("http://slow.example/");
    assert!(near(&slow, 720.0), "{slow:?}");
    // Hourly, but <ttl>180</ttl>: the feed's wish lengthens it.
    let ttl = gaps("http://ttl.example/");
    assert!(near(&ttl, 180.0), "{ttl:?}");
    // The fixture's one item is two days old: quiet, max_interval.
    let fixed = gaps("http://fixed.example/");
    assert!(near(&fixed, 720.0), "{fixed:?}");
    // A feed whose [[feed]] sets its own interval keeps it.
    let pinned = gaps("http://pinned.example/own-interval");
    assert!(near(&pinned, 30.0), "{pinned:?}");
    assert!(
        hourly.len() >= 20 && busy.len() >= 250,
        "{} {}",
        hourly.len(),
        busy.len()
    );
}

#[tokio::test(start_paused = true)]
async fn a_ttl_longer_than_the_rate_lengthens_the_interval() {
    let h = harness_with(
        &[(
            "http://ttl.example/",
            30,
            Answer::Publishing {
                every: Duration::from_secs(60),
                ttl_minutes: Some(45),
            },
        )],
        Policy {
            adaptive: true,
            ..polite(0.0)
        },
    )
    .await;
    let start = Instant::now();
    run_for(&h, 1, Duration::from_secs(4 * 3600)).await;
    let times = h.web.times("http://ttl.example/", start);
    let gaps: Vec<f64> = times.windows(2).map(|w| minutes(w[1] - w[0])).collect();
    // The rate alone would say 5 minutes (min_interval); the ttl says 45.
    assert!(gaps.iter().all(|g| (g - 45.0).abs() < 0.1), "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn undated_entries_keep_their_first_seen_time() {
    let h = harness(
        &[(
            "http://undated.example/",
            10,
            Answer::Seq(vec![
                Answer::Feed(
                    r#"<rss version="2.0"><channel><title>U</title><item><title>Old</title><guid>a</guid></item></channel></rss>"#,
                ),
                Answer::Feed(
                    r#"<rss version="2.0"><channel><title>U</title><item><title>New</title><guid>b</guid></item><item><title>Old</title><guid>a</guid></item></channel></rss>"#,
                ),
            ]),
        )],
        0.0,
    )
    .await;
    let first_seen = h.poller.clock.now();
    run_for(&h, 1, Duration::from_secs(15 * 60)).await;
    let stories = h.poller.store.stories(10).unwrap();
    assert_eq!(stories.len(), 2);
    let time_of = |title: &str| stories.iter().find(|s| s.title == title).unwrap().updated;
    assert!((time_of("Old") - first_seen).num_seconds().abs() <= 1);
    assert!((time_of("New") - first_seen).num_seconds() >= 10 * 60 - 1);
    assert_eq!(stories[0].title, "New", "newest first by first-seen time");
}

/// The done-means of issue 3: an hour of simulated time against healthy and
/// hostile feeds on a few hosts.
#[tokio::test(start_paused = true)]
async fn an_hour_with_healthy_and_hostile_feeds_stays_up_polite_and_on_schedule() {
    let mut feeds: Vec<(String, u64, Answer)> = Vec::new();
    for i in 0..12 {
        feeds.push((
            format!("http://news.example/healthy/{i}"),
            10,
            Answer::Feed(RSS),
        ));
    }
    for i in 0..4 {
        feeds.push((
            format!("http://blog{i}.example/feed"),
            10,
            Answer::Feed(RSS),
        ));
    }
    let hostile = [
        ("http://news.example/500", Answer::Status(500)),
        ("http://news.example/gone", Answer::Status(410)),
        (
            "http://news.example/429",
            Answer::Throttle {
                status: 429,
                wait: Duration::from_secs(7200),
                as_date: true,
            },
        ),
        (
            "http://hang.example/a",
            Answer::Hang(Duration::from_secs(60)),
        ),
        (
            "http://hang.example/b",
            Answer::Hang(Duration::from_secs(60)),
        ),
        ("http://news.example/404", Answer::Status(404)),
    ];
    for (url, answer) in hostile {
        feeds.push((url.to_string(), 10, answer));
    }
    let gap = Duration::from_secs(1);
    let h = harness_with(
        &feeds,
        Policy {
            host_concurrency: 2,
            host_gap: gap,
            ..polite(0.1)
        },
    )
    .await;
    let start = Instant::now();
    run_for(&h, 8, Duration::from_secs(3600)).await;
    assert!(
        Instant::now() - start < Duration::from_secs(3600 + 61),
        "the scheduler stopped once the polls in flight ended"
    );

    let calls = h.web.calls.lock().unwrap().clone();
    let mut per_host: HashMap<String, Vec<Duration>> = HashMap::new();
    for (url, at) in &calls {
        per_host
            .entry(scheduler::host_of(url))
            .or_default()
            .push(*at - start);
    }
    let mut figures = Vec::new();
    for (host, times) in per_host.iter_mut() {
        times.sort();
        if let Some(closest) = times.windows(2).map(|w| w[1] - w[0]).min() {
            assert!(closest >= gap, "{host}: two requests {closest:?} apart");
        }
        let busiest_minute = times
            .iter()
            .map(|t| {
                times
                    .iter()
                    .filter(|u| **u >= *t && **u < *t + Duration::from_secs(60))
                    .count()
            })
            .max()
            .unwrap_or(0);
        figures.push(format!(
            "{host}: {} polls, at most {busiest_minute} in any minute",
            times.len()
        ));
    }
    figures.sort();
    eprintln!("simulated hour:\n  {}", figures.join("\n  "));
    for (host, (_, most)) in h.web.host_in_flight.lock().unwrap().iter() {
        assert!(*most <= 2, "{host}: {most} requests at once");
    }

    // Healthy feeds: polled on schedule (every 10 min ± 10 %, over 60 min).
    for (url, _, answer) in &feeds {
        if !matches!(answer, Answer::Feed(_)) {
            continue;
        }
        let times = h.web.times(url, start);
        assert!(
            (6..=8).contains(&times.len()),
            "{url}: {} polls",
            times.len()
        );
        let gaps: Vec<f64> = times.windows(2).map(|w| minutes(w[1] - w[0])).collect();
        assert!(
            gaps.iter().all(|g| *g >= 8.9 && *g <= 11.2),
            "{url}: {gaps:?}"
        );
        assert_eq!(status_of(&h, url).state, newsriver::model::FeedState::Ok);
    }
    // Hostile feeds: each polled as its state says, and the state explains itself.
    use newsriver::model::FeedState::*;
    let expect = [
        ("http://news.example/500", Failing, 2..=4, "HTTP 500"),
        ("http://news.example/404", Failing, 2..=4, "HTTP 404"),
        ("http://news.example/gone", Gone, 1..=1, "410"),
        ("http://news.example/429", Throttled, 1..=1, "wait 7200s"),
        ("http://hang.example/a", Failing, 2..=4, "within 60s"),
    ];
    for (url, state, polls, error) in expect {
        let s = status_of(&h, url);
        let n = h.web.times(url, start).len();
        assert_eq!(s.state, state, "{url}");
        assert!(polls.contains(&n), "{url}: {n} polls");
        assert!(
            s.last_error.as_deref().unwrap_or("").contains(error),
            "{url}: {s:?}"
        );
        if state != Gone {
            assert!(
                s.next_poll_at > h.poller.clock.now(),
                "{url}: next attempt stored"
            );
        }
    }
    assert_eq!(h.poller.store.duplicate_entries().unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_one_off_pass_has_every_record_committed_when_it_returns() {
    // `poll_all` queues the records of polls that stored nothing without
    // waiting for them; by the time it returns they must all be in.
    let mut feeds: Vec<(String, u64, Answer)> = (0..40)
        .map(|i| {
            let answer = match i % 4 {
                0 => Answer::Feed(RSS),
                1 => Answer::Status(500),
                2 => Answer::Status(404),
                _ => Answer::Throttle {
                    status: 429,
                    wait: Duration::from_secs(600),
                    as_date: false,
                },
            };
            (format!("http://f{i}.example/feed"), 10, answer)
        })
        .collect();
    // The same document twice: the second poll is an unchanged 200.
    feeds.push(("http://same.example/feed".into(), 10, Answer::Feed(RSS)));
    let h = harness(&feeds, 0.0).await;
    let reports = scheduler::poll_all(h.poller.clone(), 8).await.unwrap();
    assert_eq!(reports.len(), 41);
    for (i, (url, _, _)) in feeds.iter().take(40).enumerate() {
        let s = status_of(&h, url);
        let expected = [200, 500, 404, 429][i % 4];
        assert_eq!(s.last_status, Some(expected), "{url}");
        assert!(s.last_polled_at.is_some(), "{url}");
        let failures = if matches!(expected, 500 | 404) { 1 } else { 0 };
        assert_eq!(s.failures, failures, "{url}");
    }
    let first = status_of(&h, "http://same.example/feed").last_polled_at;
    tokio::time::advance(Duration::from_secs(60)).await;
    scheduler::poll_all(h.poller.clone(), 8).await.unwrap();
    let same = status_of(&h, "http://same.example/feed");
    assert!(
        same.last_polled_at > first,
        "the unchanged 200 is recorded too"
    );
    assert_eq!(same.last_status, Some(200));
}

#[tokio::test(start_paused = true)]
async fn in_a_one_off_pass_a_host_with_many_feeds_does_not_hold_up_the_others() {
    // 40 feeds on one host, spaced 10 s apart by politeness, listed first;
    // then 6 feeds on hosts of their own. Only a bounded window of polls is
    // started at once, yet the small hosts must not wait behind the big one.
    let mut feeds: Vec<(String, u64, Answer)> = (0..40)
        .map(|i| (format!("http://big.example/{i}"), 10, Answer::Feed(RSS)))
        .collect();
    feeds.extend((0..6).map(|i| {
        (
            format!("http://small{i}.example/feed"),
            10,
            Answer::Feed(RSS),
        )
    }));
    let h = harness_with(
        &feeds,
        Policy {
            host_concurrency: 1,
            host_gap: Duration::from_secs(10),
            ..polite(0.0)
        },
    )
    .await;
    let start = Instant::now();
    let reports = scheduler::poll_all(h.poller.clone(), 2).await.unwrap();
    assert_eq!(reports.len(), 46);
    let calls = h.web.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 46);
    for (url, at) in &calls {
        if url.contains("small") {
            assert!(
                *at - start < Duration::from_secs(5),
                "{url} waited {:?} behind the big host",
                *at - start
            );
        }
    }
    // The big host kept its spacing all along.
    let mut big: Vec<Instant> = calls
        .iter()
        .filter(|(u, _)| u.contains("big"))
        .map(|(_, at)| *at)
        .collect();
    big.sort();
    assert!(
        big.windows(2)
            .all(|w| w[1] - w[0] >= Duration::from_secs(10))
    );
}
