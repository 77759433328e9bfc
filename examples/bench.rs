//! The benchmark harness's command line; `bench/run.sh` builds and runs it.
//! See BENCHMARKS.md for what it measures.

#[path = "../bench/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
#[command(about = "Measures newsriver against this machine's ceilings and writes BENCHMARKS.md")]
struct Args {
    /// Feeds in the ingest farm (P1, P2).
    #[arg(long, default_value_t = 2000)]
    feeds: usize,
    /// Entries per feed.
    #[arg(long, default_value_t = 50)]
    entries: usize,
    /// Fetch concurrency (newsriver's `[fetch].concurrency` and the ceilings').
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Feed counts of the growth series (P5); the largest is also the footprint run (P4).
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    growth: Vec<usize>,
    /// Concurrent connections of the serving load (P3).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of serving load per measurement (P3).
    #[arg(long, default_value_t = 5.0)]
    load_seconds: f64,
    /// The newsriver binary to measure.
    #[arg(long, default_value = "target/release/newsriver")]
    newsriver: PathBuf,
    /// Scratch folder for databases.
    #[arg(long, default_value = "target/bench-work")]
    work: PathBuf,
    /// Serve the ingest farm and write its config, then wait for Ctrl-C (for
    /// profiling newsriver by hand against the same farm).
    #[arg(long)]
    serve_only: bool,
    /// Runs of each repeatable measurement (ceilings, warm re-polls, growth
    /// points up to 1,000 feeds); the fastest counts.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Where to write the report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    format!(
        "{cpu}, {cores} cores, {:.0} GiB RAM, {}",
        mem as f64 / 1048576.0,
        std::env::consts::OS
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let params = harness::Params {
        feeds: args.feeds,
        entries: args.entries,
        concurrency: args.concurrency,
        footprint_feeds: args.growth.iter().copied().max().unwrap_or(args.feeds),
        growth: args.growth.clone(),
        connections: args.connections,
        load_time: Duration::from_secs_f64(args.load_seconds),
        served_entries: 100,
        newsriver: args.newsriver.clone(),
        work: args.work.clone(),
        repeat: args.repeat,
    };
    if args.serve_only {
        let farm = harness::Farm::start(args.feeds, args.entries).await?;
        let folder = args.work.join("serve-only");
        let _ = std::fs::remove_dir_all(&folder);
        let config = harness::write_config(&farm, &folder, args.concurrency, 100)?;
        println!(
            "serving {} feeds; config: {}",
            farm.feeds(),
            config.display()
        );
        tokio::signal::ctrl_c().await?;
        return Ok(());
    }
    let command: Vec<String> = std::env::args().skip(1).collect();
    let command = format!("bench/run.sh {}", command.join(" "))
        .trim()
        .to_string();
    let results = harness::run_all(&params, |line| eprintln!("bench: {line}")).await?;
    let mut report = harness::report(&params, &results, &machine(), &command);
    // The hand-written reading of the figures (what dominates, what was
    // done about it) follows the generated table.
    if let Ok(notes) = std::fs::read_to_string("bench/notes.md") {
        report.push('\n');
        report.push_str(&notes);
    }
    std::fs::write(&args.out, &report)?;
    println!("{report}");
    eprintln!("bench: wrote {}", args.out.display());
    Ok(())
}
