//! The scheduler's database work for many feeds on PostgreSQL, on a simulated
//! clock and without a network: `DAEMONS` store handles (each its own daemon
//! name and pool) step simulated time together; at each step every daemon
//! records the polls whose simulated fetch has ended (a 304:
//! `record_not_modified`, next poll one interval on, ±10 %), renews its claims
//! every 12 simulated seconds, claims due feeds (`due_feeds`, up to twice its
//! fetch concurrency in flight, as the scheduler's shared queue) and asks
//! `next_due` (every `NEXT_DUE_EVERY` steps: the scheduler asks after every
//! claim; see the report). Each claimed feed starts when its host allows it
//! locally (the scheduler's own host gate: starts `HOST_GAP_MS` apart in one
//! daemon) and takes a random simulated fetch time.
//!
//! The table grows through `SIZES` (the first `SYNC_FEEDS` through
//! `sync_feeds`, timed; the rest bulk-loaded with `INSERT ... SELECT
//! generate_series`, hosts Zipf-distributed); at each size the simulation
//! runs `WARM_MINUTES` (the last size: `SIM_MINUTES`) of simulated time.
//! Measured at each size: claims needed and made per simulated second, the
//! claim call's latency (p50, p99, including the wait for the claim lock),
//! the claim phase's wall time (claims are serialised across daemons, so
//! claims ÷ that time is what the claim query sustains), `next_due` and
//! record latency, feeds more than a minute late, politeness (live claims per
//! host above `HOST_CONCURRENCY`, checked in the database after every claim
//! phase; starts on one host closer than `HOST_GAP_MS`, from every daemon's
//! starts) and EXPLAIN ANALYZE of the claim query and `next_due` (steady, and
//! with every feed due), written to `OUT/plans-SIZE.txt`. Database round
//! trips per poll are counted from the server's statement log over
//! `TRACE_STEPS` steps at the first size (`log_min_duration_statement = 0`
//! on the database; the server's log is `server.log` beside its data folder,
//! as `scripts/pg-test-server.sh` starts it).
//!
//!   DATABASE_URL=postgres://... cargo run --release --example claim_simulation
//!   (bench/claim_simulation.sh starts a throw-away server and runs this)

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, TimeZone, Utc};
use newsriver::Store;
use newsriver::model::FeedId;
use newsriver::store::FeedSpec;
use rand::Rng;

/// The simulated clock starts here (any fixed time: runs are comparable).
const T0: i64 = 1_900_000_000;

#[derive(Debug, Clone)]
struct Knobs {
    url: String,
    sizes: Vec<u64>,
    hosts: u64,
    zipf_s: f64,
    daemons: usize,
    concurrency: usize,
    step_ms: i64,
    sim_minutes: f64,
    warm_minutes: f64,
    intervals: Vec<i64>,
    host_concurrency: usize,
    host_gap_ms: i64,
    fetch_ms: (i64, i64),
    sync_feeds: u64,
    next_due_every: u64,
    trace_steps: u64,
    out: String,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not valid")),
        _ => Ok(default),
    }
}

fn list(name: &str, default: &str) -> anyhow::Result<Vec<i64>> {
    let v = std::env::var(name).unwrap_or_else(|_| default.to_string());
    v.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<i64>()
                .map_err(|_| anyhow::anyhow!("{name}: {s:?} is not a number"))
        })
        .collect()
}

impl Knobs {
    fn read() -> anyhow::Result<Self> {
        let url = std::env::var("DATABASE_URL").context("set DATABASE_URL")?;
        let feeds: u64 = env("FEEDS", 1_000_000)?;
        let mut sizes: Vec<u64> = list("SIZES", "10000,100000")?
            .into_iter()
            .map(|s| s as u64)
            .filter(|&s| s < feeds)
            .collect();
        sizes.push(feeds);
        let fetch = list("FETCH_MS", "100,1500")?;
        if fetch.len() != 2 || fetch[0] > fetch[1] || fetch[0] < 0 {
            bail!("FETCH_MS is MIN,MAX");
        }
        Ok(Self {
            url,
            sizes,
            hosts: env("HOSTS", 50_000)?,
            zipf_s: env("ZIPF_S", 0.5)?,
            daemons: env("DAEMONS", 4)?,
            concurrency: env("CONCURRENCY", 128)?,
            step_ms: env("STEP_MS", 500)?,
            sim_minutes: env("SIM_MINUTES", 20.0)?,
            warm_minutes: env("WARM_MINUTES", 5.0)?,
            intervals: list("INTERVALS", "3600")?,
            host_concurrency: env("HOST_CONCURRENCY", 2)?,
            host_gap_ms: env("HOST_GAP_MS", 1000)?,
            fetch_ms: (fetch[0], fetch[1]),
            sync_feeds: env("SYNC_FEEDS", 10_000)?,
            next_due_every: env("NEXT_DUE_EVERY", 20)?,
            trace_steps: env("TRACE_STEPS", 40)?,
            out: env("OUT", "target/claim_simulation".to_string())?,
        })
    }
}

/// The host rank (1 = biggest) of a uniform `u` in [0, 1): Zipf-like with
/// exponent `s` over `hosts` hosts (the continuous inverse CDF). The bulk
/// load computes the same in SQL ([`zipf_sql`]).
fn zipf(u: f64, hosts: u64, s: f64) -> u64 {
    let h = hosts as f64;
    let r = if (s - 1.0).abs() < 1e-9 {
        (u * h.ln()).exp()
    } else {
        (1.0 + u * (h.powf(1.0 - s) - 1.0)).powf(1.0 / (1.0 - s))
    };
    (r.floor() as u64).clamp(1, hosts)
}

fn zipf_sql(hosts: u64, s: f64) -> String {
    let rank = if (s - 1.0).abs() < 1e-9 {
        format!("exp(random() * ln({hosts}))")
    } else {
        format!(
            "power(1 + random() * (power({hosts}, {e}) - 1), {inv})",
            e = 1.0 - s,
            inv = 1.0 / (1.0 - s)
        )
    };
    format!("LEAST(GREATEST(floor({rank})::BIGINT, 1), {hosts})")
}

fn feed_url(host: u64, n: u64) -> String {
    format!("https://h{host}.example.com/feed/{n}")
}

/// The host number in a simulated feed's URL.
fn host_number(url: &str) -> u32 {
    url.strip_prefix("https://h")
        .and_then(|rest| rest.split('.').next())
        .and_then(|h| h.parse().ok())
        .unwrap_or(0)
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Milliseconds, sorted for percentiles.
#[derive(Debug, Default, Clone)]
struct Samples(Vec<f64>);

impl Samples {
    fn add(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1000.0);
    }
    fn extend(&mut self, other: &Samples) {
        self.0.extend_from_slice(&other.0);
    }
    fn pct(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * p).round() as usize]
    }
    fn mean(&self) -> f64 {
        self.0.iter().sum::<f64>() / self.0.len().max(1) as f64
    }
    fn show(&self) -> String {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, mean {:.2} ms (n={})",
            self.pct(0.5),
            self.pct(0.99),
            self.mean(),
            self.0.len()
        )
    }
}

/// A claimed feed whose simulated fetch has not been recorded yet.
#[derive(Debug, Clone)]
struct InFlight {
    id: FeedId,
    end_ms: i64,
    interval: Duration,
}

/// One simulated daemon: its store handle and what it holds.
#[derive(Debug)]
struct Daemon {
    store: Store,
    name: String,
    flying: Vec<InFlight>,
    /// The scheduler's own host gate: the last start on each host here.
    last_start: HashMap<u32, i64>,
    next_renew_ms: i64,
}

/// What the daemons measured over one phase.
#[derive(Debug, Default, Clone)]
struct Tally {
    claim: Samples,
    claim_calls: u64,
    empty_claims: u64,
    claimed: u64,
    record: Samples,
    recorded: u64,
    next_due: Samples,
    renew: Samples,
    /// (host, start ms) of every simulated fetch.
    starts: Vec<(u32, i64)>,
}

impl Tally {
    fn merge(&mut self, o: &Tally) {
        self.claim.extend(&o.claim);
        self.claim_calls += o.claim_calls;
        self.empty_claims += o.empty_claims;
        self.claimed += o.claimed;
        self.record.extend(&o.record);
        self.recorded += o.recorded;
        self.next_due.extend(&o.next_due);
        self.renew.extend(&o.renew);
        self.starts.extend_from_slice(&o.starts);
    }
}

/// What the leader measured over one phase.
#[derive(Debug, Default)]
struct Phase {
    steps: u64,
    claim_phase_wall: f64,
    record_phase_wall: f64,
    wall: f64,
    live_violations: u64,
    max_live_per_host: i64,
    distinct_claimers: i64,
    late_samples: Vec<i64>,
}

/// The admin connection: bulk loads, checks, plans.
struct Admin {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Admin {
    fn connect(url: &str) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = runtime.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, tokio_postgres::Error>(client)
        })?;
        Ok(Self { runtime, client })
    }
    fn batch(&self, sql: &str) -> anyhow::Result<()> {
        Ok(self.runtime.block_on(self.client.batch_execute(sql))?)
    }
    fn rows(&self, sql: &str) -> anyhow::Result<Vec<tokio_postgres::SimpleQueryRow>> {
        let messages = self.runtime.block_on(self.client.simple_query(sql))?;
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
                _ => None,
            })
            .collect())
    }
    fn value(&self, sql: &str) -> anyhow::Result<String> {
        let rows = self.rows(sql)?;
        Ok(rows
            .first()
            .and_then(|r| r.get(0))
            .unwrap_or_default()
            .to_string())
    }
    fn int(&self, sql: &str) -> anyhow::Result<i64> {
        let v = self.value(sql)?;
        if v.is_empty() {
            return Ok(0);
        }
        v.parse::<f64>()
            .map(|f| f as i64)
            .with_context(|| format!("{sql}: {v:?}"))
    }
}

fn main() -> anyhow::Result<()> {
    let k = Knobs::read()?;
    std::fs::create_dir_all(&k.out)?;
    println!(
        "claim simulation: sizes {:?}, {} hosts (Zipf s={}), {} daemons × concurrency {} \
         (queue {}), intervals {:?} s, host_concurrency {}, host_gap {} ms, fetch {}–{} ms, \
         step {} ms",
        k.sizes,
        k.hosts,
        k.zipf_s,
        k.daemons,
        k.concurrency,
        k.concurrency * 2,
        k.intervals,
        k.host_concurrency,
        k.host_gap_ms,
        k.fetch_ms.0,
        k.fetch_ms.1,
        k.step_ms
    );
    let open = |pool: usize| -> anyhow::Result<Store> {
        let store = Store::open_postgres(&k.url, Duration::from_secs(10), pool)?;
        store.set_politeness(
            k.host_concurrency,
            Duration::from_millis(k.host_gap_ms as u64),
        );
        Ok(store)
    };
    // The schema, by the store; then the admin connection.
    let first = open(2)?;
    let admin = Admin::connect(&k.url)?;
    let mut now_ms = T0 * 1000;

    // sync_feeds, timed, for the first SYNC_FEEDS feeds.
    let intervals = k.intervals.clone();
    let mut rng = rand::rng();
    let synced = k.sync_feeds.min(k.sizes[0]);
    let specs: Vec<FeedSpec> = (1..=synced)
        .map(|n| FeedSpec {
            url: feed_url(zipf(rng.random::<f64>(), k.hosts, k.zipf_s), n),
            title: None,
            interval: Duration::from_secs(intervals[(n as usize) % intervals.len()] as u64),
            tags: vec![],
            fixed_interval: false,
        })
        .collect();
    let started = Instant::now();
    first.sync_feeds(&specs, at(now_ms))?;
    let sync_s = started.elapsed().as_secs_f64();
    println!(
        "sync_feeds: {synced} new feeds in {sync_s:.2} s ({:.3} ms/feed; 1M feeds at that rate: {:.0} s)",
        sync_s * 1000.0 / synced.max(1) as f64,
        sync_s / synced.max(1) as f64 * 1e6
    );
    // New feeds are due at once; spread them over their interval, as a
    // river in its steady state.
    admin.batch(&format!(
        "UPDATE feeds SET next_poll_at = {t} + floor(random() * interval_secs)::BIGINT",
        t = now_ms / 1000
    ))?;

    let interval_array = format!(
        "ARRAY[{}]::BIGINT[]",
        intervals
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut loaded = synced;
    let mut daemons: Vec<Daemon> = Vec::new();
    let mut report = Vec::new();
    for (index, &size) in k.sizes.iter().enumerate() {
        // Grow the table to `size`.
        if size > loaded {
            let started = Instant::now();
            let chunk = 200_000;
            let mut from = loaded + 1;
            while from <= size {
                let to = (from + chunk - 1).min(size);
                admin.batch(&format!(
                    "INSERT INTO feeds (url, uid, interval_secs, next_poll_at, created_at)
                     SELECT 'https://h' || r.host || '.example.com/feed/' || n, 'sim-' || n,
                            iv.secs, {t} + floor(random() * iv.secs)::BIGINT, {t}
                     FROM generate_series({from}, {to}) n,
                     LATERAL (SELECT {rank} + n * 0 AS host) r,
                     LATERAL (SELECT ({interval_array})[1 + n % {len}] AS secs) iv",
                    t = now_ms / 1000,
                    rank = zipf_sql(k.hosts, k.zipf_s),
                    len = intervals.len()
                ))?;
                from = to + 1;
            }
            admin.batch("VACUUM ANALYZE feeds")?;
            println!(
                "loaded {} feeds by INSERT ... SELECT in {:.1} s",
                size - loaded,
                started.elapsed().as_secs_f64()
            );
            loaded = size;
        } else {
            admin.batch("VACUUM ANALYZE feeds")?;
        }
        let hosts_used = admin.int("SELECT COUNT(DISTINCT host) FROM feeds")?;
        let top =
            admin.rows("SELECT host, COUNT(*) FROM feeds GROUP BY host ORDER BY 2 DESC LIMIT 3")?;
        let top: Vec<String> = top
            .iter()
            .map(|r| format!("{} {}", r.get(0).unwrap_or(""), r.get(1).unwrap_or("")))
            .collect();
        let need = admin
            .value("SELECT SUM(1.0 / interval_secs) FROM feeds WHERE active = 1")?
            .parse::<f64>()
            .unwrap_or(0.0);
        println!(
            "\n== {size} feeds on {hosts_used} hosts (biggest: {}); the workload needs {need:.1} claims/s",
            top.join(", ")
        );

        if daemons.is_empty() {
            daemons = (0..k.daemons)
                .map(|_| {
                    let store = open(4)?;
                    let name = daemon_name(&store);
                    Ok(Daemon {
                        store,
                        name,
                        flying: Vec::new(),
                        last_start: HashMap::new(),
                        next_renew_ms: 0,
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            let names: HashSet<&String> = daemons.iter().map(|d| &d.name).collect();
            println!(
                "daemons: {} handles, {} distinct names ({})",
                daemons.len(),
                names.len(),
                daemons
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if names.len() != daemons.len() {
                bail!("two store handles share a daemon name");
            }
        }

        let minutes = if index + 1 == k.sizes.len() {
            k.sim_minutes
        } else {
            k.warm_minutes
        };
        let steps = (minutes * 60_000.0 / k.step_ms as f64).ceil() as u64;
        let (back, tally, phase) = simulate(&k, &admin, daemons, &mut now_ms, steps, true)?;
        daemons = back;
        let line = summarise(&k, size, need, &tally, &phase);
        println!("{line}");
        report.push(line);
        let plans = explain(&k, &admin, now_ms, size)?;
        println!("{plans}");
        report.push(plans);
        if index + 1 == k.sizes.len() && k.trace_steps > 0 {
            drain(&mut daemons, now_ms)?;
            let trace = trace_round_trips(&k, &admin, &open, &mut now_ms)?;
            println!("{trace}");
            report.push(trace);
        }
    }
    // A no-op sync_feeds at the final size (what a daemon's start and every
    // reload of an unchanged list cost).
    if std::env::var("SYNC_NOOP").map(|v| v != "0").unwrap_or(true) {
        let rows = admin.rows("SELECT url, interval_secs FROM feeds ORDER BY id")?;
        let specs: Vec<FeedSpec> = rows
            .iter()
            .map(|r| FeedSpec {
                url: r.get(0).unwrap_or_default().to_string(),
                title: None,
                interval: Duration::from_secs(
                    r.get(1).and_then(|s| s.parse().ok()).unwrap_or(3600),
                ),
                tags: vec![],
                fixed_interval: false,
            })
            .collect();
        drop(rows);
        let started = Instant::now();
        daemons[0].store.sync_feeds(&specs, at(now_ms))?;
        let line = format!(
            "sync_feeds of the unchanged list of {} feeds: {:.2} s",
            specs.len(),
            started.elapsed().as_secs_f64()
        );
        println!("{line}");
        report.push(line);
    }
    std::fs::write(format!("{}/report.txt", k.out), report.join("\n"))?;
    Ok(())
}

/// The daemon's name, from the store's Debug output (`daemon: "host:pid:rand"`).
fn daemon_name(store: &Store) -> String {
    let debug = format!("{store:?}");
    debug
        .split("daemon: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("?")
        .to_string()
}

/// Runs `steps` steps of simulated time with the daemons; returns them with
/// what they measured.
fn simulate(
    k: &Knobs,
    admin: &Admin,
    daemons: Vec<Daemon>,
    now_ms: &mut i64,
    steps: u64,
    check: bool,
) -> anyhow::Result<(Vec<Daemon>, Tally, Phase)> {
    let n = daemons.len();
    let start_ms = *now_ms;
    let barrier = Arc::new(Barrier::new(n + 1));
    let failed = Arc::new(Mutex::new(None::<String>));
    let mut handles = Vec::new();
    for mut d in daemons {
        let (k, barrier, failed) = (k.clone(), barrier.clone(), failed.clone());
        handles.push(std::thread::spawn(move || {
            let mut tally = Tally::default();
            let mut rng = rand::rng();
            for step in 0..steps {
                let now = start_ms + step as i64 * k.step_ms;
                let result = (|| -> anyhow::Result<()> {
                    // Records: every fetch that has ended by now.
                    let (done, flying): (Vec<_>, Vec<_>) =
                        d.flying.drain(..).partition(|f| f.end_ms <= now);
                    d.flying = flying;
                    for f in done {
                        let jitter = rng.random_range(-0.1..0.1);
                        let next = now + (f.interval.as_millis() as f64 * (1.0 + jitter)) as i64;
                        let t = Instant::now();
                        d.store.record_not_modified(f.id, at(now), at(next))?;
                        tally.record.add(t.elapsed());
                        tally.recorded += 1;
                    }
                    if now >= d.next_renew_ms {
                        d.next_renew_ms = now + 12_000;
                        let held: Vec<FeedId> = d.flying.iter().map(|f| f.id).collect();
                        let t = Instant::now();
                        d.store.renew_claims(&held, at(now))?;
                        tally.renew.add(t.elapsed());
                    }
                    Ok(())
                })();
                if let Err(e) = result {
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                }
                barrier.wait();
                // Claims, all daemons at once.
                let result = (|| -> anyhow::Result<()> {
                    let free = (k.concurrency * 2).saturating_sub(d.flying.len());
                    let busy: HashSet<FeedId> = d.flying.iter().map(|f| f.id).collect();
                    if free > 0 {
                        let t = Instant::now();
                        let due = d.store.due_feeds(at(now), free, &busy)?;
                        tally.claim.add(t.elapsed());
                        tally.claim_calls += 1;
                        if due.is_empty() {
                            tally.empty_claims += 1;
                        }
                        tally.claimed += due.len() as u64;
                        for feed in due {
                            let host = host_number(&feed.fetch_url);
                            let last = d.last_start.get(&host).copied();
                            let start = last.map_or(now, |l| now.max(l + k.host_gap_ms));
                            d.last_start.insert(host, start);
                            tally.starts.push((host, start));
                            d.flying.push(InFlight {
                                id: feed.id,
                                end_ms: start + rng.random_range(k.fetch_ms.0..=k.fetch_ms.1),
                                interval: feed.interval,
                            });
                        }
                    }
                    Ok(())
                })();
                if let Err(e) = result {
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                }
                barrier.wait();
                // next_due, timed apart from the claims (the scheduler asks
                // after every claim; here every NEXT_DUE_EVERY steps).
                if k.next_due_every > 0 && step % k.next_due_every == 0 {
                    let busy: HashSet<FeedId> = d.flying.iter().map(|f| f.id).collect();
                    let t = Instant::now();
                    if let Err(e) = d.store.next_due(&busy, at(now)) {
                        *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                    }
                    tally.next_due.add(t.elapsed());
                }
                barrier.wait();
                // The leader checks; then the next step.
                barrier.wait();
            }
            (d, tally)
        }));
    }
    let mut phase = Phase::default();
    let began = Instant::now();
    let per_host = k.host_concurrency;
    for step in 0..steps {
        let now = start_ms + step as i64 * k.step_ms;
        let t = Instant::now();
        barrier.wait();
        phase.record_phase_wall += t.elapsed().as_secs_f64();
        let t = Instant::now();
        barrier.wait();
        phase.claim_phase_wall += t.elapsed().as_secs_f64();
        barrier.wait();
        if check {
            let s = now / 1000;
            let over = admin.rows(&format!(
                "SELECT host, COUNT(*) FROM feeds WHERE claim_until >= {s}
                 GROUP BY host HAVING COUNT(*) > {per_host}"
            ))?;
            phase.live_violations += over.len() as u64;
            let max = admin.int(&format!(
                "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM feeds WHERE claim_until >= {s}
                 GROUP BY host) c"
            ))?;
            phase.max_live_per_host = phase.max_live_per_host.max(max);
            let minute = (60_000 / k.step_ms).max(1) as u64;
            if step % minute == minute / 2 {
                phase.distinct_claimers = phase.distinct_claimers.max(admin.int(&format!(
                    "SELECT COUNT(DISTINCT claimed_by) FROM feeds WHERE claim_until >= {s}"
                ))?);
                phase.late_samples.push(admin.int(&format!(
                    "SELECT COUNT(*) FROM feeds WHERE active = 1 AND next_poll_at <= {}
                     AND claim_until IS NULL",
                    s - 60
                ))?);
            }
        }
        phase.steps += 1;
        barrier.wait();
        if let Some(e) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bail!("a daemon failed: {e}");
        }
    }
    phase.wall = began.elapsed().as_secs_f64();
    *now_ms = start_ms + steps as i64 * k.step_ms;
    let mut tally = Tally::default();
    let mut back = Vec::new();
    for h in handles {
        let (d, t) = h.join().map_err(|_| anyhow::anyhow!("a daemon panicked"))?;
        tally.merge(&t);
        back.push(d);
    }
    Ok((back, tally, phase))
}

/// Starts on one host closer than the gap: (violations, smallest gap seen ms).
fn gap_check(starts: &[(u32, i64)], gap_ms: i64) -> (u64, i64) {
    let mut s = starts.to_vec();
    s.sort_unstable();
    let (mut bad, mut min) = (0, i64::MAX);
    for w in s.windows(2) {
        if w[0].0 == w[1].0 {
            let d = w[1].1 - w[0].1;
            min = min.min(d);
            if d < gap_ms {
                bad += 1;
            }
        }
    }
    (bad, min)
}

fn summarise(k: &Knobs, size: u64, need: f64, t: &Tally, p: &Phase) -> String {
    let sim_s = p.steps as f64 * k.step_ms as f64 / 1000.0;
    let (gap_bad, gap_min) = gap_check(&t.starts, k.host_gap_ms);
    let sustained = t.claimed as f64 / p.claim_phase_wall.max(1e-9);
    let calls_per_s = t.claim_calls as f64 / p.claim_phase_wall.max(1e-9);
    let records_per_s = t.recorded as f64 / p.record_phase_wall.max(1e-9);
    let late = p
        .late_samples
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "-- {size} feeds: {sim_s:.0} simulated s in {wall:.1} s wall ({speed:.1}× real time)\n\
         needed {need:.1} claims/s; made {made:.1} claims/s (simulated), {polls:.1} polls recorded/s\n\
         claim calls: {calls}, {empty} empty, {per_call:.1} feeds claimed per call\n\
         due_feeds latency (with the wait for the claim lock, {d} daemons at once): {claim}\n\
         claim phase: {cw:.1} s wall for {claimed} claims = {sustained:.0} claims/s sustained \
         at {per_call:.1} per call ({calls_per_s:.0} claim transactions/s, serialised) = \
         {headroom:.1}× the need\n\
         record_not_modified: {rec}; record phase {rw:.1} s wall = {records_per_s:.0} records/s \
         ({d} daemons at once)\n\
         next_due: {nd}\n\
         renew_claims: {rn}\n\
         politeness: {lv} host samples over {hc} live claims (max live on one host {maxlive}); \
         {gap_bad} starts closer than {gap} ms on one host out of {starts} (smallest gap {gap_min}); \
         {claimers} daemons held claims at once\n\
         feeds >60 s late and unclaimed (every 60 simulated s): [{late}]",
        wall = p.wall,
        speed = sim_s / p.wall.max(1e-9),
        made = t.claimed as f64 / sim_s,
        polls = t.recorded as f64 / sim_s,
        calls = t.claim_calls,
        empty = t.empty_claims,
        per_call = t.claimed as f64 / t.claim_calls.max(1) as f64,
        d = k.daemons,
        claim = t.claim.show(),
        cw = p.claim_phase_wall,
        claimed = t.claimed,
        headroom = sustained / need.max(1e-9),
        rec = t.record.show(),
        rw = p.record_phase_wall,
        nd = t.next_due.show(),
        rn = t.renew.show(),
        lv = p.live_violations,
        hc = k.host_concurrency,
        maxlive = p.max_live_per_host,
        gap = k.host_gap_ms,
        starts = t.starts.len(),
        claimers = p.distinct_claimers,
        gap_min = if gap_min == i64::MAX {
            "none: no host started twice".to_string()
        } else {
            format!("{gap_min} ms")
        },
    )
}

/// EXPLAIN ANALYZE of the claim query (steady, and with every feed due) and
/// of `next_due`'s, as src/store/postgres/feeds.rs sends them (keep in step),
/// in a transaction rolled back. Full plans go to OUT/plans-SIZE.txt.
fn explain(k: &Knobs, admin: &Admin, now_ms: i64, size: u64) -> anyhow::Result<String> {
    let claim = |s: i64, ms: i64| {
        format!(
            "WITH live AS (
                SELECT host, COUNT(*) AS n FROM feeds
                WHERE claim_until >= {s}::BIGINT GROUP BY host),
             due AS (
                SELECT id, host, next_poll_at, ROW_NUMBER() OVER (
                    PARTITION BY host ORDER BY next_poll_at, id) AS nth
                FROM feeds
                WHERE active = 1 AND state != 'gone' AND next_poll_at <= {s}::BIGINT
                  AND (claim_until IS NULL OR claim_until < {s}::BIGINT)
                  AND NOT (id = ANY('{{}}'::BIGINT[])))
             SELECT d.id, d.host FROM due d
             LEFT JOIN live l ON l.host = d.host
             LEFT JOIN host_gates g ON g.host = d.host
             WHERE d.nth + COALESCE(l.n, 0) <= {per_host}
               AND COALESCE(g.next_start_ms, 0) <= {ms}::BIGINT
             ORDER BY d.next_poll_at, d.id LIMIT {limit}",
            per_host = k.host_concurrency,
            limit = k.concurrency * 2
        )
    };
    let next_due = |s: i64| {
        format!(
            "WITH live AS (
                SELECT host, COUNT(*) AS n FROM feeds
                WHERE claim_until >= {s}::BIGINT GROUP BY host),
             first AS (
                SELECT host, next_poll_at, claim_until FROM feeds
                WHERE active = 1 AND state != 'gone' AND NOT (id = ANY('{{}}'::BIGINT[]))
                ORDER BY next_poll_at LIMIT 256)
             SELECT
                (SELECT MIN(GREATEST(
                    f.next_poll_at * 1000,
                    COALESCE(f.claim_until + 1, 0) * 1000,
                    COALESCE(g.next_start_ms, 0),
                    CASE WHEN COALESCE(l.n, 0) >= {per_host} THEN ({s}::BIGINT + 1) * 1000 ELSE 0 END))
                 FROM first f
                 LEFT JOIN live l ON l.host = f.host
                 LEFT JOIN host_gates g ON g.host = f.host),
                (SELECT next_poll_at FROM feeds
                 WHERE active = 1 AND state != 'gone' AND NOT (id = ANY('{{}}'::BIGINT[]))
                 ORDER BY next_poll_at OFFSET 256 LIMIT 1)",
            per_host = k.host_concurrency
        )
    };
    // BIGINT literals, as the store's parameters are.
    let s = now_ms / 1000;
    let all_due = s + 7 * 3600 * 4;
    let cases = [
        ("claim query, steady state", claim(s, now_ms)),
        (
            "claim query, every feed due (first start, or after an outage)",
            claim(all_due, all_due * 1000),
        ),
        ("next_due", next_due(s)),
    ];
    let mut full = String::new();
    let mut short = format!("-- EXPLAIN ANALYZE at {size} feeds:");
    for (name, sql) in cases {
        let mut times = Vec::new();
        let mut plan = String::new();
        for _ in 0..3 {
            let rows = admin.rows(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))?;
            plan = rows
                .iter()
                .map(|r| r.get(0).unwrap_or_default().to_string())
                .collect::<Vec<_>>()
                .join("\n");
            if let Some(ms) = plan
                .lines()
                .find_map(|l| l.trim().strip_prefix("Execution Time: "))
                .and_then(|l| l.trim_end_matches(" ms").parse::<f64>().ok())
            {
                times.push(ms);
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
        short.push_str(&format!("\n   {name}: {median:.1} ms (median of 3)"));
        full.push_str(&format!("=== {name} ({size} feeds)\n{sql}\n\n{plan}\n\n"));
    }
    std::fs::write(format!("{}/plans-{size}.txt", k.out), full)?;
    Ok(short)
}

/// Records every poll the daemons still hold, at `now_ms`: they let go.
fn drain(daemons: &mut [Daemon], now_ms: i64) -> anyhow::Result<u64> {
    let mut drained = 0;
    for d in daemons {
        for f in d.flying.drain(..) {
            let next = now_ms + f.interval.as_millis() as i64;
            d.store.record_not_modified(f.id, at(now_ms), at(next))?;
            drained += 1;
        }
    }
    Ok(drained)
}

/// Counts the statements each store call sends, from the server's statement
/// log over a few steps with fresh daemons (their connections start with
/// `log_min_duration_statement = 0`): a prepared statement is two round
/// trips (parse; bind and execute), a simple one (BEGIN, COMMIT) one.
fn trace_round_trips(
    k: &Knobs,
    admin: &Admin,
    open: &dyn Fn(usize) -> anyhow::Result<Store>,
    now_ms: &mut i64,
) -> anyhow::Result<String> {
    let data = admin.value("SHOW data_directory")?;
    let log = std::path::Path::new(&data)
        .parent()
        .map(|p| p.join("server.log"))
        .context("no server log")?;
    if !log.exists() {
        return Ok(format!(
            "round trips: not counted ({} not found)",
            log.display()
        ));
    }
    let db = admin.value("SELECT current_database()")?;
    admin.batch(&format!(
        "ALTER DATABASE {db} SET log_min_duration_statement = 0"
    ))?;
    let daemons = (0..k.daemons)
        .map(|_| {
            let store = open(2)?;
            Ok(Daemon {
                name: daemon_name(&store),
                store,
                flying: Vec::new(),
                last_start: HashMap::new(),
                next_renew_ms: 0,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let from = std::fs::metadata(&log)?.len();
    let (mut daemons, tally, _) = simulate(k, admin, daemons, now_ms, k.trace_steps, false)?;
    let drained = drain(&mut daemons, *now_ms)?;
    std::thread::sleep(Duration::from_millis(300));
    let to = std::fs::metadata(&log)?.len();
    admin.batch(&format!(
        "ALTER DATABASE {db} RESET log_min_duration_statement"
    ))?;
    drop(daemons);
    let mut text = String::new();
    let mut file = std::fs::File::open(&log)?;
    file.seek(SeekFrom::Start(from))?;
    file.take(to - from).read_to_string(&mut text)?;

    // (op → round trips): each line names its backend's pid; BEGIN counts
    // for the statement after it, COMMIT for the one before.
    let mut per_op: HashMap<&str, u64> = HashMap::new();
    let mut last_op: HashMap<String, &str> = HashMap::new();
    let mut pending_begin: HashMap<String, u64> = HashMap::new();
    let mut others = String::new();
    // One entry per logged statement, its SQL's later lines appended.
    let mut entries: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.contains(" LOG:  duration: ") {
            entries.push(line.to_string());
        } else if line.starts_with(char::is_whitespace)
            && let Some(e) = entries.last_mut()
        {
            e.push(' ');
            e.push_str(line.trim());
        }
    }
    for line in &entries {
        let Some(rest) = line.split("duration: ").nth(1) else {
            continue;
        };
        let pid = line
            .split('[')
            .nth(1)
            .and_then(|p| p.split(']').next())
            .unwrap_or("")
            .to_string();
        let body = rest.split("  ").nth(1).unwrap_or("");
        let kind = body.split_whitespace().next().unwrap_or("");
        let sql = body.split_once(": ").map(|x| x.1).unwrap_or("");
        let trips = match kind {
            "parse" | "execute" => 1,
            "statement:" => 1,
            _ => 0, // bind: with its execute, one round trip
        };
        if trips == 0 {
            continue;
        }
        let sql_trim = sql.trim();
        if sql_trim.starts_with("BEGIN") || sql_trim.starts_with("START TRANSACTION") {
            *pending_begin.entry(pid).or_default() += 1;
            continue;
        }
        if sql_trim.starts_with("COMMIT") || sql_trim.starts_with("ROLLBACK") {
            let op = last_op.get(&pid).copied().unwrap_or("other");
            *per_op.entry(op).or_default() += 1;
            continue;
        }
        let op = if sql.contains("pg_advisory_xact_lock")
            || sql.contains("ROW_NUMBER")
            || sql.contains("claimed_by = $2, claim_until")
            || sql.contains("host_gates (host")
        {
            "claim (due_feeds)"
        } else if sql.contains("MIN(GREATEST") {
            "next_due"
        } else if sql.contains("last_status = 304") || sql.contains("river_version") {
            "record_not_modified"
        } else if sql.contains("claim_until = $3 WHERE") || sql.contains("DISTINCT claimed_by") {
            "renew_claims"
        } else {
            others.push_str(line);
            others.push('\n');
            "other"
        };
        if let Some(b) = pending_begin.remove(&pid) {
            *per_op.entry(op).or_default() += b;
        }
        last_op.insert(pid, op);
        *per_op.entry(op).or_default() += trips;
    }
    std::fs::write(format!("{}/trace-other.txt", k.out), &others)?;
    let polls = tally.recorded + drained;
    let mut ops: Vec<_> = per_op.into_iter().collect();
    ops.sort();
    let total: u64 = ops.iter().map(|o| o.1).sum();
    let parse = text.matches("  parse ").count();
    let exec = text.matches("  execute ").count();
    let simple = text.matches("  statement: ").count();
    let mut out = format!(
        "-- round trips, from the statement log over {} steps ({} daemons): {} polls recorded, \
         {} claimed in {} claim calls ({:.1} per call); {} parse + {} execute + {} simple \
         statements = {} round trips, {:.1} per poll",
        k.trace_steps,
        k.daemons,
        polls,
        tally.claimed,
        tally.claim_calls,
        tally.claimed as f64 / tally.claim_calls.max(1) as f64,
        parse,
        exec,
        simple,
        total,
        total as f64 / polls.max(1) as f64
    );
    let calls = |op: &str| -> u64 {
        match op {
            "claim (due_feeds)" => tally.claim_calls,
            "next_due" => tally.next_due.0.len() as u64,
            "record_not_modified" => polls,
            "renew_claims" => tally.renew.0.len() as u64,
            _ => 0,
        }
    };
    for (op, n) in &ops {
        let c = calls(op);
        out.push_str(&format!(
            "\n   {op}: {n} round trips{}{}",
            if c > 0 {
                format!(", {:.1} per call ({c} calls)", *n as f64 / c as f64)
            } else {
                String::new()
            },
            if polls > 0 {
                format!(", {:.2} per poll", *n as f64 / polls as f64)
            } else {
                String::new()
            }
        ));
    }
    Ok(out)
}
