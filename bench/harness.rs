//! The benchmark harness: a synthetic feed farm on loopback, newsriver run
//! against it as a separate process, and the physical ceilings of this machine
//! measured in the same run, so every figure can be read as a ratio.
//!
//! Shared by `examples/bench.rs` (the full run, `bench/run.sh`) and
//! `tests/bench_smoke.rs` (a tiny run in the normal test suite, so this cannot rot).

#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Response, StatusCode, header};
use axum::routing::get;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};

/// What to measure and how big.
#[derive(Debug, Clone)]
pub struct Params {
    /// Feeds in the P1/P2 farm.
    pub feeds: usize,
    /// Entries per feed.
    pub entries: usize,
    /// Fetch concurrency, for newsriver and for the ceilings alike.
    pub concurrency: usize,
    /// Feed counts for the growth series (P5).
    pub growth: Vec<usize>,
    /// Feeds for the footprint run (P4); entries per feed as above.
    pub footprint_feeds: usize,
    /// Concurrent connections and duration of the serving load (P3).
    pub connections: usize,
    pub load_time: Duration,
    /// Entries in the served feed (P3), i.e. `[output].entries`.
    pub served_entries: usize,
    /// The newsriver binary to measure.
    pub newsriver: PathBuf,
    /// Scratch folder for databases and configs.
    pub work: PathBuf,
    /// Runs of each measurement that can be repeated (the ceilings, the warm
    /// re-polls, the smaller growth points); the fastest counts.
    pub repeat: usize,
}

/// Growth points up to this many feeds are measured `repeat` times.
const REPEATED_GROWTH: usize = 1000;

/// The fastest of `n` runs of `f` (at least one): on a shared machine, noise
/// only ever adds time.
async fn fastest<T, F, Fut>(n: usize, mut f: F, wall: impl Fn(&T) -> Duration) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut best = f().await?;
    for _ in 1..n.max(1) {
        let next = f().await?;
        if wall(&next) < wall(&best) {
            best = next;
        }
    }
    Ok(best)
}

fn itself(d: &Duration) -> Duration {
    *d
}

fn wall_of(run: &PollRun) -> Duration {
    run.wall
}

// ---------------------------------------------------------------- the farm

/// The farm's vocabulary.
const WORDS: [&str; 64] = [
    "council", "budget", "harbour", "traffic", "rainfall", "bread", "district", "price",
    "minister", "school", "bridge", "river", "market", "season", "report", "vote", "hospital",
    "railway", "festival", "library", "farmers", "storm", "court", "police", "museum", "airport",
    "energy", "water", "housing", "workers", "union", "company", "profits", "shares", "mayor",
    "election", "teachers", "students", "doctors", "nurses", "tourists", "fishing", "forest",
    "mountain", "village", "city", "coast", "island", "north", "south", "east", "west", "morning",
    "evening", "week", "year", "plan", "law", "tax", "road", "ferry", "cargo", "port", "summit",
];

/// One synthetic RSS 2.0 feed: `entries` items of about 1.7 kB each, all
/// different, deterministic.
pub fn feed_xml(feed: usize, entries: usize) -> Vec<u8> {
    let mut xml = String::with_capacity(entries * 1800 + 600);
    let _ = write!(
        xml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\n<channel>\n<title>Farm outlet {feed}</title>\n<link>https://outlet{feed}.example/</link>\n<description>Synthetic feed number {feed} for benchmarks.</description>\n<copyright>Copyright Outlet {feed}</copyright>\n"
    );
    for e in 0..entries {
        let day = 1 + (e % 27);
        let hour = (feed + e) % 24;
        let _ = write!(
            xml,
            "<item>\n<title>Outlet {feed} reports development number {e} in the long running story</title>\n<link>https://outlet{feed}.example/news/2026/11/{day:02}/story-{e}</link>\n<guid isPermaLink=\"false\">outlet-{feed}-story-{e}</guid>\n<dc:creator>Reporter {r}</dc:creator>\n<pubDate>{weekday}, {day:02} Nov 2026 {hour:02}:{min:02}:00 +0000</pubDate>\n<description><![CDATA[<p>",
            r = e % 17,
            weekday = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][(day + 6) % 7],
            min = e % 60,
        );
        // About 1.4 kB of prose per item, its words drawn pseudo-randomly
        // (seeded by feed and item) so that no two items read alike: each is
        // a story of its own, also to newsriver's near-duplicate matching
        // (a fixed sentence template would make every item one story).
        let mut seed = ((feed as u64) << 32 | e as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let start = xml.len();
        while xml.len() - start < 1400 {
            let mut sentence = Vec::with_capacity(12);
            for _ in 0..12 {
                // xorshift64
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                sentence.push(WORDS[(seed % WORDS.len() as u64) as usize]);
            }
            let _ = write!(xml, "{}. ", sentence.join(" "));
        }
        xml.push_str("</p>]]></description>\n</item>\n");
    }
    xml.push_str("</channel>\n</rss>\n");
    xml.into_bytes()
}

/// How the farm answers conditional requests.
#[derive(Debug)]
struct FarmState {
    bodies: Vec<Bytes>,
    /// When false, validators are ignored: every request gets a full 200.
    honour_validators: AtomicBool,
    /// A fixed document (gzip-encoded) for the static-server baseline of P3.
    static_doc: std::sync::RwLock<Bytes>,
}

/// The feed farm: feed `i` at `/f/{i}.xml`, with an ETag, on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct Farm {
    pub addr: SocketAddr,
    state: Arc<FarmState>,
}

async fn serve_feed(
    UrlPath(name): UrlPath<String>,
    State(state): State<Arc<FarmState>>,
    headers: HeaderMap,
) -> Response<Body> {
    let index = name
        .strip_suffix(".xml")
        .and_then(|n| n.parse::<usize>().ok());
    let Some(body) = index.and_then(|i| state.bodies.get(i)) else {
        return Response::builder()
            .status(404)
            .body(Body::empty())
            .unwrap_or_default();
    };
    let etag = format!("\"farm-{}\"", index.unwrap_or_default());
    let builder = Response::builder().header(header::ETAG, &etag);
    if state.honour_validators.load(Ordering::Relaxed)
        && headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            == Some(etag.as_str())
    {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_default();
    }
    builder
        .header(header::CONTENT_TYPE, "application/rss+xml")
        .body(Body::from(body.clone()))
        .unwrap_or_default()
}

async fn serve_static(State(state): State<Arc<FarmState>>) -> Response<Body> {
    let doc = state
        .static_doc
        .read()
        .map(|d| d.clone())
        .unwrap_or_default();
    Response::builder()
        .header(header::CONTENT_TYPE, "application/atom+xml")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(doc))
        .unwrap_or_default()
}

impl Farm {
    /// Generates `feeds` × `entries` and serves them on 127.0.0.1:0.
    pub async fn start(feeds: usize, entries: usize) -> anyhow::Result<Farm> {
        let bodies: Vec<Bytes> = (0..feeds)
            .map(|i| Bytes::from(feed_xml(i, entries)))
            .collect();
        let state = Arc::new(FarmState {
            bodies,
            honour_validators: AtomicBool::new(true),
            static_doc: std::sync::RwLock::new(Bytes::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/f/{name}", get(serve_feed))
            .route("/static.atom", get(serve_static))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Farm { addr, state })
    }

    pub fn feeds(&self) -> usize {
        self.state.bodies.len()
    }

    pub fn url(&self, i: usize) -> String {
        format!("http://{}/f/{i}.xml", self.addr)
    }

    pub fn total_bytes(&self) -> usize {
        self.state.bodies.iter().map(Bytes::len).sum()
    }

    pub fn honour_validators(&self, yes: bool) {
        self.state.honour_validators.store(yes, Ordering::Relaxed);
    }

    pub fn set_static(&self, doc: Bytes) {
        if let Ok(mut slot) = self.state.static_doc.write() {
            *slot = doc;
        }
    }

    pub fn static_url(&self) -> String {
        format!("http://{}/static.atom", self.addr)
    }
}

// ------------------------------------------------------------ the ceilings

/// What a ceiling run does with each body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ceiling {
    /// Fetch and discard (the I/O ceiling).
    Fetch,
    /// Fetch, parse with feed-rs, discard (nothing that parses can beat it).
    FetchParse,
    /// Send the farm's ETag; the farm answers 304 (the bare 304 ceiling).
    Conditional,
}

/// Fetches every feed of the farm once with `concurrency` requests in flight.
/// Returns the wall time; fails if any request does not get the expected answer.
pub async fn ceiling(farm: &Farm, concurrency: usize, kind: Ceiling) -> anyhow::Result<Duration> {
    let client = reqwest::Client::builder().build()?;
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = stream::iter(0..farm.feeds())
        .map(|i| {
            let client = client.clone();
            let url = farm.url(i);
            async move {
                let mut request = client.get(&url);
                if kind == Ceiling::Conditional {
                    request = request.header(header::IF_NONE_MATCH, format!("\"farm-{i}\""));
                }
                let response = request.send().await?;
                let status = response.status().as_u16();
                let body = response.bytes().await?;
                match kind {
                    Ceiling::Conditional if status == 304 => Ok(()),
                    Ceiling::Fetch if status == 200 => Ok(()),
                    Ceiling::FetchParse if status == 200 => {
                        let entries = tokio::task::spawn_blocking(move || {
                            feed_rs::parser::parse(&body[..]).map(|f| f.entries.len())
                        })
                        .await??;
                        if entries == 0 {
                            bail!("{url}: parsed no entries");
                        }
                        Ok(())
                    }
                    _ => bail!("{url}: unexpected status {status} for {kind:?}"),
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    Ok(elapsed)
}

/// A run of the store floor: its wall time, and the CPU time of its one
/// writer thread and of its parses (summed over the threads that ran them).
#[derive(Debug, Clone, Copy, Default)]
pub struct Floor {
    pub wall: Duration,
    pub writer_cpu: Duration,
    pub parse_cpu: Duration,
}

/// One parsed entry as the store floor keeps it.
struct FloorRow {
    feed: i64,
    guid: String,
    title: Option<String>,
    link: Option<String>,
    author: Option<String>,
    summary: Option<String>,
    content: Option<String>,
    published: Option<i64>,
    updated: Option<i64>,
}

/// What the store floor does with each body before its rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorStage {
    /// Parse with feed-rs (the fetch+parse ceiling's work).
    FeedRs,
    /// newsriver's own parse stage: `parse::parse` (feed-rs, conversion,
    /// sanitising) and `identity::identify` (keys, hashes, canonical links,
    /// near-duplicate fingerprints), as its parse threads run it.
    Newsriver,
}

fn floor_parse(
    stage: FloorStage,
    feed: usize,
    url: &str,
    body: &[u8],
) -> anyhow::Result<Vec<FloorRow>> {
    Ok(match stage {
        FloorStage::FeedRs => floor_rows(feed, feed_rs::parser::parse(body)?),
        FloorStage::Newsriver => {
            let doc = newsriver::parse::parse(body, Some("application/rss+xml"), url)?;
            newsriver::identity::identify(doc.entries)
                .into_iter()
                .map(|i| FloorRow {
                    feed: feed as i64,
                    guid: i.key,
                    title: Some(i.entry.title),
                    link: i.entry.link,
                    author: i.entry.author,
                    summary: i.entry.summary,
                    content: i.entry.content,
                    published: i.entry.published.map(|d| d.timestamp()),
                    updated: i.entry.updated.map(|d| d.timestamp()),
                })
                .collect()
        }
    })
}

fn floor_rows(feed: usize, parsed: feed_rs::model::Feed) -> Vec<FloorRow> {
    parsed
        .entries
        .into_iter()
        .map(|e| FloorRow {
            feed: feed as i64,
            guid: e.id,
            title: e.title.map(|t| t.content),
            link: e.links.into_iter().next().map(|l| l.href),
            author: e.authors.into_iter().next().and_then(|a| a.name),
            summary: e.summary.map(|t| t.content),
            content: e.content.and_then(|c| c.body),
            published: e.published.map(|d| d.timestamp()),
            updated: e.updated.map(|d| d.timestamp()),
        })
        .collect()
}

/// The store floor: the fetch+parse ceiling, and every parsed entry's fields
/// written as one row by one writer thread into a new SQLite database at
/// `db` (WAL, `synchronous = NORMAL`, 8 KiB pages, as newsriver's), one
/// transaction for whatever documents are waiting, no index but the rowid,
/// no deduplication: about the least a program can do that parses the farm
/// and keeps every entry in one SQLite database with these settings (its
/// CPU times are the floor; its wall time is how a plain program of that
/// kind runs). Fails unless every entry was stored.
pub async fn store_floor(
    farm: &Farm,
    concurrency: usize,
    stage: FloorStage,
    db: &Path,
) -> anyhow::Result<Floor> {
    remove_database(db);
    let conn = rusqlite::Connection::open(db)?;
    conn.execute_batch(
        "PRAGMA page_size = 8192; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE entries (id INTEGER PRIMARY KEY, feed INTEGER NOT NULL, guid TEXT NOT NULL,
             title TEXT, link TEXT, author TEXT, summary TEXT, content TEXT,
             published INTEGER, updated INTEGER);",
    )?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<FloorRow>>(concurrency.max(1) * 2);
    let client = reqwest::Client::builder().build()?;
    let started = Instant::now();
    let writer = std::thread::spawn(move || -> anyhow::Result<(i64, Duration)> {
        let mut conn = conn;
        while let Ok(first) = rx.recv() {
            let t = conn.transaction()?;
            {
                let mut insert = t.prepare_cached(
                    "INSERT INTO entries (feed, guid, title, link, author, summary, content, published, updated)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                for rows in std::iter::once(first).chain(rx.try_iter()) {
                    for r in rows {
                        insert.execute(rusqlite::params![
                            r.feed,
                            r.guid,
                            r.title,
                            r.link,
                            r.author,
                            r.summary,
                            r.content,
                            r.published,
                            r.updated
                        ])?;
                    }
                }
            }
            t.commit()?;
        }
        let cpu = thread_cpu();
        let stored: i64 = conn.query_row("SELECT count(*) FROM entries", [], |r| r.get(0))?;
        Ok((stored, cpu))
    });
    let results: Vec<anyhow::Result<(usize, Duration)>> = stream::iter(0..farm.feeds())
        .map(|i| {
            let (client, tx) = (client.clone(), tx.clone());
            let url = farm.url(i);
            async move {
                let response = client.get(&url).send().await?;
                let status = response.status().as_u16();
                let body = response.bytes().await?;
                if status != 200 {
                    bail!("{url}: unexpected status {status}");
                }
                let (rows, parse_cpu) = tokio::task::spawn_blocking(move || {
                    let before = thread_cpu();
                    let rows = floor_parse(stage, i, &url, &body)?;
                    anyhow::Ok((rows, thread_cpu().saturating_sub(before)))
                })
                .await??;
                let n = rows.len();
                // The writer holds few documents at once: waiting for room
                // is back-pressure, on a blocking thread.
                tokio::task::spawn_blocking(move || tx.send(rows))
                    .await?
                    .map_err(|_| anyhow!("the store floor's writer stopped"))?;
                Ok((n, parse_cpu))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    drop(tx);
    let (stored, writer_cpu) = writer
        .join()
        .map_err(|_| anyhow!("the store floor's writer panicked"))??;
    let wall = started.elapsed();
    let (mut parsed, mut parse_cpu) = (0, Duration::ZERO);
    for result in results {
        let (n, cpu) = result?;
        parsed += n;
        parse_cpu += cpu;
    }
    if usize::try_from(stored).ok() != Some(parsed) || parsed == 0 {
        bail!("the store floor stored {stored} of {parsed} parsed entries");
    }
    Ok(Floor {
        wall,
        writer_cpu,
        parse_cpu,
    })
}

/// Removes an SQLite database and its WAL and shared-memory files, where
/// they exist.
fn remove_database(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = db.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

/// CPU time of the calling thread so far.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

// ---------------------------------------------------------- newsriver runs

/// Writes a config for the farm's feeds with its database in `folder`.
pub fn write_config(
    farm: &Farm,
    folder: &Path,
    concurrency: usize,
    served_entries: usize,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(folder)?;
    let mut toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = \"river.db\"\n[fetch]\ninterval = \"6h\"\njitter = 0.0\nconcurrency = {concurrency}\nhost_concurrency = {concurrency}\nhost_gap = \"0s\"\n[output]\ntitle = \"Bench river\"\nentries = {served_entries}\n"
    );
    for i in 0..farm.feeds() {
        let _ = write!(toml, "[[feed]]\nurl = \"{}\"\n", farm.url(i));
    }
    let path = folder.join("bench.toml");
    std::fs::write(&path, toml)?;
    Ok(path)
}

/// The outcome of one `newsriver poll --once`.
#[derive(Debug, Clone)]
pub struct PollRun {
    pub wall: Duration,
    /// The process's CPU time, user and system (Linux; 10 ms resolution).
    pub cpu: Option<Duration>,
    pub summary: String,
    pub new_entries: usize,
    pub peak_rss_kib: u64,
}

/// Peak resident set (VmHWM) of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Waits for a child, sampling its peak RSS every 10 ms.
fn wait_sampling(child: &mut Child) -> anyhow::Result<(std::process::ExitStatus, u64)> {
    // The sampler runs beside a blocking wait, so the wall time ends when the
    // process does, not at the next sample.
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(rss) = peak_rss_kib(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let status = child.wait();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    Ok((status?, peak.load(Ordering::Relaxed)))
}

/// CPU time (user and system) of this process's children that have ended
/// and been waited for: `cutime` and `cstime` of `/proc/self/stat`, in the
/// kernel's 100 Hz ticks. `None` off Linux.
fn children_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at the
    // third, the state; cutime and cstime are the 16th and 17th.
    let mut after_name = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let user: u64 = after_name.nth(13)?.parse().ok()?;
    let system: u64 = after_name.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}

/// Runs `newsriver poll --once` against `config` and times it.
pub async fn poll_once(newsriver: &Path, config: &Path) -> anyhow::Result<PollRun> {
    let newsriver = newsriver.to_path_buf();
    let config = config.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let cpu_before = children_cpu();
        let started = Instant::now();
        let mut child = Command::new(&newsriver)
            .args(["poll", "--once", "--config"])
            .arg(&config)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", newsriver.display()))?;
        let (status, peak) = wait_sampling(&mut child)?;
        let wall = started.elapsed();
        let cpu = children_cpu()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before));
        let mut summary = String::new();
        if let Some(mut out) = child.stdout.take() {
            std::io::Read::read_to_string(&mut out, &mut summary)?;
        }
        if !status.success() {
            bail!("poll --once failed: {status}: {summary}");
        }
        let summary = summary.trim().to_string();
        let new_entries = summary
            .split("; ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow!("cannot read the summary: {summary}"))?;
        if summary.contains(" 0 failed") {
            Ok(PollRun {
                wall,
                cpu,
                summary,
                new_entries,
                peak_rss_kib: peak,
            })
        } else {
            bail!("some feeds failed: {summary}")
        }
    })
    .await?
}

/// A running `newsriver run`, stopped with SIGTERM on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    pub url: String,
    pub startup: Duration,
}

impl Daemon {
    /// Starts the daemon and waits until `/feed.atom` answers 200; the startup
    /// time is from spawn to that first answer.
    pub async fn start(newsriver: &Path, config: &Path) -> anyhow::Result<Daemon> {
        let started = Instant::now();
        let mut child = Command::new(newsriver)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line
                    .split_whitespace()
                    .find(|w| w.starts_with("http://") && w.ends_with("/feed.atom"))
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .context("daemon start timed out")??;
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(&url).send().await
                && r.status() == 200
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("daemon never served {url}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Daemon {
            child,
            url,
            startup: started.elapsed(),
        })
    }

    pub fn peak_rss_kib(&self) -> u64 {
        peak_rss_kib(self.child.id()).unwrap_or(0)
    }

    pub fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                if status.success() {
                    return Ok(());
                }
                bail!("daemon exited with {status}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        bail!("daemon did not stop within 20 s of SIGTERM")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ------------------------------------------------------------------- load

/// Requests per second and latency of one URL under load.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub requests: usize,
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// A client as a feed reader is: it asks for gzip. It does not decompress,
/// so the load measures the servers, not the client.
fn reader_client(connections: usize) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        header::ACCEPT_ENCODING,
        reqwest::header::HeaderValue::from_static("gzip"),
    );
    Ok(reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .default_headers(headers)
        .pool_max_idle_per_host(connections)
        .build()?)
}

/// `url` as a reader gets it: the gzip-encoded bytes.
pub async fn fetch_encoded(url: &str) -> anyhow::Result<Bytes> {
    let response = reader_client(1)?.get(url).send().await?;
    let encoding = response
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    if encoding != Some("gzip") {
        bail!("{url} did not answer with gzip");
    }
    Ok(response.bytes().await?)
}

/// `connections` clients each requesting `url` back to back for `duration`.
pub async fn load(url: &str, connections: usize, duration: Duration) -> anyhow::Result<Load> {
    let client = reader_client(connections)?;
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let client = client.clone();
        let url = url.to_string();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let response = client.get(&url).send().await?;
                if response.status() != 200 {
                    bail!("{url}: status {}", response.status());
                }
                response.bytes().await?;
                latencies.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done??);
    }
    let elapsed = started.elapsed();
    if all.is_empty() {
        bail!("no request completed");
    }
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Ok(Load {
        requests: all.len(),
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    })
}

// ------------------------------------------------------------------ report

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn db_size(folder: &Path) -> u64 {
    ["river.db", "river.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(folder.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// The cold ingest and what it is compared with.
#[derive(Debug, Clone)]
pub struct P1 {
    pub cold: PollRun,
    /// The fetch and fetch+parse ceilings.
    pub fetch: Duration,
    pub fetch_parse: Duration,
    /// The store floor, with feed-rs ([`FloorStage::FeedRs`]) and with
    /// newsriver's parse stage ([`FloorStage::Newsriver`]).
    pub floor: Floor,
    pub stage_floor: Floor,
}

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub struct Results {
    pub farm_bytes: usize,
    /// Cores this process could run on.
    pub cores: usize,
    pub p1: Option<P1>,
    pub p2_304: Option<(PollRun, Duration)>,
    pub p2_200: Option<(PollRun, Duration)>,
    pub p3: Option<(Load, Load, usize)>,
    pub p4: Option<(u64, u64, Duration, u64, usize)>,
    pub p5: Vec<(usize, Duration)>,
}

/// Runs P1–P5 and returns the figures.
pub async fn run_all(p: &Params, log: impl Fn(&str)) -> anyhow::Result<Results> {
    let mut r = Results {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        ..Results::default()
    };

    // P1 and P2 on the main farm.
    log(&format!(
        "generating the farm: {} feeds × {} entries",
        p.feeds, p.entries
    ));
    let farm = Farm::start(p.feeds, p.entries).await?;
    r.farm_bytes = farm.total_bytes();
    let folder = p.work.join(format!("farm-{}", p.feeds));
    let _ = std::fs::remove_dir_all(&folder);
    let config = write_config(&farm, &folder, p.concurrency, p.served_entries)?;

    log("P1: ceilings, then newsriver poll --once (cold)");
    let io = fastest(
        p.repeat,
        || ceiling(&farm, p.concurrency, Ceiling::Fetch),
        itself,
    )
    .await?;
    let parse = fastest(
        p.repeat,
        || ceiling(&farm, p.concurrency, Ceiling::FetchParse),
        itself,
    )
    .await?;
    let floor_db = p.work.join("store-floor.db");
    let floor = fastest(
        p.repeat,
        || store_floor(&farm, p.concurrency, FloorStage::FeedRs, &floor_db),
        |f: &Floor| f.wall,
    )
    .await?;
    let stage_floor = fastest(
        p.repeat,
        || store_floor(&farm, p.concurrency, FloorStage::Newsriver, &floor_db),
        |f: &Floor| f.wall,
    )
    .await?;
    remove_database(&floor_db);
    // Each run is a cold ingest into a new database; P2 re-polls the last.
    let cold = fastest(
        p.repeat,
        || async {
            remove_database(&folder.join("river.db"));
            poll_once(&p.newsriver, &config).await
        },
        wall_of,
    )
    .await?;
    if cold.new_entries != p.feeds * p.entries {
        bail!(
            "cold poll stored {} entries, expected {}",
            cold.new_entries,
            p.feeds * p.entries
        );
    }
    r.p1 = Some(P1 {
        cold,
        fetch: io,
        fetch_parse: parse,
        floor,
        stage_floor,
    });

    log("P2: warm re-poll answered by 304s");
    farm.honour_validators(true);
    let bare_304 = fastest(
        p.repeat,
        || ceiling(&farm, p.concurrency, Ceiling::Conditional),
        itself,
    )
    .await?;
    let warm_304 = fastest(p.repeat, || poll_once(&p.newsriver, &config), wall_of).await?;
    r.p2_304 = Some((warm_304, bare_304));

    log("P2: warm re-poll answered by 200s with unchanged bodies");
    farm.honour_validators(false);
    let bare_200 = fastest(
        p.repeat,
        || ceiling(&farm, p.concurrency, Ceiling::Fetch),
        itself,
    )
    .await?;
    let warm_200 = fastest(p.repeat, || poll_once(&p.newsriver, &config), wall_of).await?;
    if warm_200.new_entries != 0 {
        bail!(
            "an unchanged re-poll stored {} new entries",
            warm_200.new_entries
        );
    }
    r.p2_200 = Some((warm_200, bare_200));
    farm.honour_validators(true);

    log("P3: serving /feed.atom under load, against a static server with the same bytes");
    let daemon = Daemon::start(&p.newsriver, &config).await?;
    let doc = fetch_encoded(&daemon.url).await?;
    let mut xml = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&doc[..]), &mut xml)?;
    let served = xml.windows(7).filter(|w| w == b"<entry>").count();
    farm.set_static(doc);
    let _warm = load(&daemon.url, p.connections, p.load_time / 5).await?;
    // Alternately, `repeat` times each; the run with the most requests a
    // second counts for each side.
    let (mut ours, mut baseline) = (None::<Load>, None::<Load>);
    for _ in 0..p.repeat.max(1) {
        let mine = load(&daemon.url, p.connections, p.load_time).await?;
        if ours.as_ref().is_none_or(|o| mine.rps > o.rps) {
            ours = Some(mine);
        }
        let theirs = load(&farm.static_url(), p.connections, p.load_time).await?;
        if baseline.as_ref().is_none_or(|b| theirs.rps > b.rps) {
            baseline = Some(theirs);
        }
    }
    let (Some(ours), Some(baseline)) = (ours, baseline) else {
        bail!("no serving load was measured");
    };
    daemon.stop()?;
    r.p3 = Some((ours, baseline, served));
    drop(farm);

    // P5: growth, and P4 on the largest database.
    for &feeds in &p.growth {
        log(&format!(
            "P5: cold ingest of {feeds} feeds × {} entries",
            p.entries
        ));
        let farm = Farm::start(feeds, p.entries).await?;
        let folder = p.work.join(format!("growth-{feeds}"));
        let config = folder.join("bench.toml");
        let runs = if feeds <= REPEATED_GROWTH {
            p.repeat
        } else {
            1
        };
        // Each run is a cold ingest into a new database.
        let run = fastest(
            runs,
            || async {
                let _ = std::fs::remove_dir_all(&folder);
                write_config(&farm, &folder, p.concurrency, p.served_entries)?;
                poll_once(&p.newsriver, &config).await
            },
            wall_of,
        )
        .await?;
        r.p5.push((feeds, run.wall));
        if feeds == p.footprint_feeds {
            log("P4: footprint of newsriver run on that database");
            let entries = run.new_entries;
            let daemon = Daemon::start(&p.newsriver, &config).await?;
            let startup = daemon.startup;
            let _ = load(&daemon.url, p.connections, p.load_time / 2).await?;
            let rss = daemon.peak_rss_kib();
            daemon.stop()?;
            r.p4 = Some((rss, db_size(&folder), startup, run.peak_rss_kib, entries));
        }
    }
    Ok(r)
}

/// BENCHMARKS.md text for the results.
pub fn report(p: &Params, r: &Results, machine: &str, command: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# newsriver benchmarks\n");
    let _ = writeln!(
        md,
        "Every figure is measured in one run on one machine, beside its ceiling measured in the same run; ratios are what to compare between runs (these machines are shared and noisy).\n"
    );
    let _ = writeln!(md, "- Machine: {machine}");
    let _ = writeln!(md, "- Command: `{command}`");
    let _ = writeln!(
        md,
        "- Farm: {} feeds × {} entries = {:.1} MB of RSS 2.0 served from loopback by the harness's in-process static server (axum, bodies in memory); fetch concurrency {} for newsriver and the ceilings alike.\n",
        p.feeds,
        p.entries,
        r.farm_bytes as f64 / 1e6,
        p.concurrency
    );
    let _ = writeln!(
        md,
        "| measure | newsriver | ceiling | ratio | target |\n|---|---|---|---|---|"
    );
    if let Some(p1) = &r.p1 {
        let (cold, parse) = (&p1.cold, p1.fetch_parse);
        let _ = writeln!(
            md,
            "| P1 cold ingest (`poll --once`, {} entries) | {} | fetch+parse {} (fetch only {}; store floor {}, {:.2}× fetch+parse; newsriver's parse stage and bare rows {}, {:.2}×) | **{:.2}×** fetch+parse, {:.2}× store floor, {:.2}× fetch | ≤ 2× fetch+parse |",
            cold.new_entries,
            secs(cold.wall),
            secs(parse),
            secs(p1.fetch),
            secs(p1.floor.wall),
            ratio(p1.floor.wall, parse),
            secs(p1.stage_floor.wall),
            ratio(p1.stage_floor.wall, parse),
            ratio(cold.wall, parse),
            ratio(cold.wall, p1.floor.wall),
            ratio(cold.wall, p1.fetch)
        );
    }
    if let Some((warm, bare)) = &r.p2_304 {
        let _ = writeln!(
            md,
            "| P2 warm re-poll, all 304 | {} | bare conditional GETs {} | **{:.2}×** | ≤ 2× |",
            secs(warm.wall),
            secs(*bare),
            ratio(warm.wall, *bare)
        );
    }
    if let Some((warm, bare)) = &r.p2_200 {
        let _ = writeln!(
            md,
            "| P2 warm re-poll, all 200 unchanged | {} | bare GETs {} | **{:.2}×** | ≤ 2× |",
            secs(warm.wall),
            secs(*bare),
            ratio(warm.wall, *bare)
        );
    }
    if let Some((ours, base, served)) = &r.p3 {
        let _ = writeln!(
            md,
            "| P3 `/feed.atom` ({served} entries), {} connections | {:.0} req/s, p50 {}, p99 {} | static server, same bytes: {:.0} req/s, p99 {} | **{:.2}×** throughput | ≥ 0.8×, p99 < 5 ms |",
            p.connections,
            ours.rps,
            ms(ours.p50),
            ms(ours.p99),
            base.rps,
            ms(base.p99),
            ours.rps / base.rps.max(1e-9)
        );
    }
    if let Some((rss, size, startup, poll_rss, entries)) = &r.p4 {
        let _ = writeln!(
            md,
            "| P4 peak RSS of `run` ({} feeds, {entries} entries) | {:.1} MiB | — | — | < 64 MiB |",
            p.footprint_feeds,
            *rss as f64 / 1024.0
        );
        let _ = writeln!(
            md,
            "| P4 peak RSS of the `poll --once` that built it | {:.1} MiB | — | — | — |",
            *poll_rss as f64 / 1024.0
        );
        let _ = writeln!(
            md,
            "| P4 database size | {:.1} MiB | — | — | — |",
            *size as f64 / 1048576.0
        );
        let _ = writeln!(
            md,
            "| P4 start-up (spawn → first `/feed.atom` 200) | {} | — | — | < 200 ms |",
            ms(*startup)
        );
    }
    if let (Some(first), Some(last)) = (r.p5.first(), r.p5.last()) {
        let per = |(f, t): &(usize, Duration)| t.as_secs_f64() / *f as f64;
        let series: Vec<String> =
            r.p5.iter()
                .map(|x| {
                    format!(
                        "{} feeds: {} ({:.2} ms/feed)",
                        x.0,
                        secs(x.1),
                        per(x) * 1000.0
                    )
                })
                .collect();
        let _ = writeln!(
            md,
            "| P5 cost per feed, {} → {} feeds | {} | — | **{:.2}×** | ≤ 1.2× |",
            first.0,
            last.0,
            series.join("; "),
            per(last) / per(first).max(1e-12)
        );
    }
    if let Some(p1) = &r.p1 {
        let cores = r.cores.max(1) as u32;
        let cpu = |f: &Floor| f.writer_cpu + f.parse_cpu;
        let line = |name: &str, f: &Floor| {
            format!(
                "{name} {} ({} in its one SQLite writer thread, {} in its parse stage); spread perfectly over {} cores, {}, {:.2}× the fetch+parse ceiling",
                secs(cpu(f)),
                secs(f.writer_cpu),
                secs(f.parse_cpu),
                r.cores,
                secs(cpu(f) / cores),
                ratio(cpu(f) / cores, p1.fetch_parse)
            )
        };
        let _ = writeln!(
            md,
            "\nCPU time of a cold ingest of the farm: {}; {}. newsriver's `poll --once`: {} (user and system), {:.2}× the store floor's.",
            line("the store floor", &p1.floor),
            line("with newsriver's parse stage", &p1.stage_floor),
            p1.cold.cpu.map_or("not measured".into(), secs),
            p1.cold.cpu.map_or(0.0, |c| ratio(c, cpu(&p1.floor))),
        );
    }
    let _ = writeln!(
        md,
        "\nEach figure is the fastest of {} runs (noise on a shared machine only adds time; for the serving load, the run with the most requests a second, each side alternately), except growth points above {REPEATED_GROWTH} feeds, run once. Ceilings: *fetch* = the same URLs fetched with reqwest at the same concurrency, bodies discarded; *fetch+parse* = the same, each body parsed by feed-rs 3 and discarded; *store floor* = fetch+parse, then each parsed entry's fields (guid, title, link, author, summary, content, dates) inserted as a row by one writer thread into a new SQLite database with newsriver's journal settings (WAL, `synchronous = NORMAL`, 8 KiB pages), the documents waiting committed together, no index but the rowid and no deduplication (the second store floor parses with newsriver's own parse stage instead of bare feed-rs: conversion, sanitising, keys, hashes and fingerprints); *bare* = the same requests (with the same validators for 304s), nothing else done. The P3 baseline is the same document, as the same gzip-encoded bytes newsriver sent, served from memory by the harness's static route; both are loaded by the same in-process client, which asks for gzip like a feed reader and does not decompress.",
        p.repeat.max(1)
    );
    md
}
