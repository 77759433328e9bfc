//! Publishing queries: stories of one view (everything, a tag, a source), a page
//! at a time, and the data version that tells the render cache what is stale.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, from_ts, lock};
use crate::model::{FeedId, Source, Story};

/// Which stories a published document shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StoryFilter {
    All,
    Tag(String),
    Feed(FeedId),
}

/// A position in the river: stories are ordered by (sort time, row id), newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub sort_time: i64,
    pub row: i64,
}

impl Cursor {
    /// The opaque text form used in `?before=` / `?after=`.
    pub fn encode(self) -> String {
        format!("{}.{}", self.sort_time, self.row)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (t, r) = text.split_once('.')?;
        Some(Self {
            sort_time: t.parse().ok()?,
            row: r.parse().ok()?,
        })
    }
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageStart {
    /// The newest stories.
    Newest,
    /// Stories older than the cursor.
    Before(Cursor),
    /// Stories newer than the cursor (the page just before it).
    After(Cursor),
}

/// One page of stories, newest first, with where the neighbouring pages start.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryPage {
    pub stories: Vec<Story>,
    /// Set when older stories exist: the cursor of this page's oldest story.
    pub older: Option<Cursor>,
    /// Set when newer stories exist: the cursor of this page's newest story.
    pub newer: Option<Cursor>,
}

/// A source feed as a view of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedView {
    pub id: FeedId,
    /// The feed's permanent id.
    pub uid: String,
    pub title: String,
    pub url: String,
    pub site_url: Option<String>,
}

const STORY_COLUMNS: &str = "e.uid, e.title, e.link, e.author, e.summary, e.content, e.rights,
    e.published, e.updated, e.first_seen,
    f.source_id, f.url, COALESCE(f.config_title, f.title, f.url), f.site_url,
    f.rights, f.author, COALESCE(f.source_updated, f.last_success_at, e.first_seen),
    e.sort_time, e.id";

const VIEW_WHERE: &str = "f.active = 1
    AND (?1 IS NULL OR e.feed_id = ?1)
    AND (?2 IS NULL OR e.feed_id IN (SELECT feed_id FROM feed_tags WHERE tag = ?2))";

impl Store {
    /// A number that changes whenever any other connection (the writer, or
    /// another process such as `poll --once`) commits to the database. Only
    /// comparable with itself: it is the reader connection's `data_version`,
    /// and the reader never writes.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(lock(&self.reader).query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// One page of a view, at most `limit` stories, newest first.
    pub fn story_page(
        &self,
        filter: &StoryFilter,
        start: PageStart,
        limit: usize,
    ) -> Result<StoryPage, StoreError> {
        let (feed, tag) = match filter {
            StoryFilter::All => (None, None),
            StoryFilter::Tag(tag) => (None, Some(tag.as_str())),
            StoryFilter::Feed(id) => (Some(*id), None),
        };
        let limit = limit.max(1);
        let conn = lock(&self.reader);
        let (cursor, older_side) = match start {
            PageStart::Newest => (None, true),
            PageStart::Before(c) => (Some(c), true),
            PageStart::After(c) => (Some(c), false),
        };
        let sql = if older_side {
            format!(
                "SELECT {STORY_COLUMNS} FROM entries e JOIN feeds f ON f.id = e.feed_id
                 WHERE {VIEW_WHERE} AND (?3 IS NULL OR (e.sort_time, e.id) < (?3, ?4))
                 ORDER BY e.sort_time DESC, e.id DESC LIMIT ?5"
            )
        } else {
            format!(
                "SELECT {STORY_COLUMNS} FROM entries e JOIN feeds f ON f.id = e.feed_id
                 WHERE {VIEW_WHERE} AND (e.sort_time, e.id) > (?3, ?4)
                 ORDER BY e.sort_time ASC, e.id ASC LIMIT ?5"
            )
        };
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![
                feed,
                tag,
                cursor.map(|c| c.sort_time),
                cursor.map(|c| c.row),
                (limit + 1) as i64
            ],
            story_with_cursor,
        )?;
        let mut rows: Vec<(Story, Cursor)> = rows.collect::<Result<_, _>>()?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        if !older_side {
            rows.reverse();
        }
        let (first, last) = match (rows.first(), rows.last()) {
            (Some(f), Some(l)) => (f.1, l.1),
            _ => {
                return Ok(StoryPage {
                    stories: Vec::new(),
                    older: None,
                    newer: None,
                });
            }
        };
        let exists = |op: &str, c: Cursor| -> Result<bool, StoreError> {
            let sql = format!(
                "SELECT EXISTS (SELECT 1 FROM entries e JOIN feeds f ON f.id = e.feed_id
                 WHERE {VIEW_WHERE} AND (e.sort_time, e.id) {op} (?3, ?4))"
            );
            Ok(conn
                .prepare_cached(&sql)?
                .query_row(params![feed, tag, c.sort_time, c.row], |r| r.get(0))?)
        };
        let (older, newer) = if older_side {
            (more, exists(">", first)?)
        } else {
            (exists("<", last)?, more)
        };
        Ok(StoryPage {
            older: older.then_some(last),
            newer: newer.then_some(first),
            stories: rows.into_iter().map(|(s, _)| s).collect(),
        })
    }

    /// Whether any active feed carries `tag`.
    pub fn tag_exists(&self, tag: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.reader).query_row(
            "SELECT EXISTS (SELECT 1 FROM feed_tags t JOIN feeds f ON f.id = t.feed_id
             WHERE t.tag = ?1 AND f.active = 1)",
            [tag],
            |r| r.get(0),
        )?)
    }

    /// Tags of active feeds, sorted.
    pub fn tags(&self) -> Result<Vec<String>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT t.tag FROM feed_tags t JOIN feeds f ON f.id = t.feed_id
             WHERE f.active = 1 ORDER BY t.tag",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// An active feed, as a view of its own.
    pub fn feed_view(&self, id: FeedId) -> Result<Option<FeedView>, StoreError> {
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

/// Mirrors the row mapping of `Store::stories`, plus the row's cursor.
fn story_with_cursor(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Story, Cursor)> {
    let source_title: String = r.get(12)?;
    let feed_author: Option<String> = r.get(15)?;
    let published: Option<i64> = r.get(7)?;
    let updated: Option<i64> = r.get(8)?;
    let first_seen: i64 = r.get(9)?;
    let feed_url: String = r.get(11)?;
    let source = Source {
        id: r
            .get::<_, Option<String>>(10)?
            .unwrap_or_else(|| feed_url.clone()),
        title: source_title.clone(),
        feed_url,
        site_url: r.get(13)?,
        rights: r.get(14)?,
        updated: from_ts(r.get(16)?),
    };
    let story = Story {
        uid: r.get(0)?,
        title: r.get(1)?,
        link: r.get(2)?,
        author: r
            .get::<_, Option<String>>(3)?
            .or(feed_author)
            .unwrap_or(source_title),
        summary: r.get(4)?,
        content: r.get(5)?,
        rights: r
            .get::<_, Option<String>>(6)?
            .or_else(|| source.rights.clone()),
        published: published.map(from_ts),
        updated: from_ts(updated.or(published).unwrap_or(first_seen)),
        source,
    };
    let cursor = Cursor {
        sort_time: r.get(17)?,
        row: r.get(18)?,
    };
    Ok((story, cursor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity;
    use crate::model::{IdentifiedEntry, ParsedEntry, SourceMeta, Validators};
    use crate::store::FeedSpec;
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
        IdentifiedEntry {
            key: identity::entry_key(&entry),
            hash: identity::change_hash(&entry),
            entry,
        }
    }

    /// Feed A (tag "a") has a1, a3, a5; feed B (tag "b") has b2, b4 (the number is the hour).
    fn store() -> (tempfile::TempDir, Store, FeedId, FeedId) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.db")).unwrap();
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
