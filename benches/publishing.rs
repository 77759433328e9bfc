//! Publishing costs: what a render-cache hit saves over a miss, and what each
//! format and each compression level costs, on a river of 1000 stored entries.
//!
//! Run: cargo bench --bench publishing

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use newsriver::identity;
use newsriver::model::{IdentifiedEntry, ParsedEntry, SourceMeta, Validators};
use newsriver::publish::{self, FeedDoc};
use newsriver::store::{FeedSpec, PageStart, Store, StoryFilter};

fn median<F: FnMut()>(iterations: u32, mut f: F) -> Duration {
    let mut times: Vec<Duration> = (0..iterations)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn report(name: &str, d: Duration) {
    println!("{name:<52} {:>10.1} µs", d.as_secs_f64() * 1e6);
}

fn river() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.db")).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap();
    let specs: Vec<FeedSpec> = (0..20)
        .map(|i| FeedSpec {
            url: format!("https://outlet{i}.example/feed.xml"),
            title: Some(format!("Outlet {i}")),
            interval: Duration::from_secs(1800),
            tags: vec![format!("tag{}", i % 4)],
            fixed_interval: false,
        })
        .collect();
    store.sync_feeds(&specs, now).unwrap();
    let paragraph = "<p>The council met on Thursday to discuss the <a href=\"https://outlet.example/a\">new plan</a> for the riverside, with <em>many</em> residents attending.</p>";
    for (f, feed) in store.active_feeds().unwrap().iter().enumerate() {
        let entries: Vec<IdentifiedEntry> = (0..50)
            .map(|i| {
                let entry = ParsedEntry {
                    guid: Some(format!("{f}-{i}")),
                    title: format!("Story {i} from outlet {f}: a headline of usual length"),
                    link: Some(format!("https://outlet{f}.example/news/{i}")),
                    author: Some("A. Reporter".into()),
                    summary: Some(paragraph.into()),
                    content: Some(paragraph.repeat(6)),
                    published: Some(now - chrono::Duration::minutes((i * 20 + f) as i64)),
                    ..Default::default()
                };
                IdentifiedEntry::new(identity::entry_key(&entry), entry)
            })
            .collect();
        let meta = SourceMeta::default();
        store
            .save_poll(
                feed.id,
                now,
                200,
                &meta,
                &Validators::default(),
                &entries,
                now,
            )
            .unwrap();
    }
    (dir, store)
}

fn doc() -> FeedDoc {
    FeedDoc {
        id: "urn:uuid:00000000-0000-8000-8000-00000000000a".into(),
        title: "Bench".into(),
        description: publish::river_description(),
        self_url: "http://127.0.0.1/feed.atom".into(),
        first_url: "http://127.0.0.1/feed.atom".into(),
        html_url: "http://127.0.0.1/".into(),
        next_url: None,
        previous_url: None,
        attribution: None,
        hub: None,
    }
}

fn main() {
    let (_dir, store) = river();
    let n = 200;
    println!("1000 stored entries, pages of 100, median of {n} runs\n");

    let hit = median(n, || {
        store.data_version().unwrap();
    });
    report("cache hit: PRAGMA data_version", hit);
    let query = median(n, || {
        store
            .story_page(&StoryFilter::All, PageStart::Newest, 100)
            .unwrap();
    });
    report("cache miss: query 100 stories", query);
    let page = store
        .story_page(&StoryFilter::All, PageStart::Newest, 100)
        .unwrap();
    let mut atom = String::new();
    let atom_time = median(n, || atom = publish::atom_page(&doc(), &page.stories));
    report("cache miss: render Atom", atom_time);
    report(
        "cache miss: render RSS",
        median(n, || {
            publish::rss(&doc(), &page.stories);
        }),
    );
    report(
        "cache miss: render JSON Feed",
        median(n, || {
            publish::json_feed(&doc(), &page.stories);
        }),
    );
    use sha2::Digest;
    let hash = median(n, || {
        sha2::Sha256::digest(atom.as_bytes());
    });
    report("cache miss: ETag (SHA-256 of the Atom body)", hash);
    let miss = query + atom_time + hash;
    report("=> Atom miss (query + render + hash)", miss);
    println!(
        "=> a hit costs {:.2}% of a miss ({:.0}x cheaper)\n",
        100.0 * hit.as_secs_f64() / miss.as_secs_f64(),
        miss.as_secs_f64() / hit.as_secs_f64()
    );

    println!("compressing the {} KiB Atom body:", atom.len() / 1024);
    for quality in [5u32, 11] {
        let mut size = 0;
        let t = median(20, || {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, quality, 22);
                w.write_all(atom.as_bytes()).unwrap();
            }
            size = out.len();
        });
        report(
            &format!("brotli quality {quality} ({} KiB)", size / 1024),
            t,
        );
    }
    for level in [5u32, 9] {
        let mut size = 0;
        let t = median(20, || {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            w.write_all(atom.as_bytes()).unwrap();
            size = w.finish().unwrap().len();
        });
        report(&format!("gzip level {level} ({} KiB)", size / 1024), t);
    }
}
