//! Memory stays bounded under hostile bodies, with the default limits: a gzip
//! bomb that expands to 4 GiB, a body that never ends, billion laughs and
//! pathological nesting. Its own test binary, so the process's peak RSS is
//! this test's alone.

mod common;

use common::config_for;
use common::faults::{BILLION_LAUGHS, Fault, FaultServer};
use newsriver::model::FeedState;

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn hostile_bodies_keep_peak_memory_bounded() {
    let server = FaultServer::start().await;
    server.set("/bomb", Fault::gzip_bomb(4 << 30));
    server.set(
        "/endless",
        Fault::Answer {
            status: 200,
            headers: vec![],
            body: vec![b'x'; 200 << 20].into(),
            length: false,
        },
    );
    server.set(
        "/laughs",
        Fault::body("application/rss+xml", BILLION_LAUGHS),
    );
    let deep = format!(
        "<rss version=\"2.0\"><channel>{}{}</channel></rss>",
        "<x>".repeat(1_000_000),
        "</x>".repeat(1_000_000)
    );
    server.set("/deep", Fault::body("application/rss+xml", deep));
    let dir = tempfile::tempdir().unwrap();
    let paths = ["/bomb", "/endless", "/laughs", "/deep"];
    let urls: Vec<String> = paths.iter().map(|p| server.url(p)).collect();
    let config = config_for(dir.path(), &urls, "");

    // Reset the peak so that only the polls count (Linux ≥ 4.0).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = rss_kib("VmRSS:");
    newsriver::poll_once(&config).await.unwrap();
    let peak = rss_kib("VmHWM:");
    let growth_mib = peak.saturating_sub(before) / 1024;
    eprintln!(
        "memory: RSS before {} MiB, peak during polls {} MiB (+{growth_mib} MiB; peak reset: {reset})",
        before / 1024,
        peak / 1024
    );
    let store = newsriver::Store::open_configured(&config.storage).unwrap();
    let statuses = store.feed_statuses().unwrap();
    for s in &statuses {
        eprintln!("{} {:?} {:?}", s.url, s.state, s.last_error);
    }
    let failing = |p: &str| {
        statuses
            .iter()
            .find(|s| s.url == server.url(p))
            .is_some_and(|s| s.state == FeedState::Failing)
    };
    assert!(failing("/bomb") && failing("/endless") && failing("/deep"));
    // Limits: 15 MiB on the wire, 32 MiB decoded. The server's own copies of
    // the bodies (about 300 MiB) were made before the reset.
    assert!(
        growth_mib < 100,
        "peak memory grew by {growth_mib} MiB while polling hostile feeds"
    );
}
