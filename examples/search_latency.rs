//! Search latency on a stored river (issue 17): ten typical queries, each run
//! `--repeat` times through the store (the first page of the query's view,
//! `--limit` stories, as `/search.atom` renders it), p50 and p99 in ms.
//!   cargo run --release --example search_latency -- DB [--repeat 50] [--limit 100]

use std::time::Instant;

use newsriver::Store;
use newsriver::search::Query;
use newsriver::store::{PageStart, SearchView, StoryFilter};

const QUERIES: [&str; 10] = [
    "harbour",
    "harbour ferry",
    "\"harbour ferry\"",
    "\"harbour ferry cargo\"",
    "storm OR summit",
    "budget -tax",
    "title:\"number 42\"",
    "author:\"reporter 3\"",
    "source:\"outlet 4242\"",
    "source:\"outlet 4242\" harbour -ferry",
];

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: search_latency DB"))?;
    let (mut repeat, mut limit) = (50usize, 100usize);
    while let Some(flag) = args.next() {
        let value: usize = args.next().unwrap_or_default().parse()?;
        match flag.as_str() {
            "--repeat" => repeat = value,
            "--limit" => limit = value,
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    let store = Store::open(std::path::Path::new(&path))?;
    println!(
        "{} entries, {} indexed; first page of {limit}, {repeat} runs each",
        store.entry_count()?,
        store.indexed_entries()?
    );
    println!("| query | stories on the page | p50 | p99 |\n|---|---|---|---|");
    let mut all = Vec::new();
    for text in QUERIES {
        let filter = StoryFilter::Search(SearchView {
            query: Query::parse(text)?,
            tags: Vec::new(),
        });
        let mut times = Vec::with_capacity(repeat);
        let mut found = 0;
        for _ in 0..repeat {
            let started = Instant::now();
            found = store
                .story_page(&filter, PageStart::Newest, limit)?
                .stories
                .len();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "| `{}` | {found} | {:.1} ms | {:.1} ms |",
            text.replace('|', "\\|"),
            at(0.5),
            at(0.99)
        );
        all.extend(times);
    }
    all.sort_by(f64::total_cmp);
    let at = |q: f64| all[((all.len() - 1) as f64 * q).round() as usize];
    println!("| all ten | | {:.1} ms | {:.1} ms |", at(0.5), at(0.99));
    Ok(())
}
