//! `/status` at scale (issue 18): builds a river of `--feeds` feeds (a tenth
//! failing, half ok, the rest not polled yet, two tags, seven hosts), serves it
//! on 127.0.0.1:0 and reports the first page's size and server time, the
//! store's page query at that size, and, when `chromium` is on PATH, how long
//! headless Chromium takes to load and render the page. The baseline, from the
//! same run: the same table with every feed on one page (what `/status` was
//! before: one page of everything), and Chromium on an empty page (its start).
//!   cargo run --release --example status_page -- [--feeds 2000] [--repeat 5]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use newsriver::Store;
use newsriver::model::FeedState;
use newsriver::publish::River;
use newsriver::server::AppState;
use newsriver::status::FeedFilter;
use newsriver::store::{Failures, FeedSpec, Moved, PollRecord};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn build(path: &Path, feeds: usize) -> anyhow::Result<Store> {
    let store = Store::open(path)?;
    let now = Utc::now();
    let specs: Vec<FeedSpec> = (0..feeds)
        .map(|i| FeedSpec {
            url: format!("https://host{}.example/outlet/{i}/feed.xml", i % 7),
            title: Some(format!("Outlet {i:06} — regional news & weather")),
            interval: Duration::from_secs(1800),
            tags: [
                (i % 3 == 0).then(|| "world".to_string()),
                (i % 5 == 0).then(|| "tech".to_string()),
            ]
            .into_iter()
            .flatten()
            .collect(),
            fixed_interval: false,
        })
        .collect();
    store.sync_feeds(&specs, now)?;
    for f in store.feed_statuses()? {
        let i = f.id as usize;
        let (state, status, error) = match i % 10 {
            5 => (
                FeedState::Failing,
                500,
                Some(
                    "HTTP 500: the origin server answered with an internal error page".to_string(),
                ),
            ),
            0..=4 => (FeedState::Ok, 200, None),
            _ => continue,
        };
        store.record_poll(
            f.id,
            now,
            &PollRecord {
                state,
                status: Some(status),
                error,
                failures: Failures::Increment,
                next_poll: now + chrono::Duration::minutes(30),
                interval: None,
                body_hash: None,
                validators: None,
                skip: None,
                moved: Moved::Keep,
                took_ms: Some(40),
            },
        )?;
    }
    Ok(store)
}

/// Wall time of `chromium --headless --dump-dom URL`, in ms, and the DOM's size.
fn chromium(url: &str, profile: &Path) -> Option<(f64, usize)> {
    let started = Instant::now();
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| (started.elapsed().as_secs_f64() * 1000.0, out.stdout.len()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut feeds, mut repeat) = (2_000usize, 5usize);
    while let Some(flag) = args.next() {
        let value: usize = args.next().unwrap_or_default().parse()?;
        match flag.as_str() {
            "--feeds" => feeds = value,
            "--repeat" => repeat = value.max(1),
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let store = build(&dir.path().join("status.db"), feeds)?;
    println!(
        "{feeds} feeds built in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // The store's queries, at this size.
    let mut summary_ms = Vec::new();
    let mut page_ms = Vec::new();
    let mut failing_ms = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        store.status_summary(Utc::now())?;
        summary_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        store.feed_page(&FeedFilter::default().at_page(10))?;
        page_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        store.feed_page(&FeedFilter::new(
            Some("failing"),
            Some("world"),
            None,
            Some("outlet"),
            None,
        )?)?;
        failing_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }

    // The baseline: every feed in one table, rendered by the same code.
    let river = River {
        id: "urn:bench".into(),
        title: "Bench River".into(),
        base_url: "http://127.0.0.1/".into(),
        attribution: None,
    };
    let all = newsriver::status::FeedPage {
        matching: feeds as u64,
        page: 1,
        pages: 1,
        feeds: store.feeds_filtered(&FeedFilter::default())?,
    };
    let summary = store.status_summary(Utc::now())?;
    let unpaged = newsriver::publish::status::status_page(
        &river,
        &summary,
        &all,
        &FeedFilter::default(),
        &store.tags()?,
    );
    let unpaged_file = dir.path().join("unpaged.html");
    std::fs::write(&unpaged_file, &unpaged)?;
    let blank_file = dir.path().join("blank.html");
    std::fs::write(
        &blank_file,
        "<!DOCTYPE html><title>blank</title><p>blank</p>",
    )?;

    // The server, as the daemon runs it (without the access guard).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = AppState {
        river_id: store.river_id()?,
        store: store.clone(),
        title: "Bench River".into(),
        base_url: None,
        entries: 50,
        attribution: None,
        cache: Default::default(),
        searches: Arc::new(Default::default()),
        hub: None,
        agreement: Default::default(),
    };
    tokio::spawn(newsriver::server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/status");
    let mut cold = Vec::new();
    let mut size = 0;
    for page in 1..=repeat {
        // A page not rendered before: the store's queries and the rendering.
        let t = Instant::now();
        let body = client
            .get(format!("{url}?page={page}"))
            .send()
            .await?
            .bytes()
            .await?;
        cold.push(t.elapsed().as_secs_f64() * 1000.0);
        if page == 1 {
            size = body.len();
        }
    }
    let json = client
        .get(format!("http://{addr}/status.json"))
        .send()
        .await?
        .bytes()
        .await?;
    println!(
        "| {feeds} feeds | first page of /status | every feed on one page (baseline) | ratio |\n|---|---|---|---|"
    );
    println!(
        "| HTML size | {:.1} kB | {:.1} kB | {:.3} |",
        size as f64 / 1024.0,
        unpaged.len() as f64 / 1024.0,
        size as f64 / unpaged.len() as f64
    );
    println!(
        "| /status.json size | {:.1} kB | | |",
        json.len() as f64 / 1024.0
    );
    println!(
        "| server time, a page not rendered before (p50 of {repeat}) | {:.1} ms | | |",
        median(cold)
    );
    println!(
        "| store: summary / page 10 / failing+tag+text (p50) | {:.1} / {:.1} / {:.1} ms | | |",
        median(summary_ms),
        median(page_ms),
        median(failing_ms)
    );

    let profile = dir.path().join("chromium-profile");
    if chromium(&format!("file://{}", blank_file.display()), &profile).is_none() {
        println!(
            "(chromium not on PATH: no render times; scripts/install-test-tools.sh installs it)"
        );
        return Ok(());
    }
    let (mut blank, mut paged, mut whole) = (Vec::new(), Vec::new(), Vec::new());
    let mut dom = 0;
    for _ in 0..repeat {
        blank.push(
            chromium(&format!("file://{}", blank_file.display()), &profile)
                .map_or(f64::NAN, |c| c.0),
        );
        if let Some((ms, len)) = chromium(&url, &profile) {
            paged.push(ms);
            dom = len;
        }
        whole.push(
            chromium(&format!("file://{}", unpaged_file.display()), &profile)
                .map_or(f64::NAN, |c| c.0),
        );
    }
    let spread = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!("{:.0} ms ({lo:.0}–{hi:.0})", median(v.to_vec()))
    };
    println!(
        "| headless Chromium: start, load, render, dump (p50 of {repeat}, min–max) | {} | {} | |",
        spread(&paged),
        spread(&whole)
    );
    println!(
        "| the same for an empty page (Chromium's own start) | {} | | |",
        spread(&blank)
    );
    println!(
        "| beyond an empty page (p50 difference) | {:.0} ms | {:.0} ms | |",
        median(paged) - median(blank.clone()),
        median(whole) - median(blank)
    );
    println!(
        "(the first page's rendered DOM: {:.1} kB)",
        dom as f64 / 1024.0
    );
    Ok(())
}
