//! Search over HTTP: `/search?q=`, `/search.atom|rss|json?q=` and the named
//! searches of `[[search]]`, with the paging, caching, compression, access
//! tokens and live reload every view has; bad queries are 400s that say why.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{FixtureServer, Route};
use newsriver::Config;

struct Daemon {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Daemon {
    async fn start(path: &Path) -> Self {
        let config = Config::load(path).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(newsriver::daemon::run_with(
            config,
            Some(path.to_path_buf()),
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth(READ)
            .send()
            .await
            .unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

const READ: &str = "reader-token";
const ADMIN: &str = "admin-token";

/// An RSS feed of `n` items: "strike day 1" … plus one about the weather.
fn rss(n: usize) -> String {
    let now = chrono::Utc::now();
    let at = |hours_ago: i64| (now - chrono::Duration::hours(hours_ago)).to_rfc2822();
    let mut items = String::new();
    for i in 1..=n {
        items.push_str(&format!(
            "<item><title>Port strike day {i}</title><link>https://wire.example/s{i}</link><guid>s{i}</guid>\
             <description>Dockers stay out, day {i}.</description><pubDate>{}</pubDate></item>",
            at(10 - i as i64)
        ));
    }
    items.push_str(&format!(
        "<item><title>Sunny weekend</title><link>https://wire.example/w</link><guid>w</guid>\
         <description>Weather.</description><pubDate>{}</pubDate></item>",
        at(1)
    ));
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Wire Service</title>\
         <link>https://wire.example/</link><description>d</description>{items}</channel></rss>"
    )
}

fn config_text(dir: &Path, feed: &str, searches: &str) -> String {
    format!(
        "{}[output]\nentries = 2\ntitle = \"River\"\n\
         [access]\nread_token = \"{READ}\"\nadmin_token = \"{ADMIN}\"\n\
         {searches}\n[[feed]]\nurl = \"{feed}\"\ntags = [\"world\"]\n",
        common::storage_toml(&dir.join("river.db"))
    )
}

async fn setup(searches: &str) -> (FixtureServer, tempfile::TempDir, PathBuf, Daemon) {
    let server = FixtureServer::start().await;
    server.set("/wire.xml", Route::feed(rss(5), "application/rss+xml"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newsriver.toml");
    std::fs::write(
        &path,
        config_text(dir.path(), &server.url("/wire.xml"), searches),
    )
    .unwrap();
    let daemon = Daemon::start(&path).await;
    // Polled at start: wait for the stories.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let body = daemon
            .get("/feed.json")
            .await
            .text()
            .await
            .unwrap_or_default();
        if body.contains("Port strike day 1") || body.contains("Sunny") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never polled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (server, dir, path, daemon)
}

fn entry_titles(atom: &str) -> Vec<String> {
    let feed: atom_syndication::Feed = atom.parse().expect("well-formed Atom");
    feed.entries.iter().map(|e| e.title.value.clone()).collect()
}

fn link(atom: &str, rel: &str) -> Option<String> {
    let feed: atom_syndication::Feed = atom.parse().unwrap();
    feed.links
        .iter()
        .find(|l| l.rel == rel)
        .map(|l| l.href.clone())
}

#[tokio::test]
async fn search_feeds_page_newest_first_with_etags_compression_and_attribution() {
    let (_server, _dir, _path, daemon) = setup("").await;
    // Atom: two per page (entries = 2), newest first, the weather left out.
    let first = daemon.get("/search.atom?q=strike+-weather").await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let atom = first.text().await.unwrap();
    assert_eq!(
        entry_titles(&atom),
        ["Port strike day 5", "Port strike day 4"]
    );
    assert!(atom.contains("<source>"), "attribution: atom:source");
    let next = link(&atom, "next").expect("a next page");
    assert!(
        next.contains("search.atom?q=strike+-weather&before="),
        "{next}"
    );
    // Walk every page: all five, in order, no overlap.
    let mut seen = entry_titles(&atom);
    let mut next = Some(next);
    while let Some(url) = next {
        let path = url
            .split_once(&daemon.addr.to_string())
            .unwrap()
            .1
            .to_string();
        let page = daemon.get(&path).await.text().await.unwrap();
        seen.extend(entry_titles(&page));
        next = link(&page, "next");
    }
    assert_eq!(
        seen,
        (1..=5)
            .rev()
            .map(|i| format!("Port strike day {i}"))
            .collect::<Vec<_>>()
    );
    // 304 on the same ETag.
    let again = reqwest::Client::new()
        .get(daemon.url("/search.atom?q=strike+-weather"))
        .bearer_auth(READ)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // Compressed like any view.
    let gz = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .unwrap()
        .get(daemon.url("/search.rss?q=strike"))
        .bearer_auth(READ)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.status(), 200);
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let json = daemon.get("/search.json?q=weekend").await;
    assert_eq!(json.status(), 200);
    let json: serde_json::Value = serde_json::from_str(&json.text().await.unwrap()).unwrap();
    assert_eq!(json["items"][0]["title"], "Sunny weekend");
    // The HTML river of a query, with the box filled in.
    let html = daemon.get("/search?q=sunny").await.text().await.unwrap();
    assert!(html.contains("Sunny weekend") && !html.contains("Port strike"));
    assert!(html.contains("name=\"q\" value=\"sunny\""), "{html}");
    assert!(html.contains("search.atom?q=sunny"));
    // No query: the box alone. The front page has the box too.
    assert_eq!(daemon.get("/search").await.status(), 200);
    let home = daemon.get("/").await.text().await.unwrap();
    assert!(
        home.contains("action=\"http://") && home.contains("search\""),
        "{home}"
    );
    daemon.stop().await;
}

#[tokio::test]
async fn bad_and_hostile_queries_are_400_with_the_message() {
    let (_server, _dir, _path, daemon) = setup("").await;
    let long = "a".repeat(newsriver::search::MAX_QUERY_CHARS + 1);
    let cases: Vec<(String, &str)> = vec![
        ("%22unclosed".into(), "never closed"),
        ("OR+OR".into(), "OR needs"),
        ("-only".into(), "only excludes"),
        ("a%00b".into(), "NUL byte"),
        (long, "too long"),
        ("body:x".into(), "unknown field"),
        ("%26%26+%7C%7C".into(), "no word"),
    ];
    for (q, message) in &cases {
        for route in ["/search.atom", "/search.rss", "/search.json", "/search"] {
            let response = daemon.get(&format!("{route}?q={q}")).await;
            assert_eq!(response.status(), 400, "{route}?q={q}");
            let text = response.text().await.unwrap();
            assert!(text.contains(message), "{route}?q={q}: {text}");
            assert!(text.contains("column"), "{text}");
            assert!(!text.to_lowercase().contains("fts5"), "{text}");
        }
    }
    assert_eq!(daemon.get("/search.atom").await.status(), 400, "no ?q=");
    // SQL and FTS5 syntax are words: a 200 that finds nothing.
    for q in [
        "%27%3B+DROP+TABLE+entries%3B+--x",
        "NEAR%28strike+day%29",
        "strike*",
        "%7Btitle%7D",
    ] {
        let response = daemon.get(&format!("/search.atom?q={q}")).await;
        assert_eq!(response.status(), 200, "{q}");
    }
    assert_eq!(
        daemon
            .get("/search.atom?q=strike&before=garbage")
            .await
            .status(),
        400
    );
    daemon.stop().await;
}

#[tokio::test]
async fn search_routes_need_the_read_token() {
    let search = "[[search]]\nname = \"strikes\"\nquery = \"strike\"\n";
    let (_server, _dir, _path, daemon) = setup(search).await;
    for path in [
        "/search?q=strike",
        "/search.atom?q=strike",
        "/search.rss?q=strike",
        "/search.json?q=strike",
        "/searches/strikes/feed.atom",
        "/searches/strikes/feed.json",
    ] {
        let anonymous = reqwest::get(daemon.url(path)).await.unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
        let with_token = reqwest::get(daemon.url(&format!(
            "{path}{}token={READ}",
            if path.contains('?') { '&' } else { '?' }
        )))
        .await
        .unwrap();
        assert_eq!(with_token.status(), 200, "{path}");
        let admin = reqwest::Client::new()
            .get(daemon.url(path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(admin.status(), 200, "{path}");
    }
    daemon.stop().await;
}

#[tokio::test]
async fn named_searches_are_served_listed_and_follow_a_reload() {
    let first = "[[search]]\nname = \"strikes\"\nquery = 'strike -\"day 5\"'\n";
    let (server, dir, path, daemon) = setup(first).await;
    let atom = daemon.get("/searches/strikes/feed.atom").await;
    assert_eq!(atom.status(), 200);
    let atom = atom.text().await.unwrap();
    assert_eq!(
        entry_titles(&atom),
        ["Port strike day 4", "Port strike day 3"]
    );
    assert!(
        link(&atom, "next")
            .unwrap()
            .contains("/searches/strikes/feed.atom?before=")
    );
    assert_eq!(daemon.get("/searches/strikes/feed.rss").await.status(), 200);
    assert_eq!(daemon.get("/searches/strikes/feed.txt").await.status(), 404);
    assert_eq!(
        daemon.get("/searches/weather/feed.atom").await.status(),
        404
    );
    let home = daemon.get("/").await.text().await.unwrap();
    assert!(home.contains("searches/strikes/feed.atom"), "{home}");
    let status = daemon.get("/status").await;
    let status = reqwest::Client::new()
        .get(status.url().clone())
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(status.contains("searches/strikes/feed.atom"), "{status}");

    // A reload with a broken query is refused with line:col; the old stays.
    let feed = server.url("/wire.xml");
    let broken = "[[search]]\nname = \"weather\"\nquery = 'sunny OR'\n";
    std::fs::write(&path, config_text(dir.path(), &feed, broken)).unwrap();
    let refused = reqwest::Client::new()
        .post(daemon.url("/admin/reload"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let text = refused.text().await.unwrap();
    assert!(
        text.contains("newsriver.toml:11:16:") && text.contains("OR needs"),
        "{text}"
    );
    assert_eq!(
        daemon.get("/searches/strikes/feed.atom").await.status(),
        200
    );

    // Renamed and changed: served at once, the old name gone.
    let second = "[[search]]\nname = \"weather\"\nquery = \"sunny OR rain\"\ntags = [\"world\"]\n";
    std::fs::write(&path, config_text(dir.path(), &feed, second)).unwrap();
    let reloaded = reqwest::Client::new()
        .post(daemon.url("/admin/reload"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(reloaded.status(), 200, "{}", reloaded.text().await.unwrap());
    assert_eq!(
        daemon.get("/searches/strikes/feed.atom").await.status(),
        404
    );
    let atom = daemon
        .get("/searches/weather/feed.atom")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(entry_titles(&atom), ["Sunny weekend"]);
    let home = daemon.get("/").await.text().await.unwrap();
    assert!(home.contains("searches/weather/feed.atom") && !home.contains("searches/strikes"));
    daemon.stop().await;
}
