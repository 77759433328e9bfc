//! Three `newsriver run` daemons on one PostgreSQL database and one feed set
//! (`bench/three_daemons.sh`, BENCHMARKS.md): what the feed farm sees.
//!
//! The farm (in this process, on 127.0.0.1) serves `--feeds` small RSS
//! feeds of three items each, with an ETag honoured by 304 and a
//! `<lastBuildDate>` that moves only with the content (so a 304 leaves the
//! river as it was). Once every feed has been polled once, `--churn` per
//! cent of the feeds publish one new item each interval (the others stay
//! unchanged: their polls are 304s). Every request is logged with its time,
//! its feed and the daemon that made it (each daemon has its own
//! User-Agent).
//!
//! Timeline: daemon 0 starts, daemons 1 and 2 once it has stored the feed
//! list (`--together 1`: all three at once); when every feed has been
//! polled once (the cold ingest), `--intervals` intervals of the steady
//! state are measured; in the next interval daemon 0 gets SIGKILL as soon
//! as it holds `--kill-claims` claims (or at the end of that interval), and
//! `--after` intervals are measured with the two others; then the feeds stop
//! changing, and after one more interval (every feed polled again, nothing
//! new) the survivors' `/feed.atom` are compared. Prints a report.
//!
//!   target/release/examples/three_daemons --database postgres://…/fresh_db \
//!       [--feeds 2000] [--interval 30] [--intervals 4] [--after 4] [--churn 2] \
//!       [--kill-claims 5] [--together 0] [--newsriver target/release/newsriver] [--work DIR]

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rand::{Rng, SeedableRng};

/// Daemon `k` sends `UA_PREFIX` then `k`.
const UA_PREFIX: &str = "three-daemons-bench/d";
const DAEMONS: usize = 3;

#[derive(Debug, Clone)]
struct Args {
    feeds: usize,
    interval: Duration,
    intervals: usize,
    after: usize,
    churn: f64,
    kill_claims: i64,
    together: bool,
    newsriver: PathBuf,
    database: String,
    work: Option<PathBuf>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        feeds: 2000,
        interval: Duration::from_secs(30),
        intervals: 4,
        after: 4,
        churn: 2.0,
        kill_claims: 5,
        together: false,
        newsriver: PathBuf::from("target/release/newsriver"),
        database: String::new(),
        work: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--feeds" => a.feeds = value.parse()?,
            "--interval" => a.interval = Duration::from_secs_f64(value.parse()?),
            "--intervals" => a.intervals = value.parse()?,
            "--after" => a.after = value.parse()?,
            "--churn" => a.churn = value.parse()?,
            "--kill-claims" => a.kill_claims = value.parse()?,
            "--together" => a.together = value != "0",
            "--newsriver" => a.newsriver = value.into(),
            "--database" => a.database = value,
            "--work" => a.work = Some(value.into()),
            other => bail!("unknown option {other}"),
        }
    }
    if a.database.is_empty() {
        bail!("--database postgres://… (a fresh, empty database) is required");
    }
    if a.feeds == 0 || a.intervals == 0 || a.after == 0 || a.interval < Duration::from_secs(3) {
        bail!("need --feeds ≥ 1, --intervals ≥ 1, --after ≥ 1 and --interval ≥ 3");
    }
    Ok(a)
}

// ---------------------------------------------------------------- the farm

#[derive(Debug, Clone, Copy)]
struct Hit {
    at: Instant,
    /// The daemon that asked (0..3), `u8::MAX` if unknown.
    daemon: u8,
    status: u16,
}

#[derive(Debug)]
struct Farm {
    /// Each feed's version: its newest item's number is `version + 2`.
    versions: Vec<AtomicU32>,
    hits: Mutex<Vec<Vec<Hit>>>,
    /// Dates of the items count from here.
    base: chrono::DateTime<chrono::Utc>,
}

const WORDS: [&str; 48] = [
    "council", "budget", "harbour", "traffic", "rainfall", "bread", "district", "price",
    "minister", "school", "bridge", "river", "market", "season", "report", "vote", "hospital",
    "railway", "festival", "library", "farmers", "storm", "court", "police", "museum", "airport",
    "energy", "water", "housing", "workers", "union", "company", "profits", "shares", "mayor",
    "election", "teachers", "students", "doctors", "nurses", "tourists", "fishing", "forest",
    "mountain", "village", "coast", "island", "ferry",
];

impl Farm {
    fn hits(&self) -> Vec<Vec<Hit>> {
        self.hits.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Feed `feed` at `version`: items `version..=version + 2`, newest first.
    fn rss(&self, feed: usize, version: u32) -> String {
        let date = |n: u32| {
            (self.base
                + chrono::Duration::minutes(i64::from(n) * 10)
                + chrono::Duration::seconds(feed as i64 % 600))
            .to_rfc2822()
        };
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
             <title>Farm outlet {feed}</title><link>https://outlet{feed}.example/</link>\
             <description>Synthetic feed {feed}</description><lastBuildDate>{}</lastBuildDate>\n",
            date(version + 2)
        );
        for n in (version..=version + 2).rev() {
            let mut seed =
                ((feed as u64) << 32 | u64::from(n)).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut words = Vec::with_capacity(40);
            for _ in 0..40 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                words.push(WORDS[(seed % WORDS.len() as u64) as usize]);
            }
            let _ = writeln!(
                xml,
                "<item><title>Outlet {feed} item {n}: {} {} {}</title>\
                 <link>https://outlet{feed}.example/{n}</link><guid isPermaLink=\"false\">f{feed}-{n}</guid>\
                 <pubDate>{}</pubDate><description>{}.</description></item>",
                words[0],
                words[1],
                words[2],
                date(n),
                words[3..].join(" ")
            );
        }
        xml.push_str("</channel></rss>\n");
        xml
    }
}

async fn serve_feed(
    UrlPath(name): UrlPath<String>,
    State(farm): State<Arc<Farm>>,
    headers: HeaderMap,
) -> Response {
    let at = Instant::now();
    let Some(feed) = name
        .strip_suffix(".xml")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|i| *i < farm.versions.len())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let daemon = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.find(UA_PREFIX).map(|at| &ua[at + UA_PREFIX.len()..]))
        .and_then(|rest| rest.get(..1))
        .and_then(|d| d.parse::<u8>().ok())
        .unwrap_or(u8::MAX);
    let version = farm.versions[feed].load(Ordering::Relaxed);
    let etag = format!("\"f{feed}-v{version}\"");
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str());
    let status = if fresh { 304 } else { 200 };
    if let Some(list) = farm
        .hits
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_mut(feed)
    {
        list.push(Hit { at, daemon, status });
    }
    if fresh {
        (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response()
    } else {
        (
            StatusCode::OK,
            [
                (header::ETAG, etag),
                (header::CONTENT_TYPE, "application/rss+xml".to_string()),
            ],
            farm.rss(feed, version),
        )
            .into_response()
    }
}

// ------------------------------------------------------------- the daemons

/// `n` distinct free addresses (each listener held until all are chosen).
fn free_addrs(n: usize) -> anyhow::Result<Vec<SocketAddr>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr())
        .collect::<Result<Vec<_>, _>>()?)
}

fn write_config(
    work: &Path,
    k: usize,
    a: &Args,
    listen: SocketAddr,
    feeds: &[String],
) -> anyhow::Result<PathBuf> {
    let interval = humantime::format_duration(a.interval);
    let mut toml = format!(
        "[server]\nlisten = \"{listen}\"\n[storage]\nurl = \"{}\"\n\
         [output]\nbase_url = \"http://river.example/\"\n\
         [fetch]\njitter = 0.0\nhost_gap = \"0s\"\nhost_concurrency = 64\n\
         user_agent = \"{UA_PREFIX}{k}\"\n",
        a.database
    );
    for url in feeds {
        let _ = writeln!(toml, "[[feed]]\nurl = \"{url}\"\ninterval = \"{interval}\"");
    }
    let path = work.join(format!("d{k}.toml"));
    std::fs::write(&path, toml)?;
    Ok(path)
}

fn start_daemon(newsriver: &Path, config: &Path) -> anyhow::Result<Child> {
    let log = std::fs::File::create(config.with_extension("log"))?;
    Command::new(newsriver)
        .args(["run", "--config"])
        .arg(config)
        .env(
            "RUST_LOG",
            std::env::var("DAEMON_LOG")
                .unwrap_or_else(|_| "newsriver=warn,newsriver::store=info".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", newsriver.display()))
}

fn log_tail(config: &Path) -> String {
    let log = std::fs::read_to_string(config.with_extension("log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Fails if a daemon that should run has exited.
fn check_alive(daemons: &mut [Option<Child>], configs: &[PathBuf]) -> anyhow::Result<()> {
    for (k, d) in daemons.iter_mut().enumerate() {
        if let Some(child) = d
            && let Some(status) = child.try_wait()?
        {
            bail!("daemon {k} exited ({status}):\n{}", log_tail(&configs[k]));
        }
    }
    Ok(())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

// ---------------------------------------------------------------- figures

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn signed(x: f64) -> String {
    format!("{x:+.2} s")
}

fn quantile<T: Copy + Ord>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted.get(i.min(sorted.len() - 1)).copied()
}

/// Requests per feed in each interval-long window from `from` and, beside
/// them, the gaps between a feed's consecutive requests whose later one is
/// in `[from, from + windows × interval)`.
fn phase_report(
    name: &str,
    hits: &[Vec<Hit>],
    from: Instant,
    windows: usize,
    interval: Duration,
    out: &mut String,
) {
    let end = from + interval * windows as u32;
    let mut counts: Vec<usize> = Vec::new();
    let (mut zero, mut two, mut doubled, mut late) = (0usize, 0usize, 0usize, 0usize);
    let mut gaps: Vec<Duration> = Vec::new();
    let mut requests = 0usize;
    let mut by_daemon = [0usize; DAEMONS + 1];
    let mut not_modified = 0usize;
    for feed in hits {
        let mut per = vec![0usize; windows];
        for h in feed.iter().filter(|h| h.at >= from && h.at < end) {
            let w = ((h.at - from).as_secs_f64() / interval.as_secs_f64()) as usize;
            if let Some(c) = per.get_mut(w) {
                *c += 1;
            }
            requests += 1;
            by_daemon[usize::from(h.daemon).min(DAEMONS)] += 1;
            not_modified += usize::from(h.status == 304);
        }
        zero += usize::from(per.contains(&0));
        two += usize::from(per.iter().any(|c| *c >= 2));
        counts.extend(&per);
        let mine: Vec<Duration> = feed
            .windows(2)
            .filter(|p| p[1].at >= from && p[1].at < end)
            .map(|p| p[1].at - p[0].at)
            .collect();
        doubled += usize::from(mine.iter().any(|g| *g + Duration::from_secs(1) < interval));
        late += usize::from(mine.iter().any(|g| *g > interval + Duration::from_secs(2)));
        gaps.extend(mine);
    }
    counts.sort_unstable();
    gaps.sort_unstable();
    let q = |s: &[usize], x| quantile(s, x).unwrap_or(0);
    let g = |x| quantile(&gaps, x).map_or("-".into(), secs);
    let _ = writeln!(
        out,
        "{name}: {windows} windows of {} × {} feeds; {requests} requests ({:.1}/s; {:.0} % 304), by daemon {:?}{}",
        secs(interval),
        hits.len(),
        requests as f64 / (interval.as_secs_f64() * windows as f64),
        100.0 * not_modified as f64 / requests.max(1) as f64,
        &by_daemon[..DAEMONS],
        if by_daemon[DAEMONS] > 0 {
            format!(" (+{} unknown)", by_daemon[DAEMONS])
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "  requests per feed per window: min {}, median {}, max {}; feeds with a window of 0: {zero}; with a window of ≥ 2: {two}",
        q(&counts, 0.0),
        q(&counts, 0.5),
        q(&counts, 1.0)
    );
    let _ = writeln!(
        out,
        "  gap between a feed's consecutive requests: min {}, p1 {}, median {}, p99 {}, max {}; feeds with a gap < interval − 1 s (polled twice within an interval): {doubled}; with a gap > interval + 2 s (late): {late}",
        g(0.0),
        g(0.01),
        g(0.5),
        g(0.99),
        g(1.0)
    );
}

// ------------------------------------------------------------------- main

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let scratch = tempfile::tempdir()?;
    let work = a
        .work
        .clone()
        .unwrap_or_else(|| scratch.path().to_path_buf());
    std::fs::create_dir_all(&work)?;
    let interval = a.interval;

    let farm = Arc::new(Farm {
        versions: (0..a.feeds).map(|_| AtomicU32::new(0)).collect(),
        hits: Mutex::new(vec![Vec::new(); a.feeds]),
        base: chrono::Utc::now() - chrono::Duration::days(2),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let farm_addr = listener.local_addr()?;
    let app = Router::new()
        .route("/f/{name}", get(serve_feed))
        .with_state(farm.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let urls: Vec<String> = (0..a.feeds)
        .map(|i| format!("http://{farm_addr}/f/{i}.xml"))
        .collect();

    let (db, connection) = tokio_postgres::connect(&a.database, tokio_postgres::NoTls)
        .await
        .context("connecting to --database")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });

    let addrs = free_addrs(DAEMONS)?;
    let configs = addrs
        .iter()
        .enumerate()
        .map(|(k, addr)| write_config(&work, k, &a, *addr, &urls))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "three daemons, one PostgreSQL database: {} feeds × 3 items on 127.0.0.1 (one host: host_concurrency 64, host_gap 0s, jitter 0), interval {}, {} % of feeds publishing one item an interval",
        a.feeds,
        secs(interval),
        a.churn
    );
    let started = Instant::now();
    let mut daemons: Vec<Option<Child>> = Vec::new();
    if a.together {
        for c in &configs {
            daemons.push(Some(start_daemon(&a.newsriver, c)?));
        }
    } else {
        // Daemon 0 first, the others once its feed list is in the database
        // (three daemons writing the same 2,000 new feed rows at once can
        // deadlock; see bench/three_daemons.md).
        daemons.push(Some(start_daemon(&a.newsriver, &configs[0])?));
        loop {
            check_alive(&mut daemons, &configs[..1])?;
            let rows = db
                .query_one("SELECT COUNT(*) FROM feeds", &[])
                .await
                .map_or(0, |r| r.get::<_, i64>(0));
            if rows >= a.feeds as i64 {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("daemon 0 did not store its feed list within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = writeln!(
            out,
            "daemon 0 started alone; its feed list stored {} later, then daemons 1 and 2 started",
            secs(started.elapsed())
        );
        for c in &configs[1..] {
            daemons.push(Some(start_daemon(&a.newsriver, c)?));
        }
    }
    let result = run(
        &a,
        &farm,
        &db,
        &addrs,
        &configs,
        &mut daemons,
        started,
        &mut out,
    )
    .await;
    for child in daemons.iter_mut().flatten() {
        if let Ok(pid) = i32::try_from(child.id())
            && let Some(pid) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
    for child in daemons.iter_mut().flatten() {
        let _ = child.wait();
    }
    if a.work.is_none() && result.is_err() {
        for (k, c) in configs.iter().enumerate() {
            eprintln!("--- daemon {k} log tail:\n{}", log_tail(c));
        }
    }
    result?;
    print!("{out}");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run(
    a: &Args,
    farm: &Arc<Farm>,
    db: &tokio_postgres::Client,
    addrs: &[SocketAddr],
    configs: &[PathBuf],
    daemons: &mut [Option<Child>],
    started: Instant,
    out: &mut String,
) -> anyhow::Result<()> {
    let interval = a.interval;
    let tick = Duration::from_millis(200);

    // The cold ingest: until every feed has been asked for once.
    let deadline = started + Duration::from_secs(600);
    loop {
        check_alive(daemons, configs)?;
        let hits = farm.hits();
        if hits.iter().all(|h| !h.is_empty()) {
            break;
        }
        if Instant::now() > deadline {
            let polled = hits.iter().filter(|h| !h.is_empty()).count();
            bail!(
                "after 600 s only {polled} of {} feeds were polled once",
                a.feeds
            );
        }
        tokio::time::sleep(tick).await;
    }
    let t0 = Instant::now();
    let first = farm.hits();
    let mut firsts: Vec<u8> = first
        .iter()
        .filter_map(|h| h.first().map(|h| h.daemon))
        .collect();
    firsts.sort_unstable();
    let share: Vec<usize> = (0..DAEMONS as u8)
        .map(|k| firsts.iter().filter(|d| **d == k).count())
        .collect();
    let _ = writeln!(
        out,
        "cold ingest: every feed polled once {} after the daemons started (first polls by daemon: {share:?})",
        secs(t0 - started)
    );

    // New items: `churn` % of the feeds each interval, at a third of it.
    let churning = Arc::new(AtomicBool::new(true));
    let churn_each = ((a.feeds as f64) * a.churn / 100.0).round() as usize;
    let churn_task = {
        let (farm, churning) = (farm.clone(), churning.clone());
        let feeds = a.feeds;
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(17);
            let mut next = tokio::time::Instant::from_std(t0 + interval / 3);
            let mut published = 0usize;
            loop {
                tokio::time::sleep_until(next).await;
                next += interval;
                if !churning.load(Ordering::Relaxed) {
                    return published;
                }
                for _ in 0..churn_each {
                    let feed = rng.random_range(0..feeds);
                    farm.versions[feed].fetch_add(1, Ordering::Relaxed);
                    published += 1;
                }
            }
        })
    };

    // The steady state; then SIGKILL of daemon 0 in the next interval, as
    // soon as it holds `--kill-claims` claims (feeds it has taken and not
    // yet recorded: its polls in flight or waiting), or at the end of it.
    let measured = t0 + interval * a.intervals as u32;
    while Instant::now() < measured {
        check_alive(daemons, configs)?;
        tokio::time::sleep(tick.min(measured.saturating_duration_since(Instant::now()))).await;
    }
    let victim_pid = daemons[0].as_ref().map(Child::id).unwrap_or_default();
    let count_claims = || async {
        db.query_one(
            "SELECT COUNT(*) FROM feeds WHERE split_part(claimed_by, ':', 2) = $1",
            &[&victim_pid.to_string()],
        )
        .await
        .map(|r| r.get::<_, i64>(0))
    };
    let mut claimed_before = 0;
    let mut most = 0;
    while Instant::now() < measured + interval {
        check_alive(daemons, configs)?;
        claimed_before = count_claims().await?;
        most = most.max(claimed_before);
        if claimed_before >= a.kill_claims {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(mut child) = daemons[0].take() {
        child.kill()?;
        // Reaped at once: a zombie's /proc entry would keep its claims alive.
        child.wait()?;
    }
    let killed = Instant::now();
    let killed_unix = unix_now();
    let rows = db
        .query(
            "SELECT id, url, next_poll_at, claim_until FROM feeds
             WHERE split_part(claimed_by, ':', 2) = $1",
            &[&victim_pid.to_string()],
        )
        .await?;
    let claimed: Vec<(usize, i64)> = rows
        .iter()
        .filter_map(|r| {
            let url: String = r.get(1);
            let feed = url
                .rsplit('/')
                .next()?
                .strip_suffix(".xml")?
                .parse::<usize>()
                .ok()?;
            Some((feed, r.get::<_, i64>(2)))
        })
        .collect();
    let claim_ends: Vec<i64> = rows
        .iter()
        .filter_map(|r| r.get::<_, Option<i64>>(3))
        .collect();
    let _ = writeln!(
        out,
        "SIGKILL of daemon 0 (pid {victim_pid}) {} after the cold ingest ({} into the interval after the measured ones; most claims it held in it before: {most}); it held {} claims just before, {} right after (leases ending {}–{} s after the kill)",
        secs(killed - t0),
        secs(killed - measured),
        claimed_before,
        claimed.len(),
        claim_ends
            .iter()
            .min()
            .map_or("-".into(), |t| format!("{:+.0}", *t as f64 - killed_unix)),
        claim_ends
            .iter()
            .max()
            .map_or("-".into(), |t| format!("{:+.0}", *t as f64 - killed_unix))
    );

    // The two others, for `after` intervals from the kill.
    let quiet_at = killed + interval * a.after as u32;
    while Instant::now() < quiet_at {
        check_alive(daemons, configs)?;
        tokio::time::sleep(tick.min(quiet_at.saturating_duration_since(Instant::now()))).await;
    }
    churning.store(false, Ordering::Relaxed);
    let hits = farm.hits();

    // Figure 1: requests per feed per interval.
    phase_report(
        "three daemons (steady state, from the end of the cold ingest)",
        &hits,
        t0,
        a.intervals,
        interval,
        out,
    );
    phase_report(
        "two daemons (from the kill)",
        &hits,
        killed,
        a.after,
        interval,
        out,
    );

    // Figure 2: the killed daemon's feeds, polled again.
    let claimed_set: HashSet<usize> = claimed.iter().map(|(f, _)| *f).collect();
    let mut after_kill = Vec::new(); // (since kill, since due)
    for (feed, due_unix) in &claimed {
        if let Some(h) = hits[*feed].iter().find(|h| h.at > killed) {
            let since_kill = (h.at - killed).as_secs_f64();
            let due = *due_unix as f64 - killed_unix;
            after_kill.push((since_kill, since_kill - due));
        } else {
            after_kill.push((f64::INFINITY, f64::INFINITY));
        }
    }
    let report_set = |name: &str, set: &[(f64, f64)], out: &mut String| {
        if set.is_empty() {
            let _ = writeln!(out, "  {name}: none");
            return;
        }
        let max_kill = set.iter().map(|x| x.0).fold(f64::MIN, f64::max);
        let max_due = set.iter().map(|x| x.1).fold(f64::MIN, f64::max);
        let min_kill = set.iter().map(|x| x.0).fold(f64::MAX, f64::min);
        let _ = writeln!(
            out,
            "  {name} ({} feeds): first request after the kill {}–{} after it; latest {} after it was due",
            set.len(),
            signed(min_kill),
            signed(max_kill),
            signed(max_due)
        );
    };
    let _ = writeln!(out, "takeover of the killed daemon's feeds:");
    report_set("claimed by it at the kill", &after_kill, out);
    // Feeds whose last request before the kill was daemon 0's (its polls,
    // due an interval later) and not claimed by it at the kill.
    let mut polled = Vec::new();
    let mut others = Vec::new();
    for (feed, list) in hits.iter().enumerate() {
        let Some(last) = list.iter().rev().find(|h| h.at <= killed) else {
            continue;
        };
        let next = list.iter().find(|h| h.at > killed);
        let due = (last.at + interval)
            .checked_duration_since(killed)
            .map_or_else(
                || -(killed - (last.at + interval)).as_secs_f64(),
                |d| d.as_secs_f64(),
            );
        let x = next.map_or((f64::INFINITY, f64::INFINITY), |n| {
            let k = (n.at - killed).as_secs_f64();
            (k, k - due)
        });
        if claimed_set.contains(&feed) {
            continue;
        }
        if last.daemon == 0 {
            polled.push(x);
        } else {
            others.push(x);
        }
    }
    report_set("last polled by it, not claimed at the kill", &polled, out);
    report_set("last polled by the others (for comparison)", &others, out);
    let released: Vec<String> = configs[1..]
        .iter()
        .enumerate()
        .flat_map(|(k, c)| {
            std::fs::read_to_string(c.with_extension("log"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("took back the claims"))
                .filter_map(|l| {
                    let at = l.split_whitespace().next()?;
                    let at = chrono::DateTime::parse_from_rfc3339(at).ok()?;
                    let t = at.timestamp_micros() as f64 / 1e6 - killed_unix;
                    let feeds = l
                        .split("feeds=")
                        .nth(1)?
                        .split_whitespace()
                        .next()?
                        .to_string();
                    Some(format!("daemon {} at {} ({feeds} feeds)", k + 1, signed(t)))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let _ = writeln!(
        out,
        "  dead daemon's claims released (survivors' logs): {}",
        if released.is_empty() {
            "not logged".to_string()
        } else {
            released.join("; ")
        }
    );

    // Figure 3: the same river from both survivors once nothing changes.
    // The last items appear within an interval; then every feed is polled
    // once more (304s: nothing stored, the river as it was).
    let published = churn_task.await.unwrap_or_default();
    let settle = quiet_at + interval + Duration::from_secs(5);
    while Instant::now() < settle {
        check_alive(daemons, configs)?;
        tokio::time::sleep(tick).await;
    }
    let client = reqwest::Client::new();
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let mut served = Vec::new();
        for addr in &addrs[1..] {
            let response = client
                .get(format!("http://{addr}/feed.atom"))
                .send()
                .await?;
            let status = response.status().as_u16();
            let etag = response
                .headers()
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = response.bytes().await?;
            served.push((status, etag, body));
        }
        rounds.push(served);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let same = rounds.iter().all(|r| r.windows(2).all(|p| p[0] == p[1]));
    let stable = rounds.windows(2).all(|p| p[0] == p[1]);
    let last = &rounds[rounds.len() - 1][0];
    let entries: i64 = db
        .query_one("SELECT COUNT(*) FROM entries", &[])
        .await?
        .get(0);
    let _ = writeln!(
        out,
        "river after the feeds stopped changing ({published} items published during the run, {} entries stored; expected {}): daemons 1 and 2 serve {} /feed.atom (status {}, ETag {}, {} bytes, {} entries) in 3 rounds 1 s apart{}",
        entries,
        a.feeds * 3 + published,
        if same { "the same" } else { "DIFFERENT" },
        last.0,
        last.1,
        last.2.len(),
        String::from_utf8_lossy(&last.2).matches("<entry>").count(),
        if stable {
            ", unchanged between rounds"
        } else {
            ", changing between rounds"
        }
    );
    let total: usize = hits.iter().map(Vec::len).sum();
    let _ = writeln!(
        out,
        "total: {total} requests in {} (daemons started → feeds stopped changing)",
        secs(Instant::now() - started)
    );
    Ok(())
}
