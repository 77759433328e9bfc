//! Precision and recall of story merging over the labelled corpus in
//! tests/fixtures/dedup/pairs.json, with the production matcher and its
//! default settings: same canonical link, or near-duplicate text in the window.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use newsriver::identity::canonical_url;
use newsriver::identity::fingerprint::{Candidate, Fingerprint, MatchSettings, same_story};
use serde::Deserialize;

#[derive(Deserialize)]
struct Corpus {
    pairs: Vec<Pair>,
}

#[derive(Deserialize)]
struct Pair {
    id: String,
    same_story: bool,
    kind: String,
    a: Item,
    b: Item,
}

#[derive(Deserialize)]
struct Item {
    title: String,
    text: String,
    link: String,
    published: DateTime<Utc>,
}

fn candidate(item: &Item) -> Candidate {
    Candidate {
        fingerprint: Fingerprint::of(&item.title, &item.text).expect("corpus texts have words"),
        time: item.published,
        title: item.title.clone(),
    }
}

/// What the store decides for two entries of different feeds: the same
/// canonical link, or near-duplicate text — compared only when the two share
/// an LSH band, as the store's index does.
fn merged(a: &Item, b: &Item, settings: &MatchSettings) -> bool {
    let (ca, cb) = (candidate(a), candidate(b));
    canonical_url(&a.link) == canonical_url(&b.link)
        || (ca.fingerprint.shares_a_band(&cb.fingerprint) && same_story(&ca, &cb, settings))
}

#[test]
fn story_merging_has_precision_and_recall_of_at_least_95_percent() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dedup/pairs.json"
    );
    let corpus: Corpus = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(corpus.pairs.len() >= 200, "{} pairs", corpus.pairs.len());
    let settings = MatchSettings::default();

    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    let mut by_kind: BTreeMap<(bool, &str), (usize, usize)> = BTreeMap::new();
    let mut errors = Vec::new();
    let (mut lowest_positive, mut highest_negative) = (f64::MAX, f64::MIN);
    for pair in &corpus.pairs {
        let got = merged(&pair.a, &pair.b, &settings);
        let c = candidate(&pair.a)
            .fingerprint
            .containment(&candidate(&pair.b).fingerprint);
        if pair.same_story {
            lowest_positive = lowest_positive.min(c);
        } else {
            highest_negative = highest_negative.max(c);
        }
        let slot = by_kind
            .entry((pair.same_story, pair.kind.as_str()))
            .or_default();
        slot.0 += 1;
        if got == pair.same_story {
            slot.1 += 1;
        } else {
            errors.push(format!(
                "{} {} (label {}) containment {c:.2}",
                pair.id, pair.kind, pair.same_story
            ));
        }
        match (pair.same_story, got) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            (false, false) => {}
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    println!(
        "dedup corpus: {} pairs, threshold {} (containment), window {} h: precision {precision:.3} ({tp}/{}), recall {recall:.3} ({tp}/{})",
        corpus.pairs.len(),
        settings.threshold,
        settings.window.num_hours(),
        tp + fp,
        tp + fn_
    );
    println!(
        "estimated containment: lowest same-story pair {lowest_positive:.2}, highest different-story pair {highest_negative:.2}"
    );
    for ((label, kind), (n, right)) in &by_kind {
        println!("  {label:5} {kind:20} {right}/{n}");
    }
    for e in &errors {
        println!("  wrong: {e}");
    }
    // How much room the default threshold has on either side.
    for threshold in [0.3, 0.4, 0.5, 0.6, 0.7, 0.8] {
        let s = MatchSettings {
            threshold,
            ..settings
        };
        let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
        for pair in &corpus.pairs {
            match (pair.same_story, merged(&pair.a, &pair.b, &s)) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fn_ += 1,
                (false, false) => {}
            }
        }
        println!(
            "  threshold {threshold:.1}: precision {:.3}, recall {:.3}",
            tp as f64 / (tp + fp).max(1) as f64,
            tp as f64 / (tp + fn_).max(1) as f64
        );
    }
    assert!(precision >= 0.95, "precision {precision:.3}");
    assert!(recall >= 0.95, "recall {recall:.3}");
}
