//! SIGKILL a real `newsriver run` mid-ingest, again and again: every committed
//! entry survives, the database stays intact, and each restart resumes with no
//! duplicates until every entry is in.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::faults::{Fault, FaultServer};
use rusqlite::{Connection, OpenFlags};

const FEEDS: usize = 40;
const ITEMS: usize = 300;

fn big_feed(n: usize) -> String {
    let filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(30);
    let mut rss = format!(
        "<rss version=\"2.0\"><channel><title>Feed {n}</title><link>http://f{n}.example/</link>"
    );
    for i in 0..ITEMS {
        rss.push_str(&format!(
            "<item><title>Feed {n} item {i}</title><guid>f{n}-{i}</guid><link>http://f{n}.example/{i}</link><description>{filler} {i}</description></item>"
        ));
    }
    rss.push_str("</channel></rss>");
    rss
}

fn count(db: &std::path::Path) -> u64 {
    if common::backend::backend() == common::backend::Backend::Postgres {
        return common::open_store(db)
            .and_then(|s| s.entry_count())
            .unwrap_or(0);
    }
    let Ok(conn) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row("SELECT COUNT(*) FROM entries", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
        .unwrap_or(0)
}

fn start(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_newsriver"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_ingest_loses_nothing_committed_and_restarts_without_duplicates() {
    let server = FaultServer::start().await;
    let mut urls = Vec::new();
    for n in 0..FEEDS {
        let path = format!("/feed/{n}");
        server.set(&path, Fault::body("application/rss+xml", big_feed(n)));
        urls.push(server.url(&path));
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("river.db");
    let config = dir.path().join("river.toml");
    let mut toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{}[fetch]\nconcurrency = 3\nhost_gap = \"1ms\"\nhost_concurrency = 3\n",
        common::storage_toml(&db)
    );
    toml.push_str(&common::feed_tables(&urls));
    std::fs::write(&config, toml).unwrap();
    let total = (FEEDS * ITEMS) as u64;

    let mut kills = 0;
    let mut seen_before_kill = 0;
    while kills < 5 {
        let mut child = start(&config);
        let began = Instant::now();
        // Kill once this run has committed something but not everything.
        let at_start = count(&db);
        assert!(
            at_start >= seen_before_kill,
            "committed entries lost: {at_start} < {seen_before_kill}"
        );
        loop {
            tokio::time::sleep(Duration::from_millis(15)).await;
            let now = count(&db);
            if now > at_start || began.elapsed() > Duration::from_secs(30) {
                seen_before_kill = now;
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        if seen_before_kill >= total {
            break;
        }
    }
    assert!(kills >= 3, "killed {kills} times before ingest finished");
    let after_kills = count(&db);
    assert!(after_kills >= seen_before_kill);
    assert!(
        after_kills < total,
        "the kills came mid-ingest ({after_kills}/{total})"
    );

    // A last start finishes the job.
    let mut child = start(&config);
    let began = Instant::now();
    while count(&db) < total && began.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    common::process::kill("-TERM", &child);
    child.wait().unwrap();

    let store = common::open_store(&db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert_eq!(store.entry_count().unwrap(), total);
    assert_eq!(store.duplicate_entries().unwrap(), 0);
    for feed in store.feed_statuses().unwrap() {
        assert_eq!(feed.entries, ITEMS as u64, "{}", feed.url);
    }
    eprintln!(
        "durability: {kills} SIGKILLs mid-ingest ({after_kills}/{total} entries by then); all {total} in after restart, no duplicates, integrity ok"
    );
}
