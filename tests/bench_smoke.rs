//! A tiny run of the benchmark harness, so it cannot rot: every phase runs
//! against the debug binary and produces sane figures and a report.

#[path = "../bench/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::time::Duration;

#[test]
fn the_synthetic_feed_is_valid_rss_with_every_entry() {
    let xml = harness::feed_xml(7, 12);
    let feed = feed_rs::parser::parse(&xml[..]).unwrap();
    assert_eq!(feed.entries.len(), 12);
    assert_eq!(feed.title.unwrap().content, "Farm outlet 7");
    assert!(feed.entries.iter().all(|e| e.published.is_some()));
    // About 1.7 kB per entry, as the farm (170 MB for 100,000 entries).
    let per_entry = harness::feed_xml(0, 100).len() / 100;
    assert!(
        (1500..2000).contains(&per_entry),
        "{per_entry} bytes per entry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smoke_sized_benchmark_runs_every_phase() {
    let work = tempfile::tempdir().unwrap();
    let params = harness::Params {
        feeds: 12,
        entries: 5,
        concurrency: 4,
        growth: vec![4, 8],
        footprint_feeds: 8,
        connections: 4,
        load_time: Duration::from_millis(300),
        served_entries: 20,
        newsriver: PathBuf::from(env!("CARGO_BIN_EXE_newsriver")),
        work: work.path().to_path_buf(),
        repeat: 2,
    };
    let results = harness::run_all(&params, |_| {}).await.unwrap();

    let p1 = results.p1.as_ref().unwrap();
    assert_eq!(p1.cold.new_entries, 60);
    assert!(p1.fetch > Duration::ZERO && p1.fetch_parse > Duration::ZERO);
    // Each store floor fails unless it stored every entry it parsed; each
    // parse stage and its writer ran.
    for floor in [&p1.floor, &p1.stage_floor] {
        assert!(floor.wall > Duration::ZERO && floor.parse_cpu > Duration::ZERO);
        assert!(floor.writer_cpu > Duration::ZERO);
    }
    // Read from /proc on Linux, where the suite runs (in 10 ms ticks, so a
    // poll this small may well count zero).
    assert!(p1.cold.cpu.is_some());
    assert!(
        results
            .p2_304
            .as_ref()
            .unwrap()
            .0
            .summary
            .contains("0 ok, 12 not modified"),
        "{:?}",
        results.p2_304
    );
    assert_eq!(results.p2_200.as_ref().unwrap().0.new_entries, 0);
    let (ours, baseline, served) = results.p3.unwrap();
    assert_eq!(served, 20);
    assert!(ours.requests > 0 && baseline.requests > 0 && ours.p99 >= ours.p50);
    let (rss, db, startup, poll_rss, entries) = results.p4.unwrap();
    // The poll that built the database was sampled while it ran.
    assert!(poll_rss > 1024, "{poll_rss} KiB");
    assert_eq!(entries, 40);
    assert!(rss > 1024 && db > 0 && startup > Duration::ZERO);
    assert_eq!(
        results.p5.iter().map(|x| x.0).collect::<Vec<_>>(),
        vec![4, 8]
    );

    let report = harness::report(&params, &results, "test machine", "bench/run.sh --smoke");
    for needle in [
        "P1 cold ingest",
        "store floor",
        "newsriver's parse stage and bare rows",
        "CPU time of a cold ingest",
        "P2 warm re-poll, all 304",
        "P2 warm re-poll, all 200",
        "P3 `/feed.atom`",
        "P4 peak RSS",
        "P4 start-up",
        "P5 cost per feed",
    ] {
        assert!(report.contains(needle), "report lacks {needle}:\n{report}");
    }
}
