//! `newsriver discover URL [--add FILE]`: feeds found from a site's page (one,
//! several, relative, none advertised, links to web pages again), from the
//! usual paths, the limits (too many links, redirect loops, huge pages), a
//! `--add` that keeps the rest of the file byte for byte; and a `[[feed]] url`
//! that is a web page, recorded as an error naming the feeds it offers.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use newsriver::config::{FetchConfig, PositiveU64};
use newsriver::discover::{DiscoverError, FeedFormat, discover};
use newsriver::fetch::Fetcher;

#[derive(Clone)]
enum Page {
    Body(&'static str, Vec<u8>),
    Redirect(&'static str),
}

/// A site on 127.0.0.1:0 answering the paths it is given, 404 elsewhere.
async fn site(pages: Vec<(&'static str, Page)>) -> SocketAddr {
    let pages: Arc<HashMap<&'static str, Page>> = Arc::new(pages.into_iter().collect());
    async fn answer(State(pages): State<Arc<HashMap<&'static str, Page>>>, uri: Uri) -> Response {
        match pages.get(uri.path()) {
            Some(Page::Body(content_type, body)) => {
                ([(header::CONTENT_TYPE, *content_type)], body.clone()).into_response()
            }
            Some(Page::Redirect(to)) => {
                (StatusCode::FOUND, [(header::LOCATION, *to)]).into_response()
            }
            None => (StatusCode::NOT_FOUND, "no such page").into_response(),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(answer).with_state(pages);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn html(head: &str) -> Page {
    Page::Body(
        "text/html; charset=utf-8",
        format!("<!DOCTYPE html><html><head><title>A site</title>{head}</head><body><p>Hello</p></body></html>")
            .into_bytes(),
    )
}

fn feed(name: &str) -> Page {
    let content_type = match name {
        "atom.xml" => "application/atom+xml",
        "feed.json" => "application/feed+json",
        _ => "application/rss+xml",
    };
    Page::Body(content_type, common::fixture(name))
}

fn fetcher() -> Fetcher {
    Fetcher::new(&FetchConfig::default()).unwrap()
}

fn link(content_type: &str, href: &str) -> String {
    format!(r#"<link rel="alternate" type="{content_type}" href="{href}">"#)
}

#[tokio::test]
async fn one_advertised_feed_is_found_with_its_title_and_format() {
    let addr = site(vec![
        ("/", html(&link("application/rss+xml", "/feed.xml"))),
        ("/feed.xml", feed("rss2.xml")),
    ])
    .await;
    let found = discover(&fetcher(), &format!("http://{addr}/"), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(found.feeds.len(), 1);
    let f = &found.feeds[0];
    assert_eq!(f.url, format!("http://{addr}/feed.xml"));
    assert_eq!(f.format, FeedFormat::Rss);
    assert_eq!(f.title.as_deref(), Some("Northfield Ledger"));
    assert_eq!(f.entries, 4);
    assert!(!found.probed);
}

#[tokio::test]
async fn several_and_relative_links_are_resolved_and_web_pages_are_not_feeds() {
    let head = [
        link("application/rss+xml", "feed.xml"),
        link("application/atom+xml", "../atom.xml"),
        link("application/feed+json", "/news/feed.json"),
        // Advertised as a feed, but another web page: not followed further.
        link("application/rss+xml", "more.html"),
    ]
    .concat();
    let addr = site(vec![
        ("/news/index.html", html(&head)),
        ("/news/feed.xml", feed("rss2.xml")),
        ("/atom.xml", feed("atom.xml")),
        ("/news/feed.json", feed("feed.json")),
        (
            "/news/more.html",
            html(&link("application/rss+xml", "/never-fetched.xml")),
        ),
        ("/never-fetched.xml", feed("rss2.xml")),
    ])
    .await;
    let found = discover(
        &fetcher(),
        &format!("http://{addr}/news/index.html"),
        Duration::ZERO,
    )
    .await
    .unwrap();
    let urls: Vec<String> = found.feeds.iter().map(|f| f.url.clone()).collect();
    assert_eq!(
        urls,
        [
            format!("http://{addr}/news/feed.xml"),
            format!("http://{addr}/atom.xml"),
            format!("http://{addr}/news/feed.json"),
        ]
    );
    let formats: Vec<FeedFormat> = found.feeds.iter().map(|f| f.format).collect();
    assert_eq!(
        formats,
        [FeedFormat::Rss, FeedFormat::Atom, FeedFormat::JsonFeed]
    );
    assert_eq!(found.rejected.len(), 1);
    assert_eq!(
        found.rejected[0].url,
        format!("http://{addr}/news/more.html")
    );
    assert_eq!(found.rejected[0].why, "a web page, not a feed");
}

#[tokio::test]
async fn with_no_advertised_feed_the_usual_paths_are_tried() {
    let addr = site(vec![
        ("/blog/post", html("")),
        ("/atom.xml", feed("atom.xml")),
        // A usual path that answers with a web page is no feed.
        ("/feed", html("")),
        ("/feed.json", feed("feed.json")),
    ])
    .await;
    let found = discover(
        &fetcher(),
        &format!("http://{addr}/blog/post"),
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert!(found.probed);
    let urls: Vec<String> = found.feeds.iter().map(|f| f.url.clone()).collect();
    assert_eq!(
        urls,
        [
            format!("http://{addr}/atom.xml"),
            format!("http://{addr}/feed.json")
        ]
    );
    assert_eq!(found.rejected.len(), 4, "{:?}", found.rejected);
    assert!(
        found
            .rejected
            .iter()
            .any(|r| r.url.ends_with("/feed") && r.why == "a web page, not a feed")
    );
    assert!(found.rejected.iter().any(|r| r.why == "HTTP 404"));

    // Nothing at all: an empty list, which the CLI reports as an error.
    let empty = site(vec![("/", html(""))]).await;
    let found = discover(&fetcher(), &format!("http://{empty}/"), Duration::ZERO)
        .await
        .unwrap();
    assert!(found.feeds.is_empty() && found.probed);
}

#[tokio::test]
async fn a_feed_address_is_its_own_discovery() {
    let addr = site(vec![("/rss", feed("rss2.xml"))]).await;
    let found = discover(&fetcher(), &format!("http://{addr}/rss"), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(found.feeds.len(), 1);
    assert_eq!(found.feeds[0].url, format!("http://{addr}/rss"));
}

#[tokio::test]
async fn too_many_links_redirect_loops_and_huge_pages_are_clear_errors() {
    let many: String = (0..400)
        .map(|i| link("application/rss+xml", &format!("/f{i}.xml")))
        .collect();
    let addr = site(vec![
        ("/many", html(&many)),
        ("/loop", Page::Redirect("/loop2")),
        ("/loop2", Page::Redirect("/loop")),
        ("/huge", html(&"<meta name=x>".repeat(2_000))),
    ])
    .await;
    let e = discover(&fetcher(), &format!("http://{addr}/many"), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(e, DiscoverError::TooManyLinks { count: 400 }),
        "{e}"
    );
    assert!(e.to_string().contains("advertises 400 feeds"), "{e}");

    let e = discover(&fetcher(), &format!("http://{addr}/loop"), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("redirect loop"), "{e}");

    let small = Fetcher::new(&FetchConfig {
        max_body_bytes: PositiveU64(10_000),
        ..FetchConfig::default()
    })
    .unwrap();
    let e = discover(&small, &format!("http://{addr}/huge"), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("larger than 10000 bytes"), "{e}");

    let e = discover(&fetcher(), "ftp://example.org/", Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(e, DiscoverError::BadUrl(_)));
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_newsriver"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn discover_prints_tables_and_add_keeps_the_file_byte_for_byte() {
    let addr = site(vec![
        (
            "/",
            html(
                &[
                    link("application/atom+xml", "/atom.xml"),
                    link("application/rss+xml", "/feed.xml"),
                ]
                .concat(),
            ),
        ),
        ("/atom.xml", feed("atom.xml")),
        ("/feed.xml", feed("rss2.xml")),
    ])
    .await;
    let url = format!("http://{addr}/");
    let task = tokio::task::spawn_blocking({
        let url = url.clone();
        move || run(&["discover", &url])
    });
    let (code, out, err) = task.await.unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("(Atom, "), "{out}");
    assert!(out.contains("(RSS, 4 entries)"), "{out}");
    assert!(
        out.contains(&format!("[[feed]]\nurl = \"http://{addr}/atom.xml\"\n")),
        "{out}"
    );
    assert!(out.contains("title = \"Northfield Ledger\""), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("river.toml");
    // Comments, odd spacing, a table after the feeds, no final newline.
    let before = "# My river\n[output]\ntitle   =  \"Mine\"   # spaced\n\n[[feed]]\nurl = \"https://one.example/feed\" # first\n\n[[search]]\nname = \"x\"\nquery = 'strike'";
    std::fs::write(&path, before).unwrap();
    let task = tokio::task::spawn_blocking({
        let (url, path) = (url.clone(), path.clone());
        move || run(&["discover", &url, "--add", path.to_str().unwrap()])
    });
    let (code, out, err) = task.await.unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("added"), "{out}");
    let after = std::fs::read_to_string(&path).unwrap();
    assert!(
        after.starts_with(before),
        "the file as it was, then the table: {after}"
    );
    let config = newsriver::Config::load(&path).unwrap();
    let urls: Vec<String> = config.feeds.iter().map(|f| f.url().to_string()).collect();
    assert_eq!(
        urls,
        [
            "https://one.example/feed".to_string(),
            format!("http://{addr}/atom.xml")
        ]
    );
    assert_eq!(config.searches.len(), 1, "[[search]] untouched");

    // Once is enough: a second --add changes nothing.
    let task = tokio::task::spawn_blocking({
        let path = path.clone();
        move || run(&["discover", &url, "--add", path.to_str().unwrap()])
    });
    let (code, _, err) = task.await.unwrap();
    assert_eq!(code, Some(1));
    assert!(err.contains("already configured"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), after);

    // Nothing found: an error that says so.
    let empty = site(vec![("/", html(""))]).await;
    let url = format!("http://{empty}/");
    let (code, _, err) = tokio::task::spawn_blocking(move || run(&["discover", &url]))
        .await
        .unwrap();
    assert_eq!(code, Some(1));
    assert!(err.contains("no feed found"), "{err}");
}

#[tokio::test]
async fn polling_a_web_page_records_an_error_naming_the_feeds_it_offers() {
    let addr = site(vec![(
        "/news/",
        html(
            &[
                link("application/rss+xml", "feed.xml"),
                link("application/atom+xml", "/atom.xml"),
            ]
            .concat(),
        ),
    )])
    .await;
    let page = format!("http://{addr}/news/");
    let dir = tempfile::tempdir().unwrap();
    let config = common::config_for(dir.path(), std::slice::from_ref(&page), "");
    newsriver::poll_once(&config).await.unwrap();
    let store = newsriver::Store::open_configured(&config.storage).unwrap();
    let status = &store.feed_statuses().unwrap()[0];
    assert_eq!(status.url, page, "the configured URL is kept");
    assert_eq!(status.fetch_url, None);
    assert_eq!(
        status.last_error.as_deref(),
        Some(
            format!(
                "this is a web page; it offers http://{addr}/news/feed.xml, http://{addr}/atom.xml (set one as the [[feed]] url)"
            )
            .as_str()
        )
    );
    let s = store.status_summary(chrono::Utc::now()).unwrap();
    assert_eq!(s.failures[0].kind, "web page, not a feed");

    // `newsriver feeds` shows it.
    let toml = dir.path().join("c.toml");
    std::fs::write(
        &toml,
        format!(
            "{}[[feed]]\nurl = \"{page}\"\n",
            common::storage_toml(&dir.path().join("river.db"))
        ),
    )
    .unwrap();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run(&[
            "feeds",
            "--state",
            "failing",
            "--config",
            toml.to_str().unwrap(),
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("this is a web page; it offers"), "{out}");
}
