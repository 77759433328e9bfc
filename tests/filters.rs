//! Filters end to end: rules in the TOML drop entries at ingest, so they are
//! never stored and appear in no output.

mod common;

use std::path::Path;

use common::{FixtureServer, Route};
use newsriver::Config;

#[tokio::test]
async fn excluded_entries_are_never_stored_nor_published() {
    let server = FixtureServer::start().await;
    server.set("/rss2.xml", Route::fixture("rss2.xml"));
    server.set("/atom.xml", Route::fixture("atom.xml"));
    server.set("/feed.json", Route::fixture("feed.json"));
    let dir = tempfile::tempdir().unwrap();
    let storage = common::storage_toml(&dir.path().join("r.db"));
    let toml = format!(
        r#"
{storage}
[filters.exclude]
title = ["bakery"]                        # atom.xml: "Local bakery wins …"
link_regex = ['/robotics']                # rss2.xml: the robotics story's link

[[feed]]
url = "{rss}"

[[feed]]
url = "{atom}"

[[feed]]
url = "{json}"
[feed.filters.include]
title_regex = ['(?i)\b(rust|fiber)\b']     # only two of its four stories
"#,
        rss = server.url("/rss2.xml"),
        atom = server.url("/atom.xml"),
        json = server.url("/feed.json"),
    );
    let config = Config::parse(&toml, Path::new("t.toml")).unwrap();
    let reports = newsriver::poll_once(&config).await.unwrap();
    let summary = newsriver::scheduler::Summary::of(&reports);
    assert_eq!(summary.ok, 3);
    assert_eq!(summary.new, 3 + 3 + 2, "12 entries, 4 excluded");

    let store = newsriver::Store::open_configured(&config.storage).unwrap();
    let titles: Vec<String> = store
        .stories(100)
        .unwrap()
        .into_iter()
        .map(|s| s.title)
        .collect();
    assert_eq!(titles.len(), 8);
    for gone in [
        "Local bakery wins regional bread competition",
        "Northfield High robotics team heads to nationals",
        "Open-source mapping tool reaches version 2.0",
        "Startup unveils low-power weather station kit",
    ] {
        assert!(!titles.iter().any(|t| t == gone), "{gone} was stored");
    }
    assert!(
        titles
            .iter()
            .any(|t| t == "Regional ISP announces fiber expansion")
    );
    assert!(
        titles
            .iter()
            .any(|t| t == "University course teaches Rust to first-year students")
    );
}
