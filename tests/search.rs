//! Search through the store: matching, order, paging while entries arrive,
//! updates into and out of a query, pruning, renamed outlets, tags. Each check
//! is a function taking a `Store`, so a second backend runs the same checks
//! by opening its own store (`backends()` yields each one available).

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use newsriver::Store;
use newsriver::identity;
use newsriver::model::{FeedId, IdentifiedEntry, ParsedEntry, SourceMeta, Validators};
use newsriver::search::Query;
use newsriver::store::{FeedSpec, PageStart, RetentionPolicy, SearchView, StoryFilter, StoryPage};

/// Every backend these tests run on, each a fresh, empty store (SQLite
/// today; PostgreSQL joins here when its store lands).
fn backends() -> Vec<(tempfile::TempDir, Store)> {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_store(&dir.path().join("search.db")).unwrap();
    vec![(dir, store)]
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn spec(url: &str, title: Option<&str>, tags: &[&str]) -> FeedSpec {
    FeedSpec {
        url: url.into(),
        title: title.map(str::to_string),
        interval: Duration::from_secs(600),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        fixed_interval: false,
    }
}

/// An entry dated `hour` o'clock on the day before `now()`.
fn item(guid: &str, hour: u32, title: &str, body: &str, author: Option<&str>) -> IdentifiedEntry {
    let entry = ParsedEntry {
        guid: Some(guid.into()),
        title: title.into(),
        link: Some(format!("https://news.example/{guid}")),
        author: author.map(str::to_string),
        content: Some(body.into()),
        published: Some(Utc.with_ymd_and_hms(2026, 2, 28, hour, 0, 0).unwrap()),
        ..Default::default()
    };
    IdentifiedEntry::new(identity::entry_key(&entry), entry)
}

/// Two outlets: "Wire Service" (tag world) and "Daily Paper" (tag local).
fn outlets(store: &Store) -> (FeedId, FeedId) {
    store
        .sync_feeds(
            &[
                spec(
                    "https://wire.example/feed",
                    Some("Wire Service"),
                    &["world"],
                ),
                spec(
                    "https://paper.example/feed",
                    Some("Daily Paper"),
                    &["local"],
                ),
            ],
            now(),
        )
        .unwrap();
    let feeds = store.active_feeds().unwrap();
    (feeds[0].id, feeds[1].id)
}

fn save(store: &Store, feed: FeedId, items: &[IdentifiedEntry]) {
    store
        .save_poll(
            feed,
            now(),
            200,
            &SourceMeta::default(),
            &Validators::default(),
            items,
            now(),
        )
        .unwrap();
}

fn found(store: &Store, query: &str) -> Vec<String> {
    let q = Query::parse(query).unwrap();
    store
        .search(&q, 100)
        .unwrap()
        .into_iter()
        .map(|s| s.title)
        .collect()
}

fn search_view(query: &str, tags: &[&str]) -> StoryFilter {
    StoryFilter::Search(SearchView {
        query: Query::parse(query).unwrap(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    })
}

fn titles(page: &StoryPage) -> Vec<&str> {
    page.stories.iter().map(|s| s.title.as_str()).collect()
}

fn check_every_construct_matches_as_documented(store: &Store) {
    let (wire, paper) = outlets(store);
    save(
        store,
        wire,
        &[
            item(
                "k1",
                1,
                "Talks on Nagorno-Karabakh resume",
                "<p>Envoys met in <b>Geneva</b>.</p>",
                Some("Anna Petrossian"),
            ),
            item(
                "k2",
                2,
                "Karabakh football final",
                "The sport section: a cup final.",
                None,
            ),
            item(
                "k3",
                3,
                "Kremlin comments on strikes",
                "A spokesman spoke about the striking workers.",
                Some("Ivan Doe"),
            ),
        ],
    );
    save(
        store,
        paper,
        &[
            item(
                "p1",
                4,
                "Café owners protest",
                "Les cafés ferment: grève générale.",
                Some("Zoë Martin"),
            ),
            item(
                "p2",
                5,
                "Council meets on karabakh refugees",
                "Local help.",
                None,
            ),
        ],
    );
    // Words (all required), newest first.
    assert_eq!(
        found(store, "karabakh"),
        [
            "Council meets on karabakh refugees",
            "Karabakh football final",
            "Talks on Nagorno-Karabakh resume"
        ]
    );
    assert_eq!(
        found(store, "karabakh talks"),
        ["Talks on Nagorno-Karabakh resume"]
    );
    // Phrases keep order; OR; exclusion.
    assert_eq!(
        found(store, "\"nagorno karabakh\""),
        ["Talks on Nagorno-Karabakh resume"]
    );
    assert_eq!(found(store, "\"karabakh nagorno\""), Vec::<String>::new());
    assert_eq!(
        found(store, "karabakh OR \"nagorno karabakh\" -sport"),
        [
            "Council meets on karabakh refugees",
            "Talks on Nagorno-Karabakh resume"
        ]
    );
    assert_eq!(
        found(store, "kremlin OR café"),
        ["Café owners protest", "Kremlin comments on strikes"]
    );
    // Case, accents and stems fold; markup is not indexed.
    assert_eq!(found(store, "CAFE greve"), ["Café owners protest"]);
    assert_eq!(found(store, "strike"), ["Kremlin comments on strikes"]);
    assert_eq!(found(store, "geneva"), ["Talks on Nagorno-Karabakh resume"]);
    assert_eq!(
        found(store, "b"),
        Vec::<String>::new(),
        "tags are not words"
    );
    // Fields.
    assert_eq!(found(store, "title:geneva"), Vec::<String>::new());
    assert_eq!(found(store, "author:zoe"), ["Café owners protest"]);
    assert_eq!(
        found(store, "source:wire karabakh"),
        [
            "Karabakh football final",
            "Talks on Nagorno-Karabakh resume"
        ]
    );
    assert_eq!(
        found(store, "karabakh -source:\"wire service\""),
        ["Council meets on karabakh refugees"]
    );
    // An outlet's name is only matched through source:.
    assert_eq!(found(store, "wire"), Vec::<String>::new());
    // Hostile but valid queries find nothing rather than fail.
    for q in [
        "'; DROP TABLE entries; --x",
        "NEAR(a b) ^x AND NOT",
        "\"*\" OR x*",
        "{title} x",
    ] {
        if let Ok(parsed) = Query::parse(q) {
            store.search(&parsed, 10).unwrap();
        }
    }
    assert_eq!(store.entry_count().unwrap(), 5, "nothing dropped");
}

fn check_paging_holds_while_new_entries_arrive(store: &Store) {
    let (wire, _) = outlets(store);
    let items: Vec<_> = (1..=9)
        .map(|h| {
            item(
                &format!("s{h}"),
                h,
                &format!("strike day {h}"),
                "Workers out.",
                None,
            )
        })
        .collect();
    save(store, wire, &items);
    let view = search_view("strike", &[]);
    let first = store.story_page(&view, PageStart::Newest, 4).unwrap();
    assert_eq!(
        titles(&first),
        [
            "strike day 9",
            "strike day 8",
            "strike day 7",
            "strike day 6"
        ]
    );
    assert_eq!(first.newer, None);
    // Newer matching entries arrive (and one that does not match).
    save(
        store,
        wire,
        &[
            item("s10", 10, "strike day 10", "More.", None),
            item("s11", 11, "weather", "Sunny.", None),
        ],
    );
    let second = store
        .story_page(&view, PageStart::Before(first.older.unwrap()), 4)
        .unwrap();
    assert_eq!(
        titles(&second),
        [
            "strike day 5",
            "strike day 4",
            "strike day 3",
            "strike day 2"
        ]
    );
    let third = store
        .story_page(&view, PageStart::Before(second.older.unwrap()), 4)
        .unwrap();
    assert_eq!(titles(&third), ["strike day 1"]);
    assert_eq!(third.older, None);
    // Walking back to the newest page shows the new arrival, not the
    // entry that does not match.
    let back = store
        .story_page(&view, PageStart::After(second.newer.unwrap()), 4)
        .unwrap();
    assert_eq!(
        titles(&back),
        [
            "strike day 9",
            "strike day 8",
            "strike day 7",
            "strike day 6"
        ]
    );
    assert!(back.newer.is_some());
    let newest = store.story_page(&view, PageStart::Newest, 4).unwrap();
    assert_eq!(titles(&newest)[0], "strike day 10");
}

fn check_updates_move_stories_out_of_and_into_a_query(store: &Store) {
    let (wire, _) = outlets(store);
    save(
        store,
        wire,
        &[item("u1", 1, "Port quiet", "Ships sail.", None)],
    );
    assert_eq!(found(store, "strike"), Vec::<String>::new());
    save(
        store,
        wire,
        &[item("u1", 1, "Port strike begins", "Ships stay.", None)],
    );
    assert_eq!(found(store, "strike"), ["Port strike begins"]);
    assert_eq!(
        found(store, "quiet"),
        Vec::<String>::new(),
        "the old words are gone"
    );
    save(
        store,
        wire,
        &[item("u1", 1, "Port reopens", "Ships sail.", None)],
    );
    assert_eq!(found(store, "strike"), Vec::<String>::new());
    assert_eq!(found(store, "reopens"), ["Port reopens"]);
    assert_eq!(store.indexed_entries().unwrap(), 1);
}

fn check_pruned_stories_leave_the_index(store: &Store) {
    let (wire, _) = outlets(store);
    save(
        store,
        wire,
        &[
            item("o1", 1, "old strike", "x", None),
            item("o2", 2, "new strike", "x", None),
        ],
    );
    store
        .prune(
            RetentionPolicy {
                max_age: None,
                max_entries: Some(1),
                keep_tombstones: Duration::from_secs(86_400),
            },
            now(),
        )
        .unwrap();
    assert_eq!(found(store, "strike"), ["new strike"]);
    assert_eq!(store.indexed_entries().unwrap(), 1);
}

fn check_renamed_outlets_are_found_by_their_new_name(store: &Store) {
    let (wire, _) = outlets(store);
    save(store, wire, &[item("r1", 1, "harbour news", "x", None)]);
    assert_eq!(found(store, "source:wire"), ["harbour news"]);
    store
        .sync_feeds(
            &[
                spec(
                    "https://wire.example/feed",
                    Some("Global Agency"),
                    &["world"],
                ),
                spec(
                    "https://paper.example/feed",
                    Some("Daily Paper"),
                    &["local"],
                ),
            ],
            now(),
        )
        .unwrap();
    assert_eq!(found(store, "source:wire"), Vec::<String>::new());
    assert_eq!(found(store, "source:agency"), ["harbour news"]);
}

/// An outlet without a configured title is named by its feed; when the feed
/// renames itself at a poll, its entries are found by the new name.
fn check_a_feed_that_renames_itself_is_found_by_its_new_name(store: &Store) {
    store
        .sync_feeds(&[spec("https://blog.example/feed", None, &[])], now())
        .unwrap();
    let blog = store.active_feeds().unwrap()[0].id;
    let poll = |title: &str, items: &[IdentifiedEntry]| {
        let meta = SourceMeta {
            title: Some(title.into()),
            ..Default::default()
        };
        store
            .save_poll(
                blog,
                now(),
                200,
                &meta,
                &Validators::default(),
                items,
                now(),
            )
            .unwrap();
    };
    poll(
        "Harbourside Notes",
        &[item("n1", 1, "tide tables", "x", None)],
    );
    assert_eq!(found(store, "source:harbourside"), ["tide tables"]);
    poll("Quayside Notes", &[item("n1", 1, "tide tables", "x", None)]);
    assert_eq!(found(store, "source:harbourside"), Vec::<String>::new());
    assert_eq!(found(store, "source:quayside"), ["tide tables"]);
}

fn check_tags_narrow_a_search_to_their_feeds(store: &Store) {
    let (wire, paper) = outlets(store);
    save(store, wire, &[item("t1", 1, "sqlite release", "x", None)]);
    save(store, paper, &[item("t2", 2, "sqlite meetup", "x", None)]);
    let page = |tags: &[&str]| {
        let page = store
            .story_page(&search_view("sqlite", tags), PageStart::Newest, 10)
            .unwrap();
        titles(&page)
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(page(&[]), ["sqlite meetup", "sqlite release"]);
    assert_eq!(page(&["world"]), ["sqlite release"]);
    assert_eq!(
        page(&["world", "local"]),
        ["sqlite meetup", "sqlite release"]
    );
    assert_eq!(page(&["nowhere"]), Vec::<String>::new());
}

fn check_a_story_carried_by_two_outlets_is_one_result_crediting_both(store: &Store) {
    let (wire, paper) = outlets(store);
    let copy = |guid: &str, hour| {
        let mut e = item(
            guid,
            hour,
            "Dam breaks upstream",
            "Villages evacuated.",
            None,
        )
        .entry;
        e.link = Some("https://news.example/dam".into());
        IdentifiedEntry::new(identity::entry_key(&e), e)
    };
    save(store, wire, &[copy("d1", 1)]);
    save(store, paper, &[copy("d2", 2)]);
    let q = Query::parse("dam source:paper").unwrap();
    let stories = store.search(&q, 10).unwrap();
    assert_eq!(stories.len(), 1);
    assert_eq!(
        stories[0].also.len(),
        1,
        "also reported by the other outlet"
    );
}

/// A common word (in every story) and a rare one (in one story of 97) page
/// the same way: the store answers the first by walking stories newest first
/// and probing the index, the second by reading its whole match set.
fn check_common_and_rare_words_page_alike(store: &Store) {
    let (wire, _) = outlets(store);
    let items: Vec<IdentifiedEntry> = (0..600u32)
        .map(|i| {
            let body = if i % 97 == 0 { "common rare" } else { "common" };
            let mut it = item(&format!("m{i}"), 0, &format!("Story {i}"), body, None);
            it.entry.published = Some(
                Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap()
                    + chrono::Duration::minutes(i.into()),
            );
            it
        })
        .collect();
    save(store, wire, &items);
    for (word, every) in [("common", 1u32), ("rare", 97)] {
        let expected: Vec<String> = (0..600u32)
            .rev()
            .filter(|i| i % every == 0)
            .map(|i| format!("Story {i}"))
            .collect();
        let view = search_view(word, &[]);
        let (mut seen, mut start, mut pages) = (Vec::new(), PageStart::Newest, Vec::new());
        loop {
            let page = store.story_page(&view, start, 5).unwrap();
            assert_eq!(
                page.newer.is_some(),
                !pages.is_empty(),
                "{word}: page {}",
                pages.len()
            );
            seen.extend(titles(&page).into_iter().map(str::to_string));
            pages.push(page.clone());
            match page.older {
                Some(c) => start = PageStart::Before(c),
                None => break,
            }
            assert!(pages.len() < 200, "{word}: paging does not end");
        }
        assert_eq!(seen, expected, "{word}");
        // And back again, from the oldest page towards the newest.
        if let Some(c) = pages.last().and_then(|p| p.newer) {
            let back = store.story_page(&view, PageStart::After(c), 5).unwrap();
            assert_eq!(titles(&back), titles(&pages[pages.len() - 2]), "{word}");
        }
    }
}

macro_rules! on_every_backend {
    ($($name:ident => $check:ident,)*) => {$(
        #[test]
        fn $name() {
            for (_dir, store) in backends() {
                $check(&store);
            }
        }
    )*};
}

on_every_backend! {
    every_construct_matches_as_documented => check_every_construct_matches_as_documented,
    paging_holds_while_new_entries_arrive => check_paging_holds_while_new_entries_arrive,
    updates_move_stories_out_of_and_into_a_query => check_updates_move_stories_out_of_and_into_a_query,
    pruned_stories_leave_the_index => check_pruned_stories_leave_the_index,
    renamed_outlets_are_found_by_their_new_name => check_renamed_outlets_are_found_by_their_new_name,
    a_feed_that_renames_itself_is_found_by_its_new_name => check_a_feed_that_renames_itself_is_found_by_its_new_name,
    tags_narrow_a_search_to_their_feeds => check_tags_narrow_a_search_to_their_feeds,
    a_story_carried_by_two_outlets_is_one_result_crediting_both => check_a_story_carried_by_two_outlets_is_one_result_crediting_both,
    common_and_rare_words_page_alike => check_common_and_rare_words_page_alike,
}

#[test]
fn the_index_is_merged_once_writes_have_split_it_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    // SQLite-specific: FTS5's segments (PostgreSQL's GIN index needs no merging).
    let store = Store::open(&dir.path().join("merge.db")).unwrap();
    let (wire, _) = outlets(&store);
    // One transaction per poll: one index segment each.
    for batch in 0..6u32 {
        let items: Vec<IdentifiedEntry> = (0..5u32)
            .map(|i| {
                let n = batch * 5 + i;
                item(
                    &format!("s{n}"),
                    n % 24,
                    &format!("Strike {n}"),
                    "strike talks",
                    None,
                )
            })
            .collect();
        save(&store, wire, &items);
    }
    let before = found(&store, "strike");
    assert_eq!(before.len(), 30);
    assert!(
        store.compact_search_index().unwrap(),
        "six segments are merged"
    );
    assert!(
        !store.compact_search_index().unwrap(),
        "one segment is left alone"
    );
    assert_eq!(found(&store, "strike"), before);
    assert_eq!(store.indexed_entries().unwrap(), 30);
}

#[test]
fn an_existing_database_is_indexed_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    // SQLite-specific: an upgrade from before its migration 08.
    {
        let store = Store::open(&path).unwrap();
        let (wire, _) = outlets(&store);
        save(
            &store,
            wire,
            &[
                item("e1", 1, "Old strike", "x", None),
                item("e2", 2, "Old calm", "x", None),
            ],
        );
    }
    // As a database from before migration 08 would be: no index rows, and
    // the migration's mark that the stored entries are still to be indexed.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DELETE FROM search_index; INSERT INTO meta (key, value) VALUES ('search_index_built_to', '0')",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.indexed_entries().unwrap(), 2);
    assert_eq!(found(&store, "strike"), ["Old strike"]);
}
