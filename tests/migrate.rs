//! `newsriver migrate --to`: a SQLite river copied into PostgreSQL keeps its
//! ids, stories, validators and schedules; a river already there is
//! refused. Needs the test PostgreSQL server (`./scripts/test.sh` starts
//! one); runs on it whatever NEWSRIVER_TEST_BACKEND says.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{FixtureServer, Route};
use newsriver::Store;
use newsriver::store::{PageStart, StoryFilter};

fn migrate(config: &Path, to: &str) -> std::process::Output {
    common::process::newsriver()
        .args(["migrate", "--config"])
        .arg(config)
        .env("NEWSRIVER_MIGRATE_TO", to)
        .output()
        .unwrap()
}

/// What a reader of the river sees: every story's id, title and outlets.
fn river(store: &Store) -> Vec<(String, String, usize)> {
    store
        .story_page(&StoryFilter::All, PageStart::Newest, 500)
        .unwrap()
        .stories
        .iter()
        .map(|s| (s.uid.clone(), s.title.clone(), s.also.len()))
        .collect()
}

#[tokio::test]
async fn a_sqlite_river_moves_to_postgres_whole_and_only_once() {
    let server = FixtureServer::start().await;
    server.set(
        "/rss2.xml",
        Route::fixture("rss2.xml").with_validators("\"v1\"", "Mon, 01 Jun 2026 10:00:00 GMT"),
    );
    server.set("/atom.xml", Route::fixture("atom.xml"));
    server.set("/feed.json", Route::fixture("feed.json"));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("river.db");
    let urls = [
        server.url("/rss2.xml"),
        server.url("/atom.xml"),
        server.url("/feed.json"),
    ];
    let config = dir.path().join("river.toml");
    std::fs::write(
        &config,
        format!("[storage]\npath = {:?}\n{}", db, common::feed_tables(&urls)),
    )
    .unwrap();
    let loaded = newsriver::Config::load(&config).unwrap();
    newsriver::poll_once(&loaded).await.unwrap();
    let sqlite = Store::open(&db).unwrap();
    let before = river(&sqlite);
    let feeds_before = sqlite.feed_statuses().unwrap();
    let river_id = sqlite.river_id().unwrap();
    drop(sqlite);
    assert!(before.len() > 5);

    let mut url = url::Url::parse(&common::backend::fresh_database()).unwrap();
    url.set_password(Some("not-shown")).unwrap();
    let url = url.to_string();
    let out = migrate(&config, &url);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("copied"), "{stdout}");
    assert!(!stdout.contains("not-shown") && !stderr.contains("not-shown"));

    let pg = Store::open_postgres(&url, Duration::from_secs(10), 2).unwrap();
    assert_eq!(river(&pg), before, "the same stories, ids and outlets");
    assert_eq!(pg.river_id().unwrap(), river_id);
    let feeds_after = pg.feed_statuses().unwrap();
    for (a, b) in feeds_before.iter().zip(&feeds_after) {
        assert_eq!(
            (a.id, &a.url, &a.validators, a.next_poll_at),
            (b.id, &b.url, &b.validators, b.next_poll_at)
        );
    }
    // Searchable as it was.
    let word = before[0]
        .1
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| w.len() > 4)
        .unwrap();
    let query = newsriver::search::Query::parse(word).unwrap();
    assert!(!pg.search(&query, 10).unwrap().is_empty());

    // Polling the moved river adds nothing: every entry is known.
    let pg_config = dir.path().join("pg.toml");
    std::fs::write(
        &pg_config,
        format!("[storage]\nurl = {:?}\n{}", url, common::feed_tables(&urls)),
    )
    .unwrap();
    let entries = pg.entry_count().unwrap();
    let loaded = newsriver::Config::load(&pg_config).unwrap();
    newsriver::poll_once(&loaded).await.unwrap();
    assert_eq!(pg.entry_count().unwrap(), entries);
    assert_eq!(river(&pg), before);

    // A second copy into the same database is refused, and changes nothing.
    let again = migrate(&config, &url);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already holds a river"), "{stderr}");
    assert!(!stderr.contains("not-shown"), "{stderr}");
    assert_eq!(pg.entry_count().unwrap(), entries);
}

#[test]
fn an_unreachable_target_is_a_clear_error_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("river.toml");
    std::fs::write(
        &config,
        format!("[storage]\npath = {:?}\n", dir.path().join("r.db")),
    )
    .unwrap();
    drop(Store::open(&dir.path().join("r.db")).unwrap());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = migrate(&config, &format!("postgres://u:s3cret@127.0.0.1:{port}/x"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
