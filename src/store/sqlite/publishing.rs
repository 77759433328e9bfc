//! Publishing queries: stories of one view (everything, a tag, a source), a page
//! at a time, and the data version that tells the render cache what is stale.

use rusqlite::OptionalExtension;
use rusqlite::types::ToSql;

use super::{Sqlite, StoreError, lock};
use crate::model::FeedId;
use crate::store::publishing::*;

/// Whether entry `e` (joined with its feed `f`) belongs to the view: ?1 a feed
/// id or NULL, ?2 a tag or NULL.
const VIEW_WHERE: &str = "f.active = 1
    AND (?1 IS NULL OR e.feed_id = ?1)
    AND (?2 IS NULL OR e.feed_id IN (SELECT feed_id FROM feed_tags WHERE tag = ?2))";

/// Whether story `s` is in the view: one of its copies is. The river walks
/// stories newest first and checks each (cheap, and the page ends early); a
/// tag or source view starts from that view's entries instead.
///
/// A search (?6 the FTS5 expression, ?7 a JSON array of tags or NULL) starts
/// from the matching entries of active feeds. Stories are still read newest
/// first, so a result set pages like any other view.
fn story_in_view(filter: &StoryFilter) -> String {
    match filter {
        StoryFilter::Search(_) => "s.id IN (SELECT e.story_id FROM entries e JOIN feeds f ON f.id = e.feed_id
                      WHERE f.active = 1
                        AND (?7 IS NULL OR e.feed_id IN (SELECT feed_id FROM feed_tags
                                                         WHERE tag IN (SELECT value FROM json_each(?7))))
                        AND e.id IN (SELECT rowid FROM search_index WHERE search_index MATCH ?6))"
            .to_string(),
        StoryFilter::All => format!(
            "EXISTS (SELECT 1 FROM entries e JOIN feeds f ON f.id = e.feed_id
                     WHERE e.story_id = s.id AND {VIEW_WHERE})"
        ),
        _ => format!(
            "s.id IN (SELECT e.story_id FROM entries e JOIN feeds f ON f.id = e.feed_id
                      WHERE {VIEW_WHERE})"
        ),
    }
}

/// A search's membership test for one story, probing the index by rowid
/// for each of its copies (?6 the FTS5 expression, ?7 tags or NULL).
const SEARCH_PROBE: &str = "EXISTS (SELECT 1 FROM entries e JOIN feeds f ON f.id = e.feed_id
    WHERE e.story_id = s.id AND f.active = 1
      AND (?7 IS NULL OR e.feed_id IN (SELECT feed_id FROM feed_tags
                                       WHERE tag IN (SELECT value FROM json_each(?7))))
      AND EXISTS (SELECT 1 FROM search_index WHERE search_index MATCH ?6 AND rowid = e.id))";

/// How many stories, per story asked for, a search probes newest first
/// before it reads the whole match set instead.
///
/// Two plans answer a search. Reading the whole match set from FTS5 and then
/// walking stories newest first costs time in proportion to the matches: 240
/// to 330 ms for a word in 90 % of 100,000 entries. Walking stories newest
/// first and probing the index for each costs time in proportion to the
/// stories walked: a page of a common word fills after a few more probes
/// than stories on it, but a rare word would walk the whole river. So the
/// walk comes first: over `2 × (limit + 1)` stories, then, if what it found
/// says a full page is within `PROBE_FACTOR × (limit + 1)` stories, that far;
/// otherwise the words are rare, and their match set is small enough to read
/// whole.
const PROBE_FACTOR: i64 = 20;

impl Publishing for Sqlite {
    fn data_version(&self) -> Result<i64, StoreError> {
        Ok(lock(&self.reader).query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    fn story_page(
        &self,
        filter: &StoryFilter,
        start: PageStart,
        limit: usize,
    ) -> Result<StoryPage, StoreError> {
        let (feed, tag) = match filter {
            StoryFilter::All => (None, None),
            StoryFilter::Tag(tag) => (None, Some(tag.as_str())),
            StoryFilter::Feed(id) => (Some(*id), None),
            // The primary copy is then one of the first tag's feeds, if any.
            StoryFilter::Search(search) => (None, search.tags.first().map(String::as_str)),
        };
        // A search binds ?6 and ?7 besides the view's ?1 to ?5.
        let search = match filter {
            StoryFilter::Search(search) => Some((
                super::search::fts_match(&search.query),
                (!search.tags.is_empty())
                    .then(|| serde_json::to_string(&search.tags).unwrap_or_default()),
            )),
            _ => None,
        };
        let limit = limit.max(1);
        let conn = lock(&self.reader);
        let (cursor, older_side) = match start {
            PageStart::Newest => (None, true),
            PageStart::Before(c) => (Some(c), true),
            PageStart::After(c) => (Some(c), false),
        };
        let in_view = story_in_view(filter);
        let sql = if older_side {
            format!(
                "SELECT s.id, s.uid, s.sort_time FROM stories s
                 WHERE {in_view} AND (?3 IS NULL OR (s.sort_time, s.id) < (?3, ?4))
                 ORDER BY s.sort_time DESC, s.id DESC LIMIT ?5"
            )
        } else {
            format!(
                "SELECT s.id, s.uid, s.sort_time FROM stories s
                 WHERE {in_view} AND (s.sort_time, s.id) > (?3, ?4)
                 ORDER BY s.sort_time ASC, s.id ASC LIMIT ?5"
            )
        };
        let (time, row, fetch) = (
            cursor.map(|c| c.sort_time),
            cursor.map(|c| c.row),
            (limit + 1) as i64,
        );
        let window = fetch.saturating_mul(PROBE_FACTOR);
        let mut args: Vec<&dyn ToSql> = vec![&feed, &tag, &time, &row, &fetch];
        if let Some((expression, tags)) = &search {
            args.extend([expression as &dyn ToSql, tags as &dyn ToSql]);
        }
        let read =
            |sql: &str, args: &[&dyn ToSql]| -> Result<Vec<(i64, String, Cursor)>, StoreError> {
                let mut stmt = conn.prepare_cached(sql)?;
                let rows = stmt.query_map(args, |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        Cursor {
                            sort_time: r.get(2)?,
                            row: r.get(0)?,
                        },
                    ))
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            };
        // A search walks the newest stories first (see PROBE_FACTOR); a
        // full page from the walk is the answer.
        let probed = match &search {
            Some(_) => {
                let (cmp, order) = if older_side {
                    ("?3 IS NULL OR (sort_time, id) < (?3, ?4)", "DESC")
                } else {
                    ("(sort_time, id) > (?3, ?4)", "ASC")
                };
                let probe = format!(
                    "SELECT s.id, s.uid, s.sort_time FROM (
                        SELECT id, uid, sort_time FROM stories WHERE {cmp}
                        ORDER BY sort_time {order}, id {order} LIMIT ?8) s
                     WHERE {SEARCH_PROBE}
                     ORDER BY s.sort_time {order}, s.id {order} LIMIT ?5"
                );
                let walk = |stories: i64| {
                    let mut with_window = args.clone();
                    with_window.push(&stories);
                    read(&probe, &with_window)
                };
                // A short walk first; if the page is not full, how many it
                // found says how far a full page is: walk that far (half as
                // far again) if it is within the window, else read the match set.
                let first = fetch.saturating_mul(2);
                let rows = walk(first)?;
                let found = rows.len() as i64;
                if found == fetch {
                    Some(rows)
                } else if found > 0 && fetch.saturating_mul(first) / found <= window {
                    let far = (fetch.saturating_mul(first) / found * 3 / 2).min(window);
                    Some(walk(far)?).filter(|rows| rows.len() as i64 == fetch)
                } else {
                    None
                }
            }
            None => None,
        };
        let mut rows = match probed {
            Some(rows) => rows,
            None => read(&sql, &args)?,
        };
        let Some((more, first, last)) = page_window(&mut rows, limit, older_side) else {
            return Ok(StoryPage {
                stories: Vec::new(),
                older: None,
                newer: None,
            });
        };
        let exists = |op: &str, c: Cursor| -> Result<bool, StoreError> {
            let mut args: Vec<&dyn ToSql> = vec![&feed, &tag, &c.sort_time, &c.row];
            if let Some((expression, tags)) = &search {
                args.extend([&fetch as &dyn ToSql, expression, tags]);
                // The nearest stories on that side first, as for a page.
                let order = if op == ">" { "ASC" } else { "DESC" };
                let probe = format!(
                    "SELECT EXISTS (SELECT 1 FROM (
                        SELECT id, sort_time FROM stories WHERE (sort_time, id) {op} (?3, ?4)
                        ORDER BY sort_time {order}, id {order} LIMIT ?8) s
                     WHERE {SEARCH_PROBE})"
                );
                let near = fetch.saturating_mul(2);
                let mut with_window = args.clone();
                with_window.push(&near);
                let found: bool = conn
                    .prepare_cached(&probe)?
                    .query_row(&with_window[..], |r| r.get(0))?;
                if found {
                    return Ok(true);
                }
            }
            let sql = format!(
                "SELECT EXISTS (SELECT 1 FROM stories s
                 WHERE {in_view} AND (s.sort_time, s.id) {op} (?3, ?4))"
            );
            Ok(conn
                .prepare_cached(&sql)?
                .query_row(&args[..], |r| r.get(0))?)
        };
        let (older, newer) = match start {
            // Nothing is newer than the newest page.
            PageStart::Newest => (more, false),
            PageStart::Before(_) => (more, exists(">", first)?),
            PageStart::After(_) => (exists("<", last)?, more),
        };
        let mut stories = Vec::with_capacity(rows.len());
        for (id, uid, _) in rows {
            if let Some(story) = super::stories::load_story(&conn, id, uid, feed, tag)? {
                stories.push(story);
            }
        }
        Ok(StoryPage {
            older: older.then_some(last),
            newer: newer.then_some(first),
            stories,
        })
    }

    fn tag_exists(&self, tag: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.reader).query_row(
            "SELECT EXISTS (SELECT 1 FROM feed_tags t JOIN feeds f ON f.id = t.feed_id
             WHERE t.tag = ?1 AND f.active = 1)",
            [tag],
            |r| r.get(0),
        )?)
    }

    fn tags(&self) -> Result<Vec<String>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT t.tag FROM feed_tags t JOIN feeds f ON f.id = t.feed_id
             WHERE f.active = 1 ORDER BY t.tag",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn feed_view(&self, id: FeedId) -> Result<Option<FeedView>, StoreError> {
        Ok(lock(&self.reader)
            .query_row(
                "SELECT id, uid, COALESCE(config_title, title, url), url, site_url FROM feeds
                 WHERE id = ?1 AND active = 1",
                [id],
                |r| {
                    Ok(FeedView {
                        id: r.get(0)?,
                        uid: r.get(1)?,
                        title: r.get(2)?,
                        url: r.get(3)?,
                        site_url: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity;
    use crate::model::{IdentifiedEntry, ParsedEntry, SourceMeta, Validators};
    use crate::store::FeedSpec;
    use crate::store::{Entries, Feeds, Publishing, Stories};
    use chrono::{DateTime, TimeZone, Utc};
    use std::time::Duration;

    fn spec(url: &str, tag: &str) -> FeedSpec {
        FeedSpec {
            url: url.into(),
            title: None,
            interval: Duration::from_secs(600),
            tags: vec![tag.into()],
            fixed_interval: false,
        }
    }

    fn item(guid: &str, hour: u32) -> IdentifiedEntry {
        let entry = ParsedEntry {
            guid: Some(guid.into()),
            title: guid.into(),
            published: Some(Utc.with_ymd_and_hms(2026, 1, 1, hour, 0, 0).unwrap()),
            ..Default::default()
        };
        IdentifiedEntry::new(identity::entry_key(&entry), entry)
    }

    /// Feed A (tag "a") has a1, a3, a5; feed B (tag "b") has b2, b4 (the number is the hour).
    fn store() -> (tempfile::TempDir, Sqlite, FeedId, FeedId) {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("r.db")).unwrap();
        let now: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        store
            .sync_feeds(
                &[
                    spec("http://a.example/", "a"),
                    spec("http://b.example/", "b"),
                ],
                now,
            )
            .unwrap();
        let feeds = store.active_feeds().unwrap();
        let (a, b) = (feeds[0].id, feeds[1].id);
        let v = Validators::default();
        let m = SourceMeta::default();
        let items_a = [item("a1", 1), item("a3", 3), item("a5", 5)];
        let items_b = [item("b2", 2), item("b4", 4)];
        store.save_poll(a, now, 200, &m, &v, &items_a, now).unwrap();
        store.save_poll(b, now, 200, &m, &v, &items_b, now).unwrap();
        (dir, store, a, b)
    }

    fn titles(page: &StoryPage) -> Vec<&str> {
        page.stories.iter().map(|s| s.title.as_str()).collect()
    }

    #[test]
    fn pages_walk_back_and_forth_without_gaps_or_overlap() {
        let (_dir, store, _, _) = store();
        let all = StoryFilter::All;
        let p1 = store.story_page(&all, PageStart::Newest, 2).unwrap();
        assert_eq!(titles(&p1), ["a5", "b4"]);
        assert_eq!(p1.newer, None);
        let p2 = store
            .story_page(&all, PageStart::Before(p1.older.unwrap()), 2)
            .unwrap();
        assert_eq!(titles(&p2), ["a3", "b2"]);
        let p3 = store
            .story_page(&all, PageStart::Before(p2.older.unwrap()), 2)
            .unwrap();
        assert_eq!(titles(&p3), ["a1"]);
        assert_eq!(p3.older, None);
        // Walking forward from the last page returns the page before it.
        let back = store
            .story_page(&all, PageStart::After(p3.newer.unwrap()), 2)
            .unwrap();
        assert_eq!(titles(&back), ["a3", "b2"]);
        let back = store
            .story_page(&all, PageStart::After(back.newer.unwrap()), 2)
            .unwrap();
        assert_eq!(titles(&back), ["a5", "b4"]);
        assert_eq!(back.newer, None);
    }

    #[test]
    fn views_select_by_tag_and_by_feed() {
        let (_dir, store, a, b) = store();
        let tag_b = StoryFilter::Tag("b".into());
        assert_eq!(
            titles(&store.story_page(&tag_b, PageStart::Newest, 10).unwrap()),
            ["b4", "b2"]
        );
        let feed_a = StoryFilter::Feed(a);
        assert_eq!(
            titles(&store.story_page(&feed_a, PageStart::Newest, 10).unwrap()),
            ["a5", "a3", "a1"]
        );
        assert!(store.tag_exists("a").unwrap());
        assert!(!store.tag_exists("c").unwrap());
        assert_eq!(store.tags().unwrap(), ["a", "b"]);
        assert_eq!(
            store.feed_view(b).unwrap().unwrap().url,
            "http://b.example/"
        );
        assert_eq!(store.feed_view(999).unwrap(), None);
    }

    #[test]
    fn data_version_moves_on_every_write_and_only_then() {
        let (_dir, store, a, _) = store();
        let v0 = store.data_version().unwrap();
        assert_eq!(store.data_version().unwrap(), v0, "reads change nothing");
        let now = Utc::now();
        store
            .record_failure(a, now, Some(500), "boom", now)
            .unwrap();
        let v1 = store.data_version().unwrap();
        assert_ne!(v1, v0);
        store.record_not_modified(a, now, now).unwrap();
        assert_ne!(store.data_version().unwrap(), v1);
    }

    #[test]
    fn one_item_per_story_on_every_page_and_each_view_shows_its_own_copy() {
        let (_dir, store, a, b) = store();
        let now: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        let (m, v) = (SourceMeta::default(), Validators::default());
        // One report in both feeds (same canonical link), dated hour 6 in A
        // and hour 7 in B: one story, at hour 6, with A (first seen) primary.
        let copy = |guid: &str, hour: u32, link: &str| {
            let mut entry = item(guid, hour).entry;
            entry.link = Some(link.into());
            IdentifiedEntry::new(identity::entry_key(&entry), entry)
        };
        store
            .save_poll(
                a,
                now,
                200,
                &m,
                &v,
                &[copy("a6", 6, "http://news.example/s?utm_source=a")],
                now,
            )
            .unwrap();
        store
            .save_poll(
                b,
                now,
                200,
                &m,
                &v,
                &[copy("b7", 7, "http://news.example/s")],
                now,
            )
            .unwrap();
        let all = StoryFilter::All;
        let mut seen = Vec::new();
        let mut page = store.story_page(&all, PageStart::Newest, 2).unwrap();
        loop {
            seen.extend(titles(&page).iter().map(|t| t.to_string()));
            let Some(older) = page.older else { break };
            page = store.story_page(&all, PageStart::Before(older), 2).unwrap();
        }
        assert_eq!(seen, ["a6", "a5", "b4", "a3", "b2", "a1"]);
        let first = store.story_page(&all, PageStart::Newest, 1).unwrap();
        let story = &first.stories[0];
        assert_eq!(story.also.len(), 1);
        assert_eq!(story.also[0].title, "b7");
        // Walking back from the second page returns to the merged story.
        let second = store
            .story_page(&all, PageStart::Before(first.older.unwrap()), 1)
            .unwrap();
        let back = store
            .story_page(&all, PageStart::After(second.newer.unwrap()), 1)
            .unwrap();
        assert_eq!(titles(&back), ["a6"]);
        assert_eq!(back.newer, None);
        // B's own view shows B's copy, crediting A; same permanent id.
        let feed_b = store
            .story_page(&StoryFilter::Feed(b), PageStart::Newest, 10)
            .unwrap();
        assert_eq!(titles(&feed_b), ["b7", "b4", "b2"]);
        assert_eq!(feed_b.stories[0].uid, story.uid);
        assert_eq!(feed_b.stories[0].also[0].title, "a6");
        let tag_a = store
            .story_page(&StoryFilter::Tag("a".into()), PageStart::Newest, 10)
            .unwrap();
        assert_eq!(titles(&tag_a), ["a6", "a5", "a3", "a1"]);
        assert_eq!(store.stories(10).unwrap().len(), 6);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            sort_time: 1_700_000_000,
            row: 42,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("x.1"), None);
        assert_eq!(Cursor::decode("17"), None);
    }
}
