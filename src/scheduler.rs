//! When each feed is polled, and the refresh of one feed, which reads like the
//! pipeline: fetch → unchanged? → parse → identify → store → schedule next.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::FetchConfig;
use crate::fetch::{CacheHints, FetchError, FetchFeed, Fetched, Fetcher, Response, body_hash};
use crate::filter::Filters;
use crate::identity;
use crate::model::{FeedId, FeedState, FeedToPoll, Validators, WebSubLinks};
use crate::parse;
use crate::store::{CLAIM_LEASE, Failures, Moved, PollRecord, PolledDocument, Store, StoreError};

mod hosts;
mod pacing;
mod parsing;

pub use hosts::{HostGate, Pass, host_of};
pub use parsing::{Crashed, ParseThreads};

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
    /// Whether intervals follow each feed's publishing rate.
    pub adaptive: bool,
    pub min_interval: Duration,
    pub max_interval: Duration,
    /// Cap on a 429/503 `Retry-After`.
    pub max_retry_after: Duration,
    /// Polls that must see a permanent redirect before it is adopted…
    pub redirect_confirmations: u32,
    /// …over at least this long.
    pub redirect_confirm_period: Duration,
    /// Requests to one host at once.
    pub host_concurrency: usize,
    /// Least time between two request starts to one host.
    pub host_gap: Duration,
}

impl From<&FetchConfig> for Policy {
    fn from(config: &FetchConfig) -> Self {
        Self {
            jitter: config.jitter.0,
            max_backoff: config.max_backoff.0,
            adaptive: config.adaptive,
            min_interval: config.min_interval.0,
            max_interval: config.max_interval.0,
            max_retry_after: config.max_retry_after.0,
            redirect_confirmations: config.redirect_confirmations.0.min(u64::from(u32::MAX)) as u32,
            redirect_confirm_period: config.redirect_confirm_period.0,
            host_concurrency: config.host_concurrency.get(),
            host_gap: config.host_gap.0,
        }
    }
}

impl Default for Policy {
    /// The configuration's defaults.
    fn default() -> Self {
        Self::from(&FetchConfig::default())
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
    /// 200 with the same body as last time: nothing parsed, nothing written.
    Unchanged { status: u16 },
    /// A feed document was read and stored.
    Stored {
        status: u16,
        new: usize,
        updated: usize,
    },
    /// 429/503 with `Retry-After`: waiting as asked; not a failure.
    Throttled { status: u16, wait: Duration },
    /// 410: the feed is retired (kept, no longer polled).
    Gone,
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
    /// The threads that parse fetched documents (one per core, at a lower
    /// priority than the writer).
    pub parsing: ParseThreads,
}

/// How a poll's record (outcome, validators, next poll) reaches the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    /// The poll ends once its record is committed: the daemon's scheduler
    /// reads feeds' state back to pick the next due ones.
    Committed,
    /// The record is queued for the writer and the poll ends at once (a poll
    /// that stored a document still waits for its entries). For a one-off
    /// pass over every feed, which reads no feed's state back and flushes
    /// the queue at its end; a 304 then waits for no thread but its own.
    Queued,
}

impl<F: FetchFeed> Poller<F> {
    /// Polls one feed and records the result. Never fails: every error ends up
    /// recorded on the feed (or, if even that fails, logged).
    pub async fn poll(&self, feed: FeedToPoll) -> PollReport {
        self.poll_inner(feed, None, Recording::Committed).await
    }

    /// [`Poller::poll`] for a feed let through the host gate: its `pass` is
    /// given back as soon as the fetch is done, once one of the `stage`
    /// permits (polls being parsed and stored) is taken. The next fetch to the
    /// host need not wait for this one's commit, and fetching still stops
    /// when parsing and storing fall behind.
    pub async fn poll_through(
        &self,
        feed: FeedToPoll,
        pass: Pass,
        stage: &Arc<Semaphore>,
        recording: Recording,
    ) -> PollReport {
        self.poll_inner(feed, Some((pass, stage)), recording).await
    }

    #[tracing::instrument(name = "poll", skip_all, fields(feed = %feed.url))]
    async fn poll_inner(
        &self,
        feed: FeedToPoll,
        gate: Option<(Pass, &Arc<Semaphore>)>,
        recording: Recording,
    ) -> PollReport {
        let started = Instant::now();
        let fetched = self
            .fetcher
            .fetch_feed(
                &feed.url,
                &feed.fetch_url,
                &feed.validators,
                feed.body_hash.as_deref(),
            )
            .await;
        let fetch_took = started.elapsed();
        let fetch_ms = fetch_took.as_millis().min(u64::MAX as u128) as u64;
        let took_ms = Some(fetch_ms);
        let _storing = match gate {
            Some((pass, stage)) => {
                let permit = stage.clone().acquire_owned().await.ok();
                drop(pass);
                permit
            }
            None => None,
        };
        let now = self.clock.now();
        let policy = &self.policy;
        let failure_at =
            now + delay(policy.after_failure(feed.interval, feed.failures + 1, &mut rand::rng()));
        let failed = |status: Option<u16>, error: String| {
            (
                Outcome::Failed {
                    status,
                    error: error.clone(),
                },
                PollRecord {
                    state: FeedState::Failing,
                    status,
                    error: Some(error),
                    failures: Failures::Increment,
                    next_poll: failure_at,
                    interval: None,
                    body_hash: None,
                    validators: None,
                    skip: None,
                    moved: Moved::Keep,
                    took_ms,
                },
            )
        };
        // The interval in force when there is no new document to learn from,
        // and the next poll after one that brought nothing new.
        let current = feed.current_interval.unwrap_or(feed.interval);
        let next_unchanged = |cache: &CacheHints| {
            let wait = policy.success_delay(current, feed.interval, cache, now, &mut rand::rng());
            safety_net(policy, &feed, now, policy.next_time(now, wait, feed.skip))
        };
        // A 200 with the body stored last time: only the schedule and the
        // validators move.
        let same_body = |response: Response, moved: Moved| {
            unchanged(
                Outcome::Unchanged {
                    status: response.status,
                },
                response.status,
                next_unchanged(&response.cache),
                Some(response.validators),
                moved,
                took_ms,
            )
        };

        // Set once a stored document's entries and fetch state are saved
        // (together, in one savepoint).
        let mut recorded = false;
        // WebSub discovery: the Link headers, then the document's links.
        let mut header_links = None;
        let mut document_links = WebSubLinks::default();
        let result: Result<(Outcome, PollRecord), StoreError> = match fetched {
            Ok(fetched) => {
                let response = fetched.response();
                header_links = Some(crate::websub::links_from_headers(
                    &response.links,
                    url::Url::parse(&response.final_url).ok().as_ref(),
                ));
                let moved =
                    policy.track_move(feed.moved.as_ref(), &fetched.response().redirects, now);
                if let Moved::Adopt { url } = &moved {
                    tracing::info!(feed = %feed.url, from = %feed.fetch_url, to = %url, "feed moved permanently: adopting its new address");
                }
                match fetched {
                    Fetched::NotModified(response) => Ok(unchanged(
                        Outcome::NotModified,
                        304,
                        next_unchanged(&response.cache),
                        None,
                        moved,
                        took_ms,
                    )),
                    // The fetcher compared the body with the stored one's hash.
                    Fetched::Unchanged(response) => Ok(same_body(response, moved)),
                    Fetched::Body(mut response) => {
                        let hash = response
                            .body_hash
                            .take()
                            .unwrap_or_else(|| body_hash(&response.body));
                        if feed.body_hash.as_deref() == Some(hash.as_str()) {
                            Ok(same_body(response, moved))
                        } else {
                            match self
                                .store_document(
                                    &feed,
                                    response,
                                    hash,
                                    moved,
                                    now,
                                    Via::Poll { took_ms: fetch_ms },
                                )
                                .await
                            {
                                Ok(Ok((outcome, record, links))) => {
                                    recorded = true;
                                    document_links = links;
                                    Ok((outcome, record))
                                }
                                Ok(Err((status, error))) => Ok(failed(status, error)),
                                Err(e) => Err(e),
                            }
                        }
                    }
                }
            }
            Err(FetchError::Status { status: 410, .. }) => Ok((
                Outcome::Gone,
                PollRecord {
                    state: FeedState::Gone,
                    status: Some(410),
                    error: Some("HTTP 410 Gone: the feed is retired and no longer polled".into()),
                    failures: Failures::Keep,
                    next_poll: now,
                    interval: None,
                    body_hash: None,
                    validators: None,
                    skip: None,
                    moved: Moved::Keep,
                    took_ms,
                },
            )),
            Err(FetchError::Status {
                status: status @ (429 | 503),
                retry_after: Some(retry_after),
            }) => {
                let wait = policy.retry_after(&retry_after, now);
                Ok((
                    Outcome::Throttled { status, wait },
                    PollRecord {
                        state: FeedState::Throttled,
                        status: Some(status),
                        error: Some(format!(
                            "HTTP {status}: the server asked to wait {}s",
                            wait.as_secs()
                        )),
                        failures: Failures::Keep,
                        next_poll: policy.next_time(now, wait, feed.skip),
                        interval: None,
                        body_hash: None,
                        validators: None,
                        skip: None,
                        moved: Moved::Keep,
                        took_ms,
                    },
                ))
            }
            Err(e) => Ok(failed(e.status(), e.to_string())),
        };

        let (outcome, record) = match result {
            Ok(done) => done,
            Err(e) => failed(None, format!("storing failed: {e}")),
        };
        let (id, next_poll) = (feed.id, record.next_poll);
        let stored = match recording {
            _ if recorded => Ok(()),
            Recording::Queued => self.store.queue_poll_record(id, &feed.url, now, record),
            Recording::Committed => {
                self.store
                    .call(move |s| s.record_poll(id, now, &record))
                    .await
            }
        };
        if let Err(e) = stored {
            tracing::error!(feed = %feed.url, error = %e, "cannot record a poll's outcome");
        }
        if let Some(headers) = header_links {
            self.after_websub_poll(&feed, &headers, &document_links, &outcome, now)
                .await;
        }
        log_poll(&feed.url, &outcome, started.elapsed(), next_poll);
        crate::telemetry::record_poll(&outcome, fetch_took);
        PollReport {
            feed_id: id,
            url: feed.url,
            outcome,
            next_poll,
        }
    }

    /// Parses a changed body and saves its entries and the poll's record
    /// atomically. The inner error is a parse failure (status, message),
    /// recorded like any failure.
    async fn store_document(
        &self,
        feed: &FeedToPoll,
        response: Response,
        hash: String,
        moved: Moved,
        now: DateTime<Utc>,
        via: Via,
    ) -> Result<Result<(Outcome, PollRecord, WebSubLinks), (Option<u16>, String)>, StoreError> {
        let url = feed.url.clone();
        let status = response.status;
        let cache = response.cache.clone();
        let policy = Policy {
            adaptive: self.policy.adaptive && !feed.fixed_interval,
            ..self.policy
        };
        let (configured, previous) = (feed.interval, feed.current_interval);
        let filters = self.filters.clone();
        // Parse, learn the publishing rate from the whole document, filter,
        // then key, hash and fingerprint each entry: all CPU work, on one
        // parse thread (see `parsing`), so the writer only writes.
        let prepared = self
            .parsing
            .run(move || {
                let content_type = response.content_type.as_deref();
                let doc = match parse::parse(&response.body, content_type, &url) {
                    Ok(doc) => doc,
                    // A web page: name the feeds it offers (the configured
                    // URL is never rewritten for the user).
                    Err(e)
                        if matches!(e, parse::ParseError::HtmlPage)
                            || crate::discover::is_web_page(&response.body, content_type) =>
                    {
                        let page = match response.final_url.as_str() {
                            "" => url.as_str(),
                            final_url => final_url,
                        };
                        return Err(crate::discover::web_page_error(
                            &response.body,
                            content_type,
                            page,
                        ));
                    }
                    Err(e) => return Err(e.to_string()),
                };
                // A push may carry only its new entries: the publishing rate
                // is learned from polls alone.
                let interval = match via {
                    Via::Poll { .. } => policy.adaptive_interval(
                        configured,
                        previous,
                        &doc.entries,
                        &doc.hints,
                        now,
                    ),
                    Via::Push => previous.unwrap_or(configured),
                };
                let links = doc.websub.clone();
                let skip = doc.hints.skip;
                // Filters drop entries before they are stored (the interval above
                // read the whole document's publishing rate).
                let doc = filters.apply(&url, doc, now);
                if !doc.warnings.is_empty() {
                    crate::telemetry::record_recovered_parse();
                    tracing::warn!(feed = url, warnings = %doc.warnings.join("; "), "poll: read after recovery");
                }
                let polled = PolledDocument {
                    status,
                    meta: doc.meta,
                    validators: response.validators,
                    entries: identity::identify(doc.entries),
                    parse_warnings: doc.warnings,
                };
                Ok::<_, String>((polled, interval, skip, links))
            })
            .await;
        let (polled, interval, skip, links) = match prepared {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => return Ok(Err((Some(status), e))),
            Err(panic) => {
                // One line, no backtrace (the parse threads' panics are not
                // printed by the hook): a bug of ours, recorded on the feed.
                crate::telemetry::record_parse_panic();
                tracing::error!(feed = %feed.url, panic = %panic, "poll: the parser panicked");
                return Ok(Err((Some(status), format!("parser crashed: {panic}"))));
            }
        };
        let wait = policy.success_delay(interval, feed.interval, &cache, now, &mut rand::rng());
        let next_poll = safety_net(&policy, feed, now, policy.next_time(now, wait, skip));
        let record = match via {
            Via::Poll { took_ms } => PollRecord {
                state: FeedState::Ok,
                status: Some(status),
                error: None,
                failures: Failures::Reset,
                next_poll,
                interval: Some(interval),
                body_hash: Some(hash),
                validators: None,
                skip: Some(skip),
                moved,
                took_ms: Some(took_ms),
            },
            // What the schedule learned from polls stays; the body hash
            // stays the last polled one's.
            Via::Push => PollRecord {
                state: FeedState::Ok,
                status: Some(status),
                error: None,
                failures: Failures::Reset,
                next_poll,
                interval: None,
                body_hash: None,
                validators: None,
                skip: None,
                moved: Moved::Keep,
                took_ms: None,
            },
        };
        let (id, saved) = (feed.id, record.clone());
        let counts = self
            .store
            .call(move |s| s.save_document(id, now, polled, saved))
            .await?;
        Ok(Ok((
            Outcome::Stored {
                status,
                new: counts.new,
                updated: counts.updated,
            },
            record,
            links,
        )))
    }

    /// A document a WebSub hub pushed for feed `feed_id` (signature already
    /// checked): parsed, filtered, identified and stored exactly as a polled
    /// body is. A push the parser cannot read is not recorded on the feed
    /// (its polls are fine); it comes back as `Failed`.
    pub async fn ingest_push(
        &self,
        feed_id: FeedId,
        body: bytes::Bytes,
        content_type: Option<String>,
    ) -> Result<Outcome, StoreError> {
        let now = self.clock.now();
        let Some(feed) = self
            .store
            .call(move |s| s.feed_for_push(feed_id, now))
            .await?
        else {
            return Ok(Outcome::Gone);
        };
        let hash = body_hash(&body);
        let response = Response {
            status: 200,
            body,
            content_type,
            // Kept: a push is no answer to our conditional GET.
            validators: feed.validators.clone(),
            final_url: feed.fetch_url.clone(),
            ..Default::default()
        };
        let outcome = match self
            .store_document(&feed, response, hash, Moved::Keep, now, Via::Push)
            .await?
        {
            Ok((outcome, _, _)) => outcome,
            Err((status, error)) => Outcome::Failed { status, error },
        };
        if matches!(outcome, Outcome::Stored { .. }) {
            self.store
                .call(move |s| s.websub_pushed(feed_id, now))
                .await?;
        }
        Ok(outcome)
    }

    /// After a poll: records the hub and topic found (if any), and for a
    /// pushed feed, whether this safety-net poll found what the hub missed.
    async fn after_websub_poll(
        &self,
        feed: &FeedToPoll,
        headers: &WebSubLinks,
        document: &WebSubLinks,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) {
        let id = feed.id;
        if let Some((hub, topic)) = crate::websub::discover(headers, document, &feed.url) {
            let found = self
                .store
                .call(move |s| s.record_websub_discovery(id, &hub, &topic, now))
                .await;
            match found {
                Ok(true) => tracing::info!(feed = %feed.url, "websub: the feed advertises a hub"),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(feed = %feed.url, error = %e, "websub: cannot record a hub")
                }
            }
        }
        if feed.pushed {
            let new = match outcome {
                Outcome::Stored { new, .. } => *new,
                _ => 0,
            };
            let retry = now + delay(self.policy.max_interval);
            match self
                .store
                .call(move |s| s.websub_safety_poll(id, new, retry))
                .await
            {
                Ok(true) => {
                    tracing::warn!(feed = %feed.url, new, "websub: the hub did not push entries a poll found; polling normally again")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(feed = %feed.url, error = %e, "websub: cannot record a safety poll")
                }
            }
        }
    }
}

/// Where a document to store came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// A poll, whose fetch took this long (ms), for the poll history.
    Poll { took_ms: u64 },
    /// A WebSub hub's push.
    Push,
}

/// For a feed a hub pushes, polls are only a safety net: no sooner than
/// `max_interval` from now.
fn safety_net(
    policy: &Policy,
    feed: &FeedToPoll,
    now: DateTime<Utc>,
    next: DateTime<Utc>,
) -> DateTime<Utc> {
    if feed.pushed {
        next.max(now + delay(policy.max_interval))
    } else {
        next
    }
}

/// Where the WebSub callback hands a signed push (a `Poller` of any fetcher).
pub trait PushSink: Send + Sync + std::fmt::Debug {
    fn push(
        &self,
        feed_id: FeedId,
        body: bytes::Bytes,
        content_type: Option<String>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome, StoreError>> + Send + '_>>;
}

impl<F: FetchFeed> PushSink for Poller<F> {
    fn push(
        &self,
        feed_id: FeedId,
        body: bytes::Bytes,
        content_type: Option<String>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome, StoreError>> + Send + '_>>
    {
        Box::pin(self.ingest_push(feed_id, body, content_type))
    }
}

/// The record of a poll that found nothing new (304 or the same body).
fn unchanged(
    outcome: Outcome,
    status: u16,
    next_poll: DateTime<Utc>,
    validators: Option<Validators>,
    moved: Moved,
    took_ms: Option<u64>,
) -> (Outcome, PollRecord) {
    (
        outcome,
        PollRecord {
            state: FeedState::Ok,
            status: Some(status),
            error: None,
            failures: Failures::Reset,
            next_poll,
            interval: None,
            body_hash: None,
            validators,
            skip: None,
            moved,
            took_ms,
        },
    )
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
        Outcome::Unchanged { status } => {
            tracing::info!(feed = url, status, new = 0, updated = 0, ms, next = %next, "poll: unchanged body")
        }
        Outcome::Stored {
            status,
            new,
            updated,
        } => tracing::info!(feed = url, status, new, updated, ms, next = %next, "poll: stored"),
        Outcome::Throttled { status, wait } => {
            tracing::warn!(feed = url, status, wait_s = wait.as_secs(), ms, next = %next, "poll: throttled (Retry-After)")
        }
        Outcome::Gone => {
            tracing::warn!(
                feed = url,
                status = 410,
                ms,
                "poll: gone; the feed is retired and no longer polled"
            )
        }
        Outcome::Failed { status, error } => {
            tracing::warn!(feed = url, status = status.map(i64::from).unwrap_or(-1), error = %error, ms, next = %next, "poll: failed")
        }
    }
}

/// Feeds waiting for their host or a fetch slot, at most.
const MAX_QUEUED: usize = 10_000;

/// Polls feeds as they fall due until `shutdown` turns true; then waits for
/// polls in flight to finish writing and returns. At most `concurrency`
/// fetches run at once, and each host gets the politeness the policy sets.
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
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let stage = Arc::new(Semaphore::new(stage_size(concurrency)));
    let gate = Arc::new(HostGate::new(
        poller.policy.host_concurrency,
        poller.policy.host_gap,
    ));
    let mut busy: HashSet<FeedId> = HashSet::new();
    let mut tasks: JoinSet<FeedId> = JoinSet::new();
    let mut task_feed: HashMap<tokio::task::Id, FeedId> = HashMap::new();
    // Beside other daemons, take only what can start soon (the rest is
    // theirs to take), and keep the claims of what waits.
    let shared = poller.store.is_shared();
    poller
        .store
        .set_politeness(poller.policy.host_concurrency, poller.policy.host_gap);
    let queue_cap = if shared {
        (concurrency.max(1) * 2).min(MAX_QUEUED)
    } else {
        MAX_QUEUED
    };
    let renewal = CLAIM_LEASE / 5;
    let mut next_renewal = Instant::now() + renewal;
    loop {
        if *shutdown.borrow() {
            break;
        }
        hooks.heartbeat.store(
            poller.clock.now().timestamp(),
            std::sync::atomic::Ordering::Relaxed,
        );
        if shared && Instant::now() >= next_renewal {
            next_renewal = Instant::now() + renewal;
            let held: Vec<FeedId> = busy.iter().copied().collect();
            let now = poller.clock.now();
            if let Err(e) = poller.store.call(move |s| s.renew_claims(&held, now)).await {
                tracing::warn!(error = %e, "cannot renew this daemon's claims on the feeds it waits to poll");
            }
        }
        let free = queue_cap.saturating_sub(tasks.len());
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
                    Ok((s.next_due(&busy_after, now)?, due))
                })
                .await;
            match due {
                Ok((next, due)) => {
                    wake_at = next;
                    for feed in due {
                        busy.insert(feed.id);
                        let id = feed.id;
                        let (p, gate, slots) = (poller.clone(), gate.clone(), slots.clone());
                        let stage = stage.clone();
                        let mut stop = shutdown.clone();
                        let handle = tasks.spawn(async move {
                            // Waiting for the host is abandoned on shutdown;
                            // a fetch that has started runs to the end.
                            let pass = tokio::select! {
                                pass = gate.enter(host_of(&feed.fetch_url), &slots) => pass,
                                _ = stop.wait_for(|s| *s) => None,
                            };
                            let Some(pass) = pass else { return id };
                            // A reload may have removed the feed meanwhile.
                            let still = p.store.call(move |s| s.is_polled(id)).await;
                            if still.unwrap_or(true) {
                                p.poll_through(feed, pass, &stage, Recording::Committed)
                                    .await;
                            }
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
            () = tokio::time::sleep_until(next_renewal), if shared => {}
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

/// Polls past their fetch that may be parsing and storing at once: enough
/// that the fetch slots turn over while the writer commits, few enough that
/// fetched bodies cannot pile up when it falls behind.
fn stage_size(concurrency: usize) -> usize {
    concurrency.max(1) * 2
}

/// Polls of a one-off pass started (waiting for their host or a slot) at
/// once: a few per fetch slot, so that a slot coming free always has a poll
/// ready, without thousands of tasks queued on the same semaphores (each
/// release woke another task: 8 % of a 2,000-feed re-poll).
fn one_off_window(concurrency: usize) -> usize {
    concurrency.max(1) * 4
}

/// The feeds in turns, each with its host: the first feed of every host, then
/// every host's second, and so on, each host's in their original order. With
/// a bounded window of polls in flight, a host with many feeds (waiting out
/// its own per-host limit and gap) then cannot fill the window and hold up
/// the rest.
fn by_host_in_turn(feeds: Vec<FeedToPoll>) -> Vec<(String, FeedToPoll)> {
    let mut hosts: HashMap<String, usize> = HashMap::new();
    let mut turns: Vec<(usize, usize, String, FeedToPoll)> = feeds
        .into_iter()
        .enumerate()
        .map(|(position, feed)| {
            let host = host_of(&feed.fetch_url);
            let seen = hosts.entry(host.clone()).or_default();
            *seen += 1;
            (*seen, position, host, feed)
        })
        .collect();
    turns.sort_unstable_by_key(|&(turn, position, _, _)| (turn, position));
    turns
        .into_iter()
        .map(|(_, _, host, feed)| (host, feed))
        .collect()
}

/// Polls every active feed once, `concurrency` at a time, polite to each host.
pub async fn poll_all<F: FetchFeed>(
    poller: Arc<Poller<F>>,
    concurrency: usize,
) -> Result<Vec<PollReport>, StoreError> {
    let (_keep, never) = watch::channel(false);
    poll_all_with(poller, concurrency, never, |_| {}, |_| {}).await
}

/// Resolves once `stop` turns true; never, if its sender is gone first.
async fn stopped(mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// [`poll_all`], telling `on_start` how many feeds there are and calling
/// `on_done` as each feed's poll finishes (for progress). Once `stop` turns
/// true no poll starts: those waiting for their host or a slot are dropped,
/// and fetches under way run to their end (within the transfer deadline)
/// and are recorded. Returns the reports of the polls that ran.
pub async fn poll_all_with<F: FetchFeed>(
    poller: Arc<Poller<F>>,
    concurrency: usize,
    stop: watch::Receiver<bool>,
    on_start: impl FnOnce(usize),
    on_done: impl Fn(&PollReport),
) -> Result<Vec<PollReport>, StoreError> {
    use futures_util::stream::{self, StreamExt};
    let feeds = by_host_in_turn(poller.store.call(|s| s.active_feeds()).await?);
    on_start(feeds.len());
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let stage = Arc::new(Semaphore::new(stage_size(concurrency)));
    let gate = Arc::new(HostGate::new(
        poller.policy.host_concurrency,
        poller.policy.host_gap,
    ));
    let reports = stream::iter(feeds)
        .take_until(stopped(stop.clone()))
        .map(|(host, feed)| {
            let (p, gate, slots) = (poller.clone(), gate.clone(), slots.clone());
            let stage = stage.clone();
            let (feed_id, url) = (feed.id, feed.url.clone());
            let now = poller.clock.now();
            let stop = stop.clone();
            // Each poll is a task of its own, so polls run on every worker
            // thread rather than all inside this one future.
            let task = tokio::spawn(async move {
                let pass = tokio::select! {
                    pass = gate.enter(host, &slots) => pass,
                    () = stopped(stop) => return None,
                };
                Some(match pass {
                    Some(pass) => p.poll_through(feed, pass, &stage, Recording::Queued).await,
                    None => p.poll(feed).await,
                })
            });
            async move {
                task.await.unwrap_or_else(|e| {
                    tracing::error!(feed = %url, error = %e, "a poll task died");
                    Some(PollReport {
                        feed_id,
                        url,
                        outcome: Outcome::Failed {
                            status: None,
                            error: format!("the poll task died: {e}"),
                        },
                        next_poll: now,
                    })
                })
            }
        })
        .buffer_unordered(one_off_window(concurrency))
        .filter_map(std::future::ready)
        .inspect(|r| on_done(r))
        .collect()
        .await;
    // The polls' records were queued without waiting (`Recording::Queued`).
    poller.store.flush().await?;
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
                Outcome::NotModified | Outcome::Unchanged { .. } => s.not_modified += 1,
                Outcome::Stored { new, updated, .. } => {
                    s.ok += 1;
                    s.new += new;
                    s.updated += updated;
                }
                // Throttled and gone feeds did not update either.
                Outcome::Failed { .. } | Outcome::Throttled { .. } | Outcome::Gone => s.failed += 1,
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
            ..Policy::default()
        }
    }

    #[test]
    fn a_one_off_pass_takes_hosts_in_turn_and_keeps_each_hosts_order() {
        let feed = |id: i64, url: &str| FeedToPoll {
            id,
            url: url.to_string(),
            validators: Validators::default(),
            interval: Duration::from_secs(600),
            failures: 0,
            fetch_url: url.to_string(),
            body_hash: None,
            current_interval: None,
            moved: None,
            skip: crate::model::Skip::default(),
            fixed_interval: false,
            pushed: false,
        };
        let feeds = vec![
            feed(1, "http://big.example/1"),
            feed(2, "http://big.example/2"),
            feed(3, "http://big.example/3"),
            feed(4, "http://small.example/a"),
            feed(5, "http://BIG.example/4"),
            feed(6, "http://other.example/x"),
            feed(7, "http://small.example/b"),
        ];
        let order: Vec<(String, i64)> = by_host_in_turn(feeds)
            .into_iter()
            .map(|(host, f)| (host, f.id))
            .collect();
        let turn = |host: &str, id| (host.to_string(), id);
        assert_eq!(
            order,
            vec![
                turn("big.example", 1),
                turn("small.example", 4),
                turn("other.example", 6),
                turn("big.example", 2),
                turn("small.example", 7),
                turn("big.example", 3),
                turn("big.example", 5),
            ]
        );
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
