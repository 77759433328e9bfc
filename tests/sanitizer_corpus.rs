//! The hostile HTML corpus (tests/fixtures/sanitize/hostile.json, format in its
//! README) run through the real sanitiser, with and without a base URL.

use serde::Deserialize;
use url::Url;

#[derive(Deserialize)]
struct Corpus {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    html: String,
    must_not_contain: Vec<String>,
    must_contain: Vec<String>,
}

fn corpus() -> Vec<Case> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sanitize/hostile.json");
    let corpus: Corpus = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    corpus.cases
}

fn failures(base: Option<&Url>) -> Vec<String> {
    let mut failures = Vec::new();
    for case in corpus() {
        let out = newsriver::sanitize::html(&case.html, base);
        let lower = out.to_lowercase();
        for bad in &case.must_not_contain {
            if lower.contains(&bad.to_lowercase()) {
                failures.push(format!("{}: found {bad:?} in {out:?}", case.name));
            }
        }
        for good in &case.must_contain {
            if !out.contains(good.as_str()) {
                failures.push(format!("{}: missing {good:?} in {out:?}", case.name));
            }
        }
    }
    failures
}

#[test]
fn the_corpus_is_complete_and_every_case_asserts_something() {
    let cases = corpus();
    assert_eq!(cases.len(), 165);
    let names: std::collections::HashSet<_> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    for case in &cases {
        assert!(
            !(case.must_contain.is_empty() && case.must_not_contain.is_empty()),
            "{} asserts nothing",
            case.name
        );
    }
}

#[test]
fn every_hostile_case_is_defused_without_a_base_url() {
    let failures = failures(None);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_hostile_case_is_defused_when_relative_urls_resolve_against_the_entry() {
    // At ingest, relative URLs are resolved against the entry's link.
    let base = Url::parse("https://news.example/2026/11/story.html").unwrap();
    let failures = failures(Some(&base));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
