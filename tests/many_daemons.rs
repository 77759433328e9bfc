//! Several `newsriver run` processes sharing one PostgreSQL database and one
//! feed set: each due feed polled by one daemon, a killed daemon's feeds
//! taken over, one story for one report whichever daemons fetched its
//! copies, and the same river served by every daemon. Needs the test
//! PostgreSQL server (`./scripts/test.sh` starts one); runs on it whatever
//! NEWSRIVER_TEST_BACKEND says.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{FixtureServer, Route};

const FEEDS: usize = 24;
const ITEMS: usize = 3;
/// Every feed's interval.
const INTERVAL: Duration = Duration::from_secs(3);

fn rss(n: usize) -> String {
    let mut items = String::new();
    for i in 0..ITEMS {
        items.push_str(&format!(
            "<item><title>Feed {n} report {i}</title><guid>f{n}-{i}</guid>\
             <link>http://f{n}.example/{i}</link><description>Report {i} of feed {n}.</description></item>"
        ));
    }
    // Feeds 0 and 1 both carry the same wire story, under their own guids.
    if n < 2 {
        items.push_str(&format!(
            "<item><title>Port strike ends after talks</title><guid>wire-{n}</guid>\
             <link>https://wire.example/port-strike</link><description>The strike ended.</description></item>"
        ));
    }
    format!(
        "<rss version=\"2.0\"><channel><title>Feed {n}</title><link>http://f{n}.example/</link>{items}</channel></rss>"
    )
}

/// `n` distinct free addresses: every listener is held until all are
/// chosen (a port released at once may be handed out again).
fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners.iter().map(|l| l.local_addr().unwrap()).collect()
}

/// One daemon's config: the shared database and feeds, its own address.
fn config(
    dir: &Path,
    name: &str,
    url: &str,
    addr: SocketAddr,
    feeds: &[String],
) -> std::path::PathBuf {
    let mut toml = format!(
        "[server]\nlisten = \"{addr}\"\n[storage]\nurl = \"{url}\"\n\
         [output]\nbase_url = \"http://river.example/\"\n\
         [fetch]\njitter = 0.0\nhost_gap = \"1ms\"\nhost_concurrency = 4\n"
    );
    for feed in feeds {
        toml.push_str(&format!("[[feed]]\nurl = \"{feed}\"\ninterval = \"3s\"\n"));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    path
}

/// Starts a daemon logging to `<config>.log`, for [`log_of`].
fn start(config: &Path) -> Child {
    let log = std::fs::File::create(config.with_extension("log")).unwrap();
    common::process::newsriver()
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "newsriver=info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// The end of a daemon's log, for a failure message.
fn log_of(config: &Path) -> String {
    let log = std::fs::read_to_string(config.with_extension("log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

async fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "timed out after {secs}s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The requests for each feed path, in order of arrival.
fn requests(server: &FixtureServer, paths: &[String]) -> Vec<Vec<Instant>> {
    paths
        .iter()
        .map(|p| server.seen(p).iter().map(|s| s.at).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_share_one_feed_set_survive_a_kill_and_serve_one_river() {
    let server = FixtureServer::start().await;
    let paths: Vec<String> = (0..FEEDS).map(|n| format!("/feed/{n}.xml")).collect();
    for (n, path) in paths.iter().enumerate() {
        server.set(path, Route::feed(rss(n), "application/rss+xml"));
    }
    let feeds: Vec<String> = paths.iter().map(|p| server.url(p)).collect();
    let url = common::backend::fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let addrs = free_addrs(3);
    let configs: Vec<_> = addrs
        .iter()
        .enumerate()
        .map(|(i, addr)| config(dir.path(), &format!("d{i}"), &url, *addr, &feeds))
        .collect();
    let mut daemons: Vec<Child> = configs.iter().map(|c| start(c)).collect();
    let began = Instant::now();

    // Every feed polled, and polled again: several intervals.
    wait_until("every feed polled three times", 30, || {
        requests(&server, &paths).iter().all(|r| r.len() >= 3)
    })
    .await;

    // SIGKILL one daemon mid-run; the others take its feeds over.
    daemons[0].kill().unwrap();
    daemons[0].wait().unwrap();
    let killed = Instant::now();
    wait_until("every feed polled after the kill", 30, || {
        requests(&server, &paths)
            .iter()
            .all(|r| r.iter().filter(|at| **at > killed + INTERVAL).count() >= 2)
    })
    .await;
    let takeover = requests(&server, &paths)
        .iter()
        .filter_map(|r| r.iter().find(|at| **at > killed).map(|at| *at - killed))
        .max()
        .unwrap();

    // No feed polled twice within its interval, by any pair of daemons: a
    // second daemon polling the same feed would leave two requests close
    // together. (Times are stored in whole seconds: a next poll may come
    // up to a second early.)
    let all = requests(&server, &paths);
    for (path, times) in paths.iter().zip(&all) {
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= INTERVAL - Duration::from_secs(1),
                "{path} polled twice {gap:?} apart: {:?}",
                times.iter().map(|t| *t - began).collect::<Vec<_>>()
            );
        }
    }

    // Every entry stored once; the wire story is one story crediting both.
    let store = newsriver::Store::open_postgres(&url, Duration::from_secs(10), 2).unwrap();
    assert_eq!(store.duplicate_entries().unwrap(), 0);
    assert_eq!(store.entry_count().unwrap(), (FEEDS * ITEMS + 2) as u64);
    assert_eq!(store.story_count().unwrap(), (FEEDS * ITEMS + 1) as u64);
    let stories = store.stories(200).unwrap();
    let wire = stories
        .iter()
        .find(|s| s.title == "Port strike ends after talks")
        .unwrap();
    assert_eq!(wire.also.len(), 1, "the other outlet is credited");

    // The two living daemons serve the same river: same bytes, same ETag.
    // (Every successful poll moves its source's <updated>; with the feeds
    // failing from now on, the river holds still.)
    for path in &paths {
        server.set(path, Route::Status(500));
    }
    tokio::time::sleep(INTERVAL + Duration::from_secs(2)).await;
    let client = reqwest::Client::new();
    let mut served = Vec::new();
    for (i, addr) in addrs.iter().enumerate().skip(1) {
        let status = daemons[i].try_wait().unwrap();
        assert!(
            status.is_none(),
            "daemon {i} exited ({status:?}):\n{}",
            log_of(&configs[i])
        );
        let response = client
            .get(format!("http://{addr}/feed.atom"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("daemon {i}: {e}\n{}", log_of(&configs[i])));
        assert_eq!(response.status(), 200);
        let etag = response.headers()["etag"].to_str().unwrap().to_string();
        served.push((etag, response.text().await.unwrap()));
    }
    assert_eq!(served[0], served[1], "the daemons serve different rivers");
    assert_eq!(served[0].1.matches("<entry>").count(), FEEDS * ITEMS + 1);

    for daemon in &mut daemons[1..] {
        common::process::kill("-TERM", daemon);
        daemon.wait().unwrap();
    }
    let polls: usize = all.iter().map(Vec::len).sum();
    eprintln!(
        "three daemons, {FEEDS} feeds: {polls} polls, none within an interval of another of its feed; \
         a killed daemon's feeds taken over after {takeover:?} at most"
    );
}
