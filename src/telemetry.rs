//! How the service is doing: Prometheus metrics for /metrics and the health
//! check behind /healthz.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::scheduler::{Clock, Outcome};
use crate::store::{OpsSnapshot, Store};

const POLLS: &str = "newsriver_polls_total";
const FETCH_SECONDS: &str = "newsriver_fetch_duration_seconds";
const ENTRIES_STORED: &str = "newsriver_entries_stored_total";
const FEEDS: &str = "newsriver_feeds";
const ENTRIES: &str = "newsriver_entries";
const TOMBSTONES: &str = "newsriver_tombstones";
const LAG: &str = "newsriver_scheduler_lag_seconds";
const PRUNED: &str = "newsriver_entries_pruned_total";
const PARSE_RECOVERED: &str = "newsriver_parse_recovered_total";
const PARSE_PANICS: &str = "newsriver_parse_panics_total";
const WEBSUB_PUSHES: &str = "newsriver_websub_pushes_total";
const WEBSUB_PINGS: &str = "newsriver_websub_publish_pings_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide metrics recorder (once) and returns its handle;
/// `None` if some other recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(FETCH_SECONDS.to_string()),
                    &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
                )
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            metrics::describe_counter!(
                POLLS,
                "Feed polls by outcome (stored, not_modified, failed)."
            );
            metrics::describe_histogram!(
                FETCH_SECONDS,
                metrics::Unit::Seconds,
                "Time to fetch a feed over HTTP, body included."
            );
            metrics::describe_counter!(
                ENTRIES_STORED,
                "Entries stored by polls (kind = new or updated)."
            );
            metrics::describe_counter!(PRUNED, "Entries removed by retention.");
            metrics::describe_counter!(
                PARSE_RECOVERED,
                "Documents read only after recovering from what was wrong with them (see the feed's warnings)."
            );
            metrics::describe_counter!(
                PARSE_PANICS,
                "Parses that panicked (a bug; recorded as the feed's failure)."
            );
            metrics::describe_counter!(
                WEBSUB_PUSHES,
                "WebSub pushes received (result = stored, unchanged, bad_signature, missing_signature, unreadable, too_large)."
            );
            metrics::describe_counter!(
                WEBSUB_PINGS,
                "Publish notifications sent to the configured hub (result = ok, failed)."
            );
            Some(handle)
        })
        .clone()
}

/// Counts one poll (called by the scheduler).
pub fn record_poll(outcome: &Outcome, fetch_took: Duration) {
    let label = match outcome {
        Outcome::Stored { .. } => "stored",
        Outcome::NotModified => "not_modified",
        Outcome::Unchanged { .. } => "unchanged",
        Outcome::Throttled { .. } => "throttled",
        Outcome::Gone => "gone",
        Outcome::Failed { .. } => "failed",
    };
    metrics::counter!(POLLS, "outcome" => label).increment(1);
    metrics::histogram!(FETCH_SECONDS).record(fetch_took.as_secs_f64());
    if let Outcome::Stored { new, updated, .. } = outcome {
        metrics::counter!(ENTRIES_STORED, "kind" => "new").increment(*new as u64);
        metrics::counter!(ENTRIES_STORED, "kind" => "updated").increment(*updated as u64);
    }
}

/// Counts a document read only after recovery.
pub fn record_recovered_parse() {
    metrics::counter!(PARSE_RECOVERED).increment(1);
}

/// Counts a parse that panicked.
pub fn record_parse_panic() {
    metrics::counter!(PARSE_PANICS).increment(1);
}

/// Counts one WebSub push by what became of it.
pub fn record_websub_push(result: &'static str) {
    metrics::counter!(WEBSUB_PUSHES, "result" => result).increment(1);
}

/// Counts one publish notification to our hub.
pub fn record_websub_ping(ok: bool) {
    metrics::counter!(WEBSUB_PINGS, "result" => if ok { "ok" } else { "failed" }).increment(1);
}

/// Counts entries removed by retention.
pub fn record_pruned(entries: usize) {
    metrics::counter!(PRUNED).increment(entries as u64);
}

/// The Prometheus text for a scrape: the counters and histogram kept in
/// memory, then gauges read from this daemon's database just now. The gauges
/// are written here rather than kept in the process-wide recorder, so two
/// daemons in one process (tests) never see each other's figures.
pub fn render(handle: &PrometheusHandle, snapshot: &OpsSnapshot, lag: Duration) -> String {
    use std::fmt::Write;
    handle.run_upkeep();
    let mut text = handle.render();
    let mut gauge = |name: &str, help: &str, values: &[(Option<&str>, f64)]| {
        let _ = writeln!(text, "# HELP {name} {help}");
        let _ = writeln!(text, "# TYPE {name} gauge");
        for (state, value) in values {
            match state {
                Some(state) => {
                    let _ = writeln!(text, "{name}{{state=\"{state}\"}} {value}");
                }
                None => {
                    let _ = writeln!(text, "{name} {value}");
                }
            }
        }
    };
    let by_state: Vec<(Option<&str>, f64)> = ["new", "ok", "failing"]
        .into_iter()
        .map(|state| {
            let n = snapshot
                .feeds_by_state
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            (Some(state), n as f64)
        })
        .chain([(Some("removed"), snapshot.inactive_feeds as f64)])
        .collect();
    gauge(
        FEEDS,
        "Feeds by state (new, ok, failing; removed = no longer configured).",
        &by_state,
    );
    gauge(
        ENTRIES,
        "Entries in the database.",
        &[(None, snapshot.entries as f64)],
    );
    gauge(
        TOMBSTONES,
        "Tombstones of entries pruned by retention.",
        &[(None, snapshot.tombstones as f64)],
    );
    gauge(
        LAG,
        "How long the most overdue feed has been waiting for its poll (0 when none is).",
        &[(None, lag.as_secs_f64())],
    );
    text
}

/// The health check: is the database writable, is the scheduler turning?
#[derive(Debug, Clone)]
pub struct Health {
    pub store: Store,
    pub clock: Clock,
    /// Unix time of the scheduler loop's last turn (its heartbeat).
    pub heartbeat: Arc<AtomicI64>,
    /// The scheduler counts as stalled when a feed is overdue by more than
    /// this and the loop has not turned for as long.
    pub stall_after: Duration,
}

/// The result of a health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    pub database: Result<(), String>,
    pub scheduler: Result<(), String>,
}

impl HealthReport {
    pub fn healthy(&self) -> bool {
        self.database.is_ok() && self.scheduler.is_ok()
    }

    /// Plain text, one line per check.
    pub fn text(&self) -> String {
        let line = |name: &str, r: &Result<(), String>| match r {
            Ok(()) => format!("{name}: ok\n"),
            Err(e) => format!("{name}: {e}\n"),
        };
        format!(
            "{}{}{}",
            if self.healthy() {
                "ok\n"
            } else {
                "unhealthy\n"
            },
            line("database", &self.database),
            line("scheduler", &self.scheduler)
        )
    }
}

impl Health {
    /// Lag of the most overdue feed, from the snapshot.
    pub fn lag(&self, snapshot: &OpsSnapshot) -> Duration {
        snapshot
            .oldest_overdue
            .and_then(|due| (self.clock.now() - due).to_std().ok())
            .unwrap_or_default()
    }

    pub async fn check(&self) -> HealthReport {
        let now = self.clock.now();
        let database = self
            .store
            .call(move |s| s.check_writable(now))
            .await
            .map_err(|e| format!("not writable: {e}"));
        let snapshot = self.store.call(move |s| s.ops_snapshot(now)).await;
        let scheduler = match snapshot {
            Err(e) => Err(format!("cannot read the schedule: {e}")),
            Ok(snapshot) => {
                let lag = self.lag(&snapshot);
                let idle = now.timestamp() - self.heartbeat.load(Ordering::Relaxed);
                let limit = self.stall_after.as_secs() as i64;
                if lag.as_secs() as i64 > limit && idle > limit {
                    Err(format!(
                        "stalled: a feed is {}s overdue and the scheduler last turned {idle}s ago",
                        lag.as_secs()
                    ))
                } else {
                    Ok(())
                }
            }
        };
        HealthReport {
            database,
            scheduler,
        }
    }
}
