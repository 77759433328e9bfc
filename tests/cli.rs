//! The `newsriver` binary: `check`, `poll --once`, `run` (SIGTERM) and `demo`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::process::{kill, lines_of, newsriver};

fn check(dir: &Path, toml: &str) -> (bool, String, String) {
    let path = dir.join("config.toml");
    std::fs::write(&path, toml).unwrap();
    let out = newsriver()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_the_example_config_and_prints_a_summary() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let out = newsriver()
        .args(["check", "--config"])
        .arg(&example)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(": ok: 3 feeds, 3 tags"), "{stdout}");
}

#[test]
fn check_rejects_invalid_configs_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml").display().to_string();
    let cases = [
        (
            "[fetch]\ntimeout = \"20s\"\ntimeuot = \"5s\"\n",
            "3:1: unknown field `timeuot`, expected one of",
        ),
        (
            "[[feed]]\nurl = \"htp:/broken\"\n",
            "2:7: invalid URL \"htp:/broken\"",
        ),
        ("[[feed]]\ntitle = \"No URL\"\n", "1:1: missing field `url`"),
        (
            "[[feed]]\nurl = \"https://a.example/\"\ninterval = \"10 minutes-ish\"\n",
            "3:12: invalid duration \"10 minutes-ish\"",
        ),
    ];
    for (toml, expected) in cases {
        let (ok, _, stderr) = check(dir.path(), toml);
        assert!(!ok, "accepted: {toml}");
        assert!(
            stderr.contains(&format!("{file}:{expected}")),
            "for {toml:?} got: {stderr}"
        );
    }
    let out = newsriver()
        .args(["check", "--config"])
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("missing.toml: cannot read the configuration")
    );
}

#[tokio::test]
async fn poll_once_prints_a_summary() {
    let server = common::FixtureServer::start().await;
    server.set("/rss2.xml", common::Route::fixture("rss2.xml"));
    server.set("/gone.xml", common::Route::Status(500));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[[feed]]\nurl = \"{}\"\n[[feed]]\nurl = \"{}\"\n",
            server.url("/rss2.xml"),
            server.url("/gone.xml")
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_newsriver"))
        .args(["poll", "--once", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("polled 2 feeds"), "{stdout}");
    assert!(
        stdout.contains("1 ok, 0 not modified, 1 failed; 4 new entries, 0 updated"),
        "{stdout}"
    );
    // One log line per poll, with status and counts.
    assert!(
        stderr.contains("poll: stored") && stderr.contains("new=4"),
        "{stderr}"
    );
    assert!(
        stderr.contains("poll: failed") && stderr.contains("status=500"),
        "{stderr}"
    );
    // The database sits beside the config file, its WAL emptied into it on
    // the way out (the next start need not read it back).
    assert!(dir.path().join("newsriver.db").exists());
    let wal = std::fs::metadata(dir.path().join("newsriver.db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "WAL left behind");
    // Without --once, poll explains itself.
    let out = newsriver()
        .args(["poll", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--once"));
}

/// Reads the child's stdout until a line containing `needle`, with a deadline.
fn wait_for_line(child: &mut std::process::Child, needle: &str) -> String {
    let rx = lines_of(child.stdout.take().unwrap());
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("line in time");
        if line.contains(needle) {
            return line;
        }
    }
}

fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("did not exit within 10 s");
}

#[test]
fn demo_serves_a_merged_feed_with_the_wire_story_from_two_outlets_and_exits_on_sigterm() {
    let mut child = newsriver()
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let line = wait_for_line(&mut child, "/feed.atom");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap()
        .to_string();
    assert!(
        !url.ends_with(":0/feed.atom"),
        "prints the bound port: {line}"
    );

    let body = plain_http::get(&url);
    let feed: atom_syndication::Feed = body.parse().unwrap();
    let sources: std::collections::BTreeSet<String> = feed
        .entries
        .iter()
        .filter_map(|e| e.source.as_ref().map(|s| s.title.value.clone()))
        .collect();
    assert_eq!(sources.len(), 4, "{sources:?}");
    let port_strike: Vec<_> = feed
        .entries
        .iter()
        .filter(|e| e.title.value.starts_with("Port strike ends"))
        .collect();
    // The wire story and Harbour Gazette's repost are one story crediting both.
    assert_eq!(port_strike.len(), 1);
    let story = port_strike[0];
    assert_eq!(story.source.as_ref().unwrap().title.value, "Meridian Wire");
    assert!(
        story
            .links
            .iter()
            .any(|l| l.rel == "via" && l.title.as_deref() == Some("Harbour Gazette")),
        "{:?}",
        story.links
    );
    // The wire gives a description only: the line follows the summary.
    let content = story.summary.as_ref().unwrap().value.clone();
    assert!(
        content.contains("Also reported by <a href=\"https://harbourgazette.example/"),
        "{content}"
    );

    kill("-TERM", &child);
    assert!(wait_exit(&mut child).success());
}

#[test]
fn run_serves_until_sigterm_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let mut child = newsriver()
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The log names the bound address.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let line = lines
        .find(|l| l.as_ref().is_ok_and(|l| l.contains("/feed.atom")))
        .unwrap()
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let body = plain_http::get(&url);
    assert!(body.contains("<feed"), "{body}");
    kill("-TERM", &child);
    assert!(wait_exit(&mut child).success());
    let wal = std::fs::metadata(dir.path().join("newsriver.db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "WAL left behind");
}

mod plain_http {
    /// A minimal blocking GET over a std TcpStream, so these tests need no runtime.
    pub fn get(url: &str) -> String {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(
            stream,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        body.to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_once_stops_on_sigterm_and_stores_what_it_polled() {
    use common::faults::{Fault, FaultServer};
    // One host, one request at a time: four quick feeds, then three that
    // never answer. SIGTERM comes while the first of those is under way.
    let server = FaultServer::start().await;
    let mut urls = Vec::new();
    for n in 0..4 {
        let path = format!("/fast/{n}");
        server.set(
            &path,
            Fault::body("application/rss+xml", common::fixture("rss2.xml")),
        );
        urls.push(server.url(&path));
    }
    for n in 0..3 {
        let path = format!("/hang/{n}");
        server.set(&path, Fault::Hang);
        urls.push(server.url(&path));
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("river.db");
    let mut toml = format!(
        "{}[fetch]\nconcurrency = 4\nhost_concurrency = 1\nhost_gap = \"1ms\"\ntransfer_deadline = \"3s\"\n",
        common::storage_toml(&db)
    );
    toml.push_str(&common::feed_tables(&urls));
    let config = dir.path().join("river.toml");
    std::fs::write(&config, toml).unwrap();

    let mut child = newsriver()
        .args(["poll", "--once", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The feeds wait for the host in no set order: the signal comes as soon
    // as a silent one is under way, whatever came before it.
    let hang_hits = || {
        (0..3)
            .map(|n| server.hits(&format!("/hang/{n}")))
            .sum::<usize>()
    };
    for _ in 0..1500 {
        if hang_hits() > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(hang_hits(), 1, "one silent feed is under way");
    kill("-TERM", &child);
    let status = wait_exit(&mut child);
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert_eq!(status.code(), Some(130), "{stdout}");
    // The two other silent feeds, still waiting for the host, were never
    // fetched.
    assert_eq!(hang_hits(), 1);

    // Everything polled is stored, down to the fetch under way at the signal.
    let store = common::open_store(&db).unwrap();
    let statuses = store.feed_statuses().unwrap();
    let polled: Vec<_> = statuses
        .iter()
        .filter(|s| s.last_polled_at.is_some())
        .collect();
    let fast = polled.iter().filter(|s| s.url.contains("/fast/")).count();
    for status in &polled {
        if status.url.contains("/fast/") {
            assert_eq!(status.last_status, Some(200), "{}", status.url);
        } else {
            // The one under way at the signal: its timeout is recorded.
            assert_eq!(status.failures, 1, "{status:?}");
        }
    }
    assert_eq!(polled.len(), fast + 1);
    assert_eq!(store.entry_count().unwrap(), 4 * fast as u64);
    assert!(
        stdout.contains(&format!("polled {} feeds", fast + 1)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "stopped by a signal: {} feeds not polled",
            7 - (fast + 1)
        )),
        "{stdout}"
    );
}

#[tokio::test]
async fn search_prints_matching_stories_and_refuses_bad_queries() {
    let server = common::FixtureServer::start().await;
    server.set("/rss2.xml", common::Route::fixture("rss2.xml"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "{}[[feed]]\nurl = \"{}\"\n",
            common::storage_toml(&dir.path().join("newsriver.db")),
            server.url("/rss2.xml")
        ),
    )
    .unwrap();
    let search = |query: &str| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_newsriver"));
        command.args(["search", "--config"]).arg(&config).arg(query);
        command.output()
    };
    // Before any poll: no database file, said so (a PostgreSQL database is
    // there before the first poll: the schema is made on connecting).
    if common::backend::backend() == common::backend::Backend::Sqlite {
        let out = search("x").await.unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("no database yet"));
    }
    let polled = tokio::process::Command::new(env!("CARGO_BIN_EXE_newsriver"))
        .args(["poll", "--once", "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert!(polled.status.success());
    let store = common::open_store(&dir.path().join("newsriver.db")).unwrap();
    let stories = store.stories(10).unwrap();
    drop(store);
    let wanted = &stories[0];
    // The first word of the newest story's title finds it: date, source,
    // title and link on one line.
    let word = wanted
        .title
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| w.len() > 3)
        .unwrap()
        .to_string();
    let out = search(&format!("title:{word}")).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.contains(&wanted.title))
        .unwrap_or_else(|| panic!("{word}: {stdout}"));
    assert!(line.contains(&wanted.source.title), "{line}");
    assert!(
        line.contains(wanted.link.as_deref().unwrap_or("-")),
        "{line}"
    );
    let out = search("\"unclosed").await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad query: column 1") && stderr.contains("never closed"),
        "{stderr}"
    );
}
