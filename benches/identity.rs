//! The identity stage of ingest, per entry: normalising an entry's text,
//! its change hashes and its near-duplicate fingerprint, on 1,000 entries
//! shaped like the benchmark farm's (a headline and about 1.4 kB of prose in
//! one HTML paragraph). The baseline, measured in the same run, is hashing the
//! same bytes with XXH3 (one fast pass over the text, nothing else).
//!
//! Run: cargo bench --bench identity

use std::hint::black_box;
use std::time::{Duration, Instant};

use newsriver::identity::{self, fingerprint};
use newsriver::model::ParsedEntry;

const WORDS: [&str; 24] = [
    "Council", "budget", "harbour", "traffic", "rainfall", "bread", "district", "price",
    "minister", "school", "bridge", "river", "market", "season", "report", "vote", "Hospital",
    "railway", "festival", "library", "2026", "storm", "court's", "café",
];

fn entries() -> Vec<ParsedEntry> {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut word = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        WORDS[(seed % WORDS.len() as u64) as usize]
    };
    (0..1000)
        .map(|i| {
            let mut prose = String::from("<p>");
            while prose.len() < 1400 {
                let sentence: Vec<&str> = (0..12).map(|_| word()).collect();
                prose.push_str(&sentence.join(" "));
                prose.push_str(". ");
            }
            prose.push_str("</p>");
            ParsedEntry {
                guid: Some(format!("outlet-story-{i}")),
                title: format!("Outlet reports development number {i} in the long running story"),
                link: Some(format!("https://outlet.example/news/2026/11/27/story-{i}")),
                author: Some("Reporter".into()),
                summary: Some(prose),
                ..Default::default()
            }
        })
        .collect()
}

/// Fastest of `runs` passes over all entries, per entry.
fn per_entry<F: FnMut(&ParsedEntry)>(entries: &[ParsedEntry], runs: u32, mut f: F) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            for e in entries {
                f(e);
            }
            start.elapsed() / entries.len() as u32
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let entries = entries();
    let runs = 30;
    let bytes: usize = entries
        .iter()
        .map(|e| e.title.len() + e.summary.as_deref().map_or(0, str::len))
        .sum::<usize>()
        / entries.len();
    println!("{} entries of about {bytes} bytes of text\n", entries.len());
    let baseline = per_entry(&entries, runs, |e| {
        black_box(xxhash_rust::xxh3::xxh3_64(e.title.as_bytes()));
        black_box(xxhash_rust::xxh3::xxh3_64(
            e.summary.as_deref().unwrap_or("").as_bytes(),
        ));
    });
    let normalise = per_entry(&entries, runs, |e| {
        black_box(fingerprint::normalised_text(&e.title));
        black_box(fingerprint::normalised_text(
            e.summary.as_deref().unwrap_or(""),
        ));
    });
    let fingerprint = per_entry(&entries, runs, |e| {
        black_box(fingerprint::Fingerprint::of(
            &e.title,
            e.summary.as_deref().unwrap_or(""),
        ));
    });
    let whole = per_entry(&entries, runs, |e| {
        black_box(newsriver::model::IdentifiedEntry::new(
            identity::entry_key(e),
            e.clone(),
        ));
    });
    let clone = per_entry(&entries, runs, |e| {
        black_box(e.clone());
    });
    let row = |name: &str, d: Duration| {
        println!(
            "{name:<58} {:>8.2} µs  {:>6.1}× baseline",
            d.as_secs_f64() * 1e6,
            d.as_secs_f64() / baseline.as_secs_f64()
        );
    };
    row("baseline: XXH3 of title and text", baseline);
    row("normalised text of title and text", normalise);
    row(
        "fingerprint of title and text (normalising included)",
        fingerprint,
    );
    row(
        "whole identity stage (IdentifiedEntry::new)",
        whole.saturating_sub(clone),
    );
}
