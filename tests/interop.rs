//! Interoperability with real clients: Python feedparser, newsboat and headless
//! Chromium read what a running daemon serves. `.ci/run` installs them; when one
//! is missing these tests fail (they never skip), naming what to install.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{FixtureServer, Route};
use newsriver::Config;
use tokio::process::Command;

const HOSTILE_TITLE: &str = "<script>alert(1)</script> Wire & Co";

struct Running {
    server: FixtureServer,
    dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// Four healthy feeds (16 entries; one titled with markup by the config) and one
/// that fails, polled once, then the daemon serving them.
async fn running_daemon() -> Running {
    let server = FixtureServer::start().await;
    for (path, file) in [
        ("/rss2.xml", "rss2.xml"),
        ("/rss1.rdf", "rss1.rdf"),
        ("/atom.xml", "atom.xml"),
        ("/feed.json", "feed.json"),
    ] {
        server.set(path, Route::fixture(file));
    }
    server.set("/broken.xml", Route::Status(500));
    let dir = tempfile::tempdir().unwrap();
    let storage = common::storage_toml(&dir.path().join("river.db"));
    let toml = format!(
        r#"
{storage}[output]
title = "Interop River"
[[feed]]
url = "{rss2}"
[[feed]]
url = "{rss1}"
[[feed]]
url = "{atom}"
title = {hostile:?}
[[feed]]
url = "{json}"
[[feed]]
url = "{broken}"
"#,
        rss2 = server.url("/rss2.xml"),
        rss1 = server.url("/rss1.rdf"),
        atom = server.url("/atom.xml"),
        json = server.url("/feed.json"),
        broken = server.url("/broken.xml"),
        hostile = HOSTILE_TITLE,
    );
    let config = Config::parse(&toml, Path::new("interop.toml")).unwrap();
    let summary = newsriver::scheduler::Summary::of(&newsriver::poll_once(&config).await.unwrap());
    assert_eq!((summary.ok, summary.failed, summary.new), (4, 1, 16));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(newsriver::run(config, listener, async move {
        let _ = stopped.await;
    }));
    Running {
        server,
        dir,
        addr,
        stop,
        task,
    }
}

/// Runs a client to completion; a missing program is a failure that says what to install.
async fn run(program: &str, args: &[&str], env: &[(&str, &Path)], install: &str) -> String {
    let mut command = Command::new(program);
    command.args(args).kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .unwrap_or_else(|_| panic!("{program} did not finish in 120s"))
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): {install} (.ci/run installs it)"));
    assert!(
        output.status.success(),
        "{program} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn feedparser(url: &str) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/feedparser_dump.py");
    let out = run(
        "python3",
        &[script.to_str().unwrap(), url],
        &[],
        "install Python 3 and `pip install feedparser`",
    )
    .await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

async fn atom_ids(url: &str) -> Vec<String> {
    let xml = reqwest::get(url).await.unwrap().text().await.unwrap();
    let feed: atom_syndication::Feed = xml.parse().unwrap();
    feed.entries.into_iter().map(|e| e.id).collect()
}

#[tokio::test]
async fn feedparser_reads_every_entry_with_its_source_from_atom_and_rss() {
    let daemon = running_daemon().await;
    let ids = atom_ids(&daemon.url("/feed.atom")).await;
    assert_eq!(ids.len(), 16);

    let atom = feedparser(&daemon.url("/feed.atom")).await;
    assert_eq!(atom["bozo"], false, "{}", atom["bozo_exception"]);
    assert_eq!(atom["version"], "atom10");
    assert_eq!(atom["title"], "Interop River");
    let entries = atom["entries"].as_array().unwrap();
    let seen: Vec<&str> = entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(seen, ids, "feedparser sees every entry, in order");
    let sources: HashSet<&str> = entries
        .iter()
        .map(|e| e["source"]["title"].as_str().expect("entry.source.title"))
        .collect();
    let expected: HashSet<&str> = [
        "Northfield Ledger",
        "Lakeside Science Digest",
        HOSTILE_TITLE,
        "Summit Tech Weekly",
    ]
    .into();
    assert_eq!(sources, expected);
    for e in entries {
        assert!(e["source"]["id"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(e["link"].as_str().unwrap().starts_with("https://"));
        assert!(e["author"].as_str().is_some_and(|a| !a.is_empty()));
    }

    let rss = feedparser(&daemon.url("/feed.rss")).await;
    assert_eq!(rss["bozo"], false, "{}", rss["bozo_exception"]);
    assert_eq!(rss["version"], "rss20");
    let items = rss["entries"].as_array().unwrap();
    let seen: Vec<&str> = items.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(seen, ids, "RSS guids are the Atom ids");
    for item in items {
        let href = item["source"]["href"].as_str().expect("<source url>");
        assert!(href.starts_with(&daemon.server.url("/")), "{href}");
        assert!(
            item["source"]["title"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        assert!(
            item["author"].as_str().is_some_and(|a| !a.is_empty()),
            "dc:creator"
        );
        assert!(item["published"].as_str().is_some());
    }
    daemon.stop().await;
}

#[tokio::test]
async fn newsboat_stores_every_entry_of_the_atom_feed() {
    let daemon = running_daemon().await;
    let feed_url = daemon.url("/feed.atom");
    let ids = atom_ids(&feed_url).await;
    let home: PathBuf = daemon.dir.path().join("newsboat");
    std::fs::create_dir_all(&home).unwrap();
    let urls = home.join("urls");
    let config = home.join("config");
    let cache = home.join("cache.db");
    std::fs::write(&urls, format!("{feed_url}\n")).unwrap();
    std::fs::write(&config, "").unwrap();
    run(
        "newsboat",
        &[
            "-u",
            urls.to_str().unwrap(),
            "-c",
            cache.to_str().unwrap(),
            "-C",
            config.to_str().unwrap(),
            "-x",
            "reload",
        ],
        &[
            ("HOME", &home),
            ("XDG_CONFIG_HOME", &home),
            ("XDG_DATA_HOME", &home),
        ],
        "apt-get install newsboat",
    )
    .await;
    let db = rusqlite::Connection::open(&cache).unwrap();
    let mut stmt = db
        .prepare("SELECT guid, title, author, url FROM rss_item WHERE feedurl = ?1")
        .unwrap();
    let rows: Vec<(String, String, String, String)> = stmt
        .query_map([&feed_url], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let stored: HashSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let expected: HashSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(stored, expected, "newsboat stored every entry");
    for (_, title, author, url) in &rows {
        assert!(!title.is_empty() && !author.is_empty());
        assert!(url.starts_with("https://"), "{url}");
    }
    let feed_title: String = db
        .query_row(
            "SELECT title FROM rss_feed WHERE rssurl = ?1",
            [&feed_url],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(feed_title, "Interop River");
    daemon.stop().await;
}

async fn chromium_dom(url: &str, profile: &Path) -> String {
    run(
        "chromium",
        &[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            url,
        ],
        &[],
        "apt-get install chromium",
    )
    .await
}

/// The visible text of a DOM dump: tags dropped, entities decoded, whitespace collapsed.
fn visible_text(dom: &str) -> String {
    let body = dom.split("<body").nth(1).unwrap_or(dom);
    let tags = regex::Regex::new(r"(?s)<[^>]*>").unwrap();
    let text = tags.replace_all(body, " ");
    html_escape::decode_html_entities(&text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn chromium_shows_the_river_and_the_feed_states() {
    let daemon = running_daemon().await;
    let profile = daemon.dir.path().join("chromium-profile");

    let dom = chromium_dom(&daemon.url("/"), &profile).await;
    let text = visible_text(&dom);
    for story in [
        "Riverbend bridge reopens after six-month repair",
        "City council approves riverside bike lanes",
        "University course teaches Rust to first-year students",
    ] {
        assert!(text.contains(story), "{story} on the front page: {text}");
    }
    for source in [
        "Northfield Ledger",
        "Lakeside Science Digest",
        "Summit Tech Weekly",
    ] {
        assert!(text.contains(source), "source {source} shown");
    }
    assert!(text.contains("Lena Fischer"), "authors shown");
    // A source named with markup is shown as text, never run.
    assert!(text.contains(HOSTILE_TITLE), "{text}");
    assert!(
        !dom.to_lowercase().contains("<script"),
        "no script element in the page"
    );
    // Titles link to the original articles.
    assert!(
        dom.contains(r#"href="https://riverbendchronicle.example/news/2026/11/26/bridge-reopens""#)
    );

    let dom = chromium_dom(&daemon.url("/status"), &profile).await;
    let text = visible_text(&dom);
    assert!(
        // Each count is a link to its filter (tags become spaces here).
        text.contains("5 feeds: 4 ok , 1 failing , 0 not polled yet , 0 retired"),
        "{text}"
    );
    assert!(text.contains("Northfield Ledger ok"), "{text}");
    assert!(
        text.contains(&format!("{} failing", daemon.server.url("/broken.xml"))),
        "{text}"
    );
    assert!(text.contains("HTTP 500"), "the last error is shown: {text}");
    assert!(
        dom.contains(r#"<td class="n">4</td>"#),
        "entry counts shown: {dom}"
    );
    assert!(text.contains("Next poll"), "{text}");
    assert!(!dom.to_lowercase().contains("<script"));
    daemon.stop().await;
}
