//! When each feed is polled, and the refresh of one feed, which reads like the
//! pipeline: fetch → unchanged? → parse → identify → store → schedule next.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::FetchConfig;
use crate::fetch::{FetchFeed, Fetched, Fetcher};
use crate::filter::Filters;
use crate::identity;
use crate::model::{FeedId, FeedToPoll};
use crate::parse;
use crate::store::{Store, StoreError};

/// Wall-clock time derived from tokio's clock, so that tests running on a
/// paused clock move the schedule forward too.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall: DateTime<Utc>,
    start: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Self {
            wall: Utc::now(),
            start: Instant::now(),
        }
    }

    /// A clock that reads `wall` now.
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        Self {
            wall,
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.start.elapsed()).unwrap_or_default();
        self.wall + elapsed
    }

    /// The tokio instant at which the wall clock reads `at` (now, if it is past).
    pub fn instant_at(&self, at: DateTime<Utc>) -> Instant {
        let ahead = (at - self.now()).to_std().unwrap_or_default();
        Instant::now() + ahead
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// How the schedule reacts to outcomes.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Fraction of the interval by which a poll may move earlier or later.
    pub jitter: f64,
    /// Longest delay between retries of a failing feed.
    pub max_backoff: Duration,
}

impl From<&FetchConfig> for Policy {
    fn from(config: &FetchConfig) -> Self {
        Self {
            jitter: config.jitter.0,
            max_backoff: config.max_backoff.0,
        }
    }
}

impl Policy {
    /// `base` moved randomly by up to ±jitter of itself.
    pub fn jittered(&self, base: Duration, rng: &mut impl Rng) -> Duration {
        if self.jitter <= 0.0 {
            return base;
        }
        let factor = 1.0 + rng.random_range(-self.jitter..=self.jitter);
        base.mul_f64(factor)
    }

    /// Delay before the next poll after a success.
    pub fn after_success(&self, interval: Duration, rng: &mut impl Rng) -> Duration {
        self.jittered(interval, rng)
    }

    /// Delay before retrying after the `failures`-th consecutive failure: the
    /// interval, doubling with each further failure, capped at `max_backoff`
    /// (or the interval itself, if that is longer).
    pub fn after_failure(&self, interval: Duration, failures: u32, rng: &mut impl Rng) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        let cap = self.max_backoff.max(interval);
        let delay = interval.saturating_mul(1 << doublings).min(cap);
        self.jittered(delay, rng).min(cap)
    }
}

/// What happened to one feed in one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 304.
    NotModified,
    /// A feed document was read and stored.
    Stored {
        status: u16,
        new: usize,
        updated: usize,
    },
    /// Fetching, parsing or storing failed; recorded on the feed.
    Failed { status: Option<u16>, error: String },
}

#[derive(Debug, Clone)]
pub struct PollReport {
    pub feed_id: FeedId,
    pub url: String,
    pub outcome: Outcome,
    pub next_poll: DateTime<Utc>,
}

/// Everything one feed refresh needs.
#[derive(Debug)]
pub struct Poller<F = Fetcher> {
    pub store: Store,
    pub fetcher: F,
    pub clock: Clock,
    pub policy: Policy,
    /// Include/exclude rules applied between parse and store.
    pub filters: Arc<Filters>,
}

impl<F: FetchFeed> Poller<F> {
    /// Polls one feed and records the result. Never fails: every error ends up
    /// recorded on the feed (or, if even that fails, logged).
    #[tracing::instrument(name = "poll", skip_all, fields(feed = %feed.url))]
    pub async fn poll(&self, feed: FeedToPoll) -> PollReport {
        let started = Instant::now();
        let fetched = self.fetcher.fetch(&feed.url, &feed.validators).await;
        let fetch_took = started.elapsed();
        let now = self.clock.now();
        let success_at = now + delay(self.policy.after_success(feed.interval, &mut rand::rng()));
        let failure_at = now
            + delay(
                self.policy
                    .after_failure(feed.interval, feed.failures + 1, &mut rand::rng()),
            );

        let result: Result<Outcome, StoreError> = match fetched {
            Ok(Fetched::NotModified) => {
                let id = feed.id;
                self.store
                    .call(move |s| s.record_not_modified(id, now, success_at))
                    .await
                    .map(|()| Outcome::NotModified)
            }
            Ok(Fetched::Body(response)) => {
                let url = feed.url.clone();
                let status = response.status;
                let parsed = tokio::task::spawn_blocking(move || {
                    parse::parse(&response.body, response.content_type.as_deref(), &url)
                        .map(|doc| (doc, response.validators))
                })
                .await;
                match parsed {
                    Ok(Ok((doc, validators))) => {
                        let doc = self.filters.apply(&feed.url, doc, now);
                        let id = feed.id;
                        self.store
                            .call(move |s| {
                                let entries = identity::identify(doc.entries);
                                s.save_poll(
                                    id,
                                    now,
                                    status,
                                    &doc.meta,
                                    &validators,
                                    &entries,
                                    success_at,
                                )
                            })
                            .await
                            .map(|c| Outcome::Stored {
                                status,
                                new: c.new,
                                updated: c.updated,
                            })
                    }
                    Ok(Err(e)) => Ok(Outcome::Failed {
                        status: Some(status),
                        error: e.to_string(),
                    }),
                    Err(panic) => Ok(Outcome::Failed {
                        status: Some(status),
                        error: format!("parser crashed: {panic}"),
                    }),
                }
            }
            Err(e) => Ok(Outcome::Failed {
                status: e.status(),
                error: e.to_string(),
            }),
        };

        let outcome = match result {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Failed {
                status: None,
                error: format!("storing failed: {e}"),
            },
        };
        let next_poll = match &outcome {
            Outcome::Failed { status, error } => {
                let (id, status, error2) = (feed.id, *status, error.clone());
                if let Err(e) = self
                    .store
                    .call(move |s| s.record_failure(id, now, status, &error2, failure_at))
                    .await
                {
                    tracing::error!(feed = %feed.url, error = %e, "cannot record a failed poll");
                }
                failure_at
            }
            _ => success_at,
        };
        log_poll(&feed.url, &outcome, started.elapsed(), next_poll);
        crate::telemetry::record_poll(&outcome, fetch_took);
        PollReport {
            feed_id: feed.id,
            url: feed.url,
            outcome,
            next_poll,
        }
    }
}

fn delay(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(365))
}

fn log_poll(url: &str, outcome: &Outcome, took: Duration, next: DateTime<Utc>) {
    let ms = took.as_millis() as u64;
    let next = next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match outcome {
        Outcome::NotModified => {
            tracing::info!(feed = url, status = 304, new = 0, updated = 0, ms, next = %next, "poll: not modified")
        }
        Outcome::Stored {
            status,
            new,
            updated,
        } => tracing::info!(feed = url, status, new, updated, ms, next = %next, "poll: stored"),
        Outcome::Failed { status, error } => {
            tracing::warn!(feed = url, status = status.map(i64::from).unwrap_or(-1), error = %error, ms, next = %next, "poll: failed")
        }
    }
}

/// Polls feeds as they fall due until `shutdown` turns true; then waits for
/// polls in flight to finish writing and returns.
pub async fn run<F: FetchFeed>(
    poller: Arc<Poller<F>>,
    concurrency: usize,
    shutdown: watch::Receiver<bool>,
) {
    run_with(poller, concurrency, shutdown, Hooks::default()).await
}

/// Ways into a running scheduler from outside: a wake-up (a reload changed the
/// feed list, so re-read what is due now) and a heartbeat (for /healthz).
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub wake: Arc<tokio::sync::Notify>,
    /// Unix time (by the poller's clock) of the loop's last turn.
    pub heartbeat: Arc<std::sync::atomic::AtomicI64>,
}

/// `run`, with hooks.
pub async fn run_with<F: FetchFeed>(
    poller: Arc<Poller<F>>,
    concurrency: usize,
    mut shutdown: watch::Receiver<bool>,
    hooks: Hooks,
) {
    let mut busy: HashSet<FeedId> = HashSet::new();
    let mut tasks: JoinSet<FeedId> = JoinSet::new();
    let mut task_feed: HashMap<tokio::task::Id, FeedId> = HashMap::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        hooks.heartbeat.store(
            poller.clock.now().timestamp(),
            std::sync::atomic::Ordering::Relaxed,
        );
        let free = concurrency.saturating_sub(tasks.len());
        let mut wake_at = None;
        if free > 0 {
            let now = poller.clock.now();
            let busy_now = busy.clone();
            let due = poller
                .store
                .call(move |s| {
                    let due = s.due_feeds(now, free, &busy_now)?;
                    let mut busy_after = busy_now;
                    busy_after.extend(due.iter().map(|f| f.id));
                    Ok((s.next_due(&busy_after)?, due))
                })
                .await;
            match due {
                Ok((next, due)) => {
                    wake_at = next;
                    for feed in due {
                        busy.insert(feed.id);
                        let id = feed.id;
                        let p = poller.clone();
                        let handle = tasks.spawn(async move {
                            p.poll(feed).await;
                            id
                        });
                        task_feed.insert(handle.id(), id);
                    }
                }
                Err(e) => {
                    // The database may be briefly unavailable (disk full, locked):
                    // try again soon rather than stopping the scheduler.
                    tracing::error!(error = %e, "scheduler cannot read due feeds; retrying in 5s");
                    wake_at = Some(poller.clock.now() + chrono::Duration::seconds(5));
                }
            }
        }
        let sleep = async {
            match wake_at {
                Some(at) => tokio::time::sleep_until(poller.clock.instant_at(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() { break; }
            }
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let task = match &done { Ok((task, _)) => *task, Err(e) => e.id() };
                if let Some(feed) = task_feed.remove(&task) {
                    busy.remove(&feed);
                }
                if let Err(e) = done {
                    tracing::error!(error = %e, "a poll task died");
                }
            }
            () = sleep => {}
            () = hooks.wake.notified() => {}
        }
    }
    if !tasks.is_empty() {
        tracing::info!(
            in_flight = tasks.len(),
            "waiting for polls in flight to finish"
        );
    }
    while tasks.join_next().await.is_some() {}
}

/// Polls every active feed once, `concurrency` at a time.
pub async fn poll_all(
    poller: Arc<Poller>,
    concurrency: usize,
) -> Result<Vec<PollReport>, StoreError> {
    use futures_util::stream::{self, StreamExt};
    let feeds = poller.store.call(|s| s.active_feeds()).await?;
    let reports = stream::iter(feeds)
        .map(|feed| {
            let p = poller.clone();
            async move { p.poll(feed).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    Ok(reports)
}

/// Totals of a set of polls, for `poll --once`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub ok: usize,
    pub not_modified: usize,
    pub failed: usize,
    pub new: usize,
    pub updated: usize,
}

impl Summary {
    pub fn of(reports: &[PollReport]) -> Self {
        let mut s = Summary::default();
        for r in reports {
            match &r.outcome {
                Outcome::NotModified => s.not_modified += 1,
                Outcome::Stored { new, updated, .. } => {
                    s.ok += 1;
                    s.new += new;
                    s.updated += updated;
                }
                Outcome::Failed { .. } => s.failed += 1,
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn policy(jitter: f64) -> Policy {
        Policy {
            jitter,
            max_backoff: Duration::from_secs(6 * 3600),
        }
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_spreads() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let p = policy(0.1);
        let base = Duration::from_secs(600);
        let delays: Vec<Duration> = (0..1000).map(|_| p.after_success(base, &mut rng)).collect();
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_secs(540) && *d <= Duration::from_secs(660))
        );
        let min = delays.iter().min().unwrap();
        let max = delays.iter().max().unwrap();
        assert!(
            *max - *min > Duration::from_secs(100),
            "jitter should spread polls: {min:?}..{max:?}"
        );
        assert_eq!(policy(0.0).after_success(base, &mut rng), base);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let p = policy(0.0);
        let i = Duration::from_secs(600);
        assert_eq!(p.after_failure(i, 1, &mut rng), i);
        assert_eq!(p.after_failure(i, 2, &mut rng), i * 2);
        assert_eq!(p.after_failure(i, 4, &mut rng), i * 8);
        assert_eq!(
            p.after_failure(i, 30, &mut rng),
            Duration::from_secs(6 * 3600)
        );
        // An interval longer than the cap is never shortened by failing.
        let long = Duration::from_secs(12 * 3600);
        assert_eq!(p.after_failure(long, 3, &mut rng), long);
    }

    #[tokio::test(start_paused = true)]
    async fn clock_follows_tokio_time() {
        let start = Utc::now();
        let clock = Clock::starting_at(start);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!((clock.now() - start).num_seconds(), 3600);
        let at = clock.now() + chrono::Duration::seconds(90);
        assert_eq!(
            clock.instant_at(at) - Instant::now(),
            Duration::from_secs(90)
        );
    }
}
