//! Mutation fuzzing of the whole parse stage: every fixture in
//! `tests/fixtures` (the seed corpus) is truncated, bit-flipped, given wrong
//! declarations and byte-order marks, nested deep, padded with huge
//! attributes and spliced with another, a bounded number of times from a
//! fixed seed. No case may panic (caught or not), and none may take long.
//!
//! `NEWSRIVER_FUZZ_CASES` raises the number of cases per seed for a longer
//! run; `NEWSRIVER_FUZZ_SEED` picks another seed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A document that takes longer than this (in a debug build, on a shared
/// machine) is a hang, not slowness: real parses take milliseconds.
const TOO_LONG: Duration = Duration::from_secs(10);

fn seeds() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "xml" || e == "rdf" || e == "json" || e == "atom")
            {
                let body = std::fs::read(&path).unwrap();
                out.push((path.display().to_string(), body));
            }
        }
    }
    out.sort();
    out
}

fn mutate(rng: &mut StdRng, doc: &[u8], other: &[u8]) -> Vec<u8> {
    let mut d = doc.to_vec();
    let at = |rng: &mut StdRng, len: usize| rng.random_range(0..=len);
    match rng.random_range(0..10) {
        0 => d.truncate(at(rng, doc.len())),
        1 => {
            for _ in 0..rng.random_range(1..16) {
                if !d.is_empty() {
                    let i = rng.random_range(0..d.len());
                    d[i] ^= 1 << rng.random_range(0..8);
                }
            }
        }
        2 => {
            let labels = [
                "utf-16",
                "utf-32",
                "cp037",
                "ebcdic-cp-us",
                "x-unknown",
                "utf-8",
                "iso-8859-1",
                "",
            ];
            let label = labels[rng.random_range(0..labels.len())];
            let mut out = format!("<?xml version=\"1.0\" encoding=\"{label}\"?>").into_bytes();
            out.extend_from_slice(&d);
            d = out;
        }
        3 => {
            let boms: [&[u8]; 5] = [
                &[0xEF, 0xBB, 0xBF],
                &[0xFF, 0xFE],
                &[0xFE, 0xFF],
                &[0xFF, 0xFE, 0, 0],
                &[0, 0, 0xFE, 0xFF],
            ];
            let mut out = boms[rng.random_range(0..boms.len())].to_vec();
            out.extend_from_slice(&d);
            d = out;
        }
        4 => {
            let n = rng.random_range(100..400);
            let i = at(rng, d.len());
            let deep = format!("{}{}", "<div>".repeat(n), "</div>".repeat(n));
            d.splice(i..i, deep.into_bytes());
        }
        5 => {
            let i = at(rng, d.len());
            let huge = format!(
                " <x a=\"{}\"/>",
                "a&amp;".repeat(rng.random_range(1_000..50_000))
            );
            d.splice(i..i, huge.into_bytes());
        }
        6 => {
            let (i, j) = (at(rng, d.len()), at(rng, other.len()));
            d.truncate(i);
            d.extend_from_slice(&other[j..]);
        }
        7 => {
            // Odd Atom and RSS constructs dropped in anywhere.
            let bits = [
                "<content type=\"application/xhtml+xml\"><p>x</p></content>",
                "<content mode=\"base64\" type=\"text/html\">!!notbase64</content>",
                "<summary type=\"text/plain\"/>",
                "<content src=\"x\" type=\"html\">y</content>",
                "<item rdf:about=\"&#0;\"></item>",
                "<entry><entry><item/></entry></entry>",
                "</rss></feed>",
                "<![CDATA[",
                "&#xD800;&#1114112;&bogus;",
                "<title type=\"xhtml\"><div",
            ];
            let i = at(rng, d.len());
            d.splice(i..i, bits[rng.random_range(0..bits.len())].bytes());
        }
        8 => {
            // Every byte as a 16-bit unit: UTF-16 with nothing saying so.
            d = d.iter().flat_map(|b| [*b, 0]).collect();
        }
        _ => {
            let n = rng.random_range(1..64);
            let i = at(rng, d.len());
            let junk: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            d.splice(i..i, junk);
        }
    }
    d
}

#[test]
fn mutated_documents_never_panic_and_never_hang() {
    let cases: usize = std::env::var("NEWSRIVER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let seed: u64 = std::env::var("NEWSRIVER_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(19);
    let corpus = seeds();
    assert!(
        corpus.len() >= 20,
        "seed corpus: {} documents",
        corpus.len()
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut read, mut refused, mut total) = (0usize, 0usize, 0usize);
    for (i, (name, doc)) in corpus.iter().enumerate() {
        let other = &corpus[(i + 1) % corpus.len()].1;
        for case in 0..cases {
            let body = mutate(&mut rng, doc, other);
            let started = Instant::now();
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                newsriver::parse::parse(&body, None, "http://fuzz.example/feed")
            }));
            let took = started.elapsed();
            let Ok(result) = outcome else {
                let path = std::env::temp_dir().join(format!("newsriver-fuzz-{seed}-{i}-{case}"));
                let _ = std::fs::write(&path, &body);
                panic!(
                    "{name}, case {case}: the parse panicked (input saved in {})",
                    path.display()
                );
            };
            assert!(took < TOO_LONG, "{name}, case {case}: {took:?}");
            match result {
                Ok(_) => read += 1,
                Err(_) => refused += 1,
            }
            total += 1;
        }
    }
    // The cases reach both outcomes: some mutations leave a readable feed,
    // some do not (so the error paths were exercised as well as the reads).
    assert_eq!(read + refused, total);
    assert!(
        read > 0 && refused > 0,
        "{read} read, {refused} refused of {total}"
    );
}
