//! Reads file paths on stdin, parses each with newsriver's parse stage and
//! prints one JSON object a line: the entries recovered, the warnings of a
//! recovered parse, or the error. `bench/parser_corpus.py` compares the output
//! with Python feedparser's reading of the same files.

use std::io::BufRead;
use std::time::Instant;

fn main() {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(path) = line else { break };
        let body = match std::fs::read(&path) {
            Ok(body) => body,
            Err(e) => {
                println!(
                    "{}",
                    serde_json::json!({"path": path, "error": e.to_string()})
                );
                continue;
            }
        };
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(|| {
            newsriver::parse::parse(&body, None, "http://feeds.example/feed.xml")
        });
        let micros = started.elapsed().as_micros() as u64;
        let record = match outcome {
            Err(_) => serde_json::json!({"path": path, "panic": true, "micros": micros}),
            Ok(Err(e)) => {
                serde_json::json!({"path": path, "error": e.to_string(), "micros": micros})
            }
            Ok(Ok(feed)) => serde_json::json!({
                "path": path,
                "micros": micros,
                "title": feed.meta.title,
                "warnings": feed.warnings,
                "entries": feed.entries.iter().map(|e| serde_json::json!({
                    "title": e.title, "link": e.link, "guid": e.guid,
                    "content": e.content.as_deref().or(e.summary.as_deref()),
                })).collect::<Vec<_>>(),
            }),
        };
        println!("{record}");
    }
}
