//! WebSub push → river latency (issue 16): an outlet on a hub (the test hub
//! of tests/common/hub.rs) and a newsriver daemon, all in this process on
//! loopback. Once subscribed, the hub pushes `--pushes` new articles one at
//! a time, each as the outlet's whole document (its newest `--entries`
//! entries); for each, the time from the push leaving the hub until
//! `/feed.atom` carries the article (polled every millisecond), and the
//! push's own round trip (until the callback answered). Beside them, in the
//! same run: a bare `GET /feed.atom` (the floor of any "is it there yet").
//! With `--serve-hub 1`, newsriver is also its own hub and a reader is
//! subscribed to `/feed.atom` there: the time until the reader has the
//! article is measured too (a debounced ping: expect about 2 s).
//!   cargo run --release --example websub_latency -- [--pushes 50] [--entries 20] [--serve-hub 1]

#[path = "../tests/common/hub.rs"]
mod hub;

use std::time::{Duration, Instant};

use hub::{Outlet, Sign, TestHub, atom};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut pushes, mut entries, mut serve_hub) = (50usize, 20usize, false);
    while let Some(flag) = args.next() {
        let value: usize = args.next().unwrap_or_default().parse()?;
        match flag.as_str() {
            "--pushes" => pushes = value,
            "--entries" => entries = value,
            "--serve-hub" => serve_hub = value != 0,
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    let dir = tempfile::tempdir()?;
    let hub = TestHub::start().await;
    let titles: Vec<(String, String)> = (0..entries)
        .map(|i| (format!("old{i}"), format!("Earlier story {i}")))
        .collect();
    let doc = |list: &[(String, String)]| {
        let pairs: Vec<(&str, &str)> = list.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        atom("Harbour Gazette", None, None, &pairs)
    };
    let outlet = Outlet::start(&doc(&titles), "application/atom+xml", None).await;
    outlet.set_link(&format!(
        "<{}>; rel=\"hub\", <{}>; rel=\"self\"",
        hub.url(),
        outlet.url()
    ));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let toml = format!(
        "[storage]\npath = {:?}\n[fetch]\nhost_gap = \"5ms\"\n[output]\nbase_url = \"http://{addr}/\"\n[websub]\nserve_hub = {serve_hub}\n[[feed]]\nurl = \"{}\"\n",
        dir.path().join("river.db").display().to_string(),
        outlet.url()
    );
    let config = newsriver::Config::parse(&toml, std::path::Path::new("bench.toml"))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(newsriver::daemon::run_with(
        config,
        None,
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    hub.wait_for("a verified subscription", 30, |s| !s.subscribers.is_empty())
        .await;
    let topic = hub.with(|s| s.subscribers[0].topic.clone());
    let client = reqwest::Client::new();
    let river = format!("http://{addr}/feed.atom");
    let reader = hub::Reader::start(false).await;
    if serve_hub {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("hub.mode", "subscribe")
            .append_pair("hub.topic", &river)
            .append_pair("hub.callback", &reader.callback())
            .append_pair("hub.secret", "reader-secret")
            .finish();
        let status = client
            .post(format!("http://{addr}/hub"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await?
            .status();
        anyhow::ensure!(status == 202, "the built-in hub answered {status}");
        while reader.verified.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut relayed = Vec::with_capacity(pushes);

    let mut visible = Vec::with_capacity(pushes);
    let mut answered = Vec::with_capacity(pushes);
    let mut bare = Vec::with_capacity(pushes);
    let mut current = titles.clone();
    for n in 0..pushes {
        let title = format!("Breaking story number {n}");
        current.insert(0, (format!("new{n}"), title.clone()));
        current.truncate(entries);
        let body = doc(&current);
        let start = Instant::now();
        let statuses = hub
            .push(&topic, body.as_bytes(), "application/atom+xml", Sign::Good)
            .await;
        answered.push(start.elapsed());
        anyhow::ensure!(statuses == [200], "push {n} answered {statuses:?}");
        loop {
            let text = client.get(&river).send().await?.text().await?;
            if text.contains(&title) {
                visible.push(start.elapsed());
                break;
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(10),
                "push {n} never appeared"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if serve_hub {
            loop {
                let got = reader
                    .deliveries
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|d| String::from_utf8_lossy(&d.1).contains(&title))
                    .map(|d| d.0);
                if let Some(at) = got {
                    relayed.push(at - start);
                    break;
                }
                anyhow::ensure!(
                    start.elapsed() < Duration::from_secs(20),
                    "push {n} never reached the reader"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let start = Instant::now();
        client.get(&river).send().await?.bytes().await?;
        bare.push(start.elapsed());
    }
    let _ = stop.send(());
    daemon.await??;
    for list in [&mut visible, &mut answered, &mut bare, &mut relayed] {
        list.sort();
    }
    println!("pushes: {pushes}, each a whole document of {entries} entries");
    for (name, list) in [
        ("push sent -> visible in /feed.atom", &visible),
        ("push round trip (callback answered)", &answered),
        ("bare GET /feed.atom (same run)", &bare),
    ] {
        println!(
            "{name}: p50 {}, p95 {}, max {}",
            ms(percentile(list, 0.5)),
            ms(percentile(list, 0.95)),
            ms(*list.last().unwrap_or(&Duration::ZERO))
        );
    }
    if serve_hub {
        println!(
            "push sent -> reader of newsriver's own hub: p50 {}, p95 {}, max {}",
            ms(percentile(&relayed, 0.5)),
            ms(percentile(&relayed, 0.95)),
            ms(*relayed.last().unwrap_or(&Duration::ZERO))
        );
    }
    println!(
        "ratio visible/round trip at p50: {:.2}x",
        percentile(&visible, 0.5).as_secs_f64() / percentile(&answered, 0.5).as_secs_f64()
    );
    Ok(())
}
