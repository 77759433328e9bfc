//! Stories: entries of any feed that carry the same report, grouped under one
//! permanent id, and how each story is published (its primary copy and the
//! other outlets).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{PageStart, Sqlite, StoreError, StoryFilter, from_ts, lock, ts};
use crate::identity::DedupSettings;
use crate::identity::byline::byline;
use crate::identity::fingerprint::{Candidate, Fingerprint, MatchSettings, same_story};
use crate::model::{FeedId, Outlet, Source, Story};
use crate::store::prelude::*;
use crate::store::stories::*;

/// One story as published: its primary copy with the other outlets that
/// carried it (one each, active feeds only). The primary is the view's own copy
/// when the story has one there (`feed`, `tag` as in `story_page`), then an
/// original publisher, then the highest priority, then the first seen. `None`
/// when no active feed carries it any more.
pub(super) fn load_story(
    conn: &Connection,
    id: i64,
    uid: String,
    feed: Option<FeedId>,
    tag: Option<&str>,
) -> Result<Option<Story>, StoreError> {
    let mut copies = conn.prepare_cached(
        "SELECT e.title, e.link, e.author, e.summary, e.content, e.rights,
                e.published, e.updated, e.first_seen, e.feed_id,
                f.source_id, f.url, COALESCE(f.config_title, f.title, f.url), f.site_url,
                f.rights, f.author, COALESCE(f.source_updated, f.last_success_at, e.first_seen)
         FROM entries e JOIN feeds f ON f.id = e.feed_id
         WHERE e.story_id = ?1 AND f.active = 1
         ORDER BY ((?2 IS NULL OR e.feed_id = ?2)
                   AND (?3 IS NULL OR e.feed_id IN (SELECT feed_id FROM feed_tags WHERE tag = ?3))) DESC,
                  f.original DESC, f.priority DESC, e.first_seen, e.sort_time, e.id",
    )?;
    let mut rows = copies.query_map(params![id, feed, tag], copy)?;
    let Some(primary) = rows.next().transpose()? else {
        return Ok(None);
    };
    let mut feeds = vec![primary.feed_id];
    let mut also = Vec::new();
    for row in rows {
        let other = row?;
        if feeds.contains(&other.feed_id) {
            continue;
        }
        feeds.push(other.feed_id);
        also.push(Outlet {
            link: other.story.link,
            title: other.story.title,
            author: other.story.author,
            published: other.story.published,
            source: other.story.source,
        });
    }
    let mut story = primary.story;
    story.uid = uid;
    story.also = also;
    Ok(Some(story))
}

struct Copy {
    feed_id: i64,
    story: Story,
}

fn copy(r: &rusqlite::Row<'_>) -> rusqlite::Result<Copy> {
    let source_title: String = r.get(12)?;
    let feed_author: Option<String> = r.get(15)?;
    let published: Option<i64> = r.get(6)?;
    let updated: Option<i64> = r.get(7)?;
    let first_seen: i64 = r.get(8)?;
    let feed_url: String = r.get(11)?;
    let summary: Option<String> = r.get(3)?;
    let content: Option<String> = r.get(4)?;
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
    let author = r
        .get::<_, Option<String>>(2)?
        .or_else(|| {
            content
                .as_deref()
                .and_then(byline)
                .or_else(|| summary.as_deref().and_then(byline))
        })
        .or(feed_author)
        .unwrap_or(source_title);
    Ok(Copy {
        feed_id: r.get(9)?,
        story: Story {
            uid: String::new(),
            title: r.get(0)?,
            link: r.get(1)?,
            author,
            summary,
            content,
            rights: r
                .get::<_, Option<String>>(5)?
                .or_else(|| source.rights.clone()),
            published: published.map(from_ts),
            updated: from_ts(updated.or(published).unwrap_or(first_seen)),
            source,
            also: Vec::new(),
        },
    })
}

/// Puts a newly stored entry into a story: the story of an entry of another
/// feed with the same canonical link (`article_link`: the entry's canonical
/// link if it names one article, see `identity::is_article_link`); else,
/// with matching on, the story of the most similar entry of another feed
/// that [`same_story`] accepts; else a new story whose permanent id is this
/// entry's uid. Returns the story's id; the
/// caller stores the entry with it.
#[allow(clippy::too_many_arguments)]
pub(super) fn assign_story(
    tx: &Connection,
    feed_id: i64,
    uid: &str,
    title: &str,
    article_link: Option<&str>,
    fingerprint: Option<&Fingerprint>,
    sort_time: i64,
    now: DateTime<Utc>,
    settings: &MatchSettings,
    matching: &mut super::Matching,
) -> Result<i64, StoreError> {
    let mut story: Option<i64> = None;
    // A link no stored entry has (the filter is never wrong about that)
    // needs no lookup.
    if let Some(link) = article_link.filter(|l| matching.links.may_hold(l)) {
        story = tx
            .prepare_cached(
                "SELECT story_id FROM entries
                 WHERE canonical_link = ?1 AND feed_id != ?2 AND story_id IS NOT NULL
                 ORDER BY first_seen, id LIMIT 1",
            )?
            .query_row(params![link, feed_id], |r| r.get(0))
            .optional()?;
    }
    if story.is_none()
        && settings.enabled
        && let Some(fingerprint) = fingerprint.filter(|f| f.shingles >= settings.min_shingles)
    {
        // Built for the first candidate worth comparing (most new entries
        // have none).
        let mut me: Option<Candidate> = None;
        let window = settings.window.num_seconds();
        // Only stories sharing an LSH band are compared (see `story_index`);
        // each by its first entry, the one whose uid it carries (its later
        // copies joined because they match it). Other feeds only: a feed's own
        // look-alike items (a daily briefing from one template) are separate
        // entries, and a feed reposting an item under a new guid is caught by
        // link and title in `entries`.
        let mut lookup = tx.prepare_cached(
            "SELECT e.fingerprint, s.sort_time, e.title, e.feed_id
             FROM stories s JOIN entries e ON e.uid = s.uid
             WHERE s.id = ?1 AND e.fingerprint IS NOT NULL",
        )?;
        let mut best: Option<(f64, i64)> = None;
        for candidate in matching.stories.candidates(fingerprint) {
            let Some((bytes, other_time, other_title, other_feed)) = lookup
                .query_row([candidate], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .optional()?
            else {
                continue;
            };
            if other_feed == feed_id || (other_time - sort_time).abs() > window {
                continue;
            }
            let Some(other) = Fingerprint::from_bytes(&bytes) else {
                continue;
            };
            let other = Candidate {
                fingerprint: other,
                time: from_ts(other_time),
                title: other_title,
            };
            let me = me.get_or_insert_with(|| Candidate {
                fingerprint: fingerprint.clone(),
                time: from_ts(sort_time),
                title: title.to_string(),
            });
            if same_story(me, &other, settings) {
                let score = me.fingerprint.containment(&other.fingerprint);
                if best.is_none_or(|(b, _)| score > b) {
                    best = Some((score, candidate));
                }
            }
        }
        story = best.map(|(_, id)| id);
    }
    let story = match story {
        Some(id) => {
            tx.prepare_cached("UPDATE stories SET sort_time = MIN(sort_time, ?2) WHERE id = ?1")?
                .execute(params![id, sort_time])?;
            id
        }
        None => {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO stories (uid, first_seen, sort_time) VALUES (?1, ?2, ?3)
                     ON CONFLICT (uid) DO NOTHING",
                )?
                .execute(params![uid, ts(now), sort_time])?;
            let id = if inserted == 1 {
                tx.last_insert_rowid()
            } else {
                tx.prepare_cached("SELECT id FROM stories WHERE uid = ?1")?
                    .query_row([uid], |r| r.get(0))?
            };
            if let Some(fingerprint) = fingerprint {
                matching.stories.add(id, sort_time, fingerprint);
            }
            id
        }
    };
    Ok(story)
}

impl Stories for Sqlite {
    fn set_dedup_settings(&self, settings: DedupSettings) {
        let mut slot = self
            .dedup
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = settings;
    }

    fn dedup_settings(&self) -> DedupSettings {
        *self
            .dedup
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set_feed_ranks(&self, ranks: &[FeedRank]) -> Result<(), StoreError> {
        let mut conn = self.lock_writer();
        let tx = conn.transaction()?;
        {
            // Ranks as stored, read in one query: only those that differ are
            // written (a restart usually writes none).
            let stored: HashMap<String, (i64, bool)> = tx
                .prepare("SELECT url, priority, original FROM feeds")?
                .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
                .collect::<Result<_, _>>()?;
            let mut update =
                tx.prepare("UPDATE feeds SET priority = ?2, original = ?3 WHERE url = ?1")?;
            for rank in ranks {
                if stored.get(&rank.url) != Some(&(rank.priority, rank.original)) {
                    update.execute(params![rank.url, rank.priority, rank.original])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn stories(&self, limit: usize) -> Result<Vec<Story>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        Ok(self
            .story_page(&StoryFilter::All, PageStart::Newest, limit)?
            .stories)
    }

    fn feed_rank_of(&self, url: &str) -> Result<Option<(i64, bool)>, StoreError> {
        Ok(lock(&self.reader)
            .query_row(
                "SELECT priority, original FROM feeds WHERE url = ?1",
                [url],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn story_count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            lock(&self.reader).query_row("SELECT COUNT(*) FROM stories", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Entries, Feeds, Stories};
    use chrono::Utc;
    use rusqlite::Connection;

    use super::*;
    use crate::identity;
    use crate::model::{ParsedEntry, SourceMeta, Validators};
    use crate::store::sqlite::MIGRATIONS;

    const REPORT: &str = "<p>Dockworkers at the Port of Calder returned to work on Wednesday after union leaders and terminal operators agreed to a four-year contract, ending a nine-day strike that had stranded more than 40 container ships offshore.</p>";

    #[test]
    fn feed_ranks_are_recorded_and_unchanged_ones_not_rewritten() {
        let (_dir, store, _, _) = two_feeds();
        let rank = |url: &str, priority, original| FeedRank {
            url: url.into(),
            priority,
            original,
        };
        let ranks = [
            rank("http://a.example/f", 5, false),
            rank("http://b.example/f", 0, true),
        ];
        store.set_feed_ranks(&ranks).unwrap();
        assert_eq!(
            store.feed_rank_of("http://a.example/f").unwrap(),
            Some((5, false))
        );
        assert_eq!(
            store.feed_rank_of("http://b.example/f").unwrap(),
            Some((0, true))
        );
        // The same ranks again write nothing; a changed one is written.
        let before = store.rows_changed();
        store.set_feed_ranks(&ranks).unwrap();
        assert_eq!(store.rows_changed(), before);
        store
            .set_feed_ranks(&[
                rank("http://a.example/f", 5, false),
                rank("http://b.example/f", 2, false),
            ])
            .unwrap();
        assert_eq!(store.rows_changed(), before + 1);
        assert_eq!(
            store.feed_rank_of("http://b.example/f").unwrap(),
            Some((2, false))
        );
        assert_eq!(store.feed_rank_of("http://nowhere.example/").unwrap(), None);
    }

    fn two_feeds() -> (tempfile::TempDir, Sqlite, i64, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("r.db")).unwrap();
        let spec = |url: &str| crate::store::FeedSpec {
            url: url.into(),
            title: None,
            interval: std::time::Duration::from_secs(600),
            tags: vec![],
            fixed_interval: false,
        };
        store
            .sync_feeds(
                &[spec("http://a.example/f"), spec("http://b.example/f")],
                Utc::now(),
            )
            .unwrap();
        let feeds = store.active_feeds().unwrap();
        (dir, store, feeds[0].id, feeds[1].id)
    }

    fn report(guid: &str, published: DateTime<Utc>) -> ParsedEntry {
        ParsedEntry {
            guid: Some(guid.into()),
            title: "Port strike ends".into(),
            link: Some(format!("http://{guid}.example/port-strike")),
            summary: Some(REPORT.into()),
            published: Some(published),
            ..Default::default()
        }
    }

    fn save(store: &Sqlite, feed: i64, now: DateTime<Utc>, entry: ParsedEntry) {
        store
            .save_poll(
                feed,
                now,
                200,
                &SourceMeta::default(),
                &Validators::default(),
                &identity::identify(vec![entry]),
                now,
            )
            .unwrap();
    }

    #[test]
    fn the_first_seen_copy_is_primary_even_when_a_later_one_is_dated_earlier() {
        use chrono::TimeZone;
        let (_dir, store, a, b) = two_feeds();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        save(&store, a, t0, report("first", t0));
        let first_uid = store.stories(1).unwrap()[0].uid.clone();
        let later = t0 + chrono::Duration::hours(1);
        save(
            &store,
            b,
            later,
            report("backdated", t0 - chrono::Duration::hours(3)),
        );
        let stories = store.stories(10).unwrap();
        assert_eq!(stories.len(), 1);
        assert_eq!(stories[0].uid, first_uid);
        assert_eq!(
            stories[0].link.as_deref(),
            Some("http://first.example/port-strike")
        );
        assert_eq!(stories[0].also.len(), 1);
        assert_eq!(
            stories[0].also[0].link.as_deref(),
            Some("http://backdated.example/port-strike")
        );
        // Ranked higher, the other copy becomes primary; the id stays.
        store
            .set_feed_ranks(&[FeedRank {
                url: "http://b.example/f".into(),
                priority: 1,
                original: false,
            }])
            .unwrap();
        let stories = store.stories(10).unwrap();
        assert_eq!(stories[0].uid, first_uid);
        assert_eq!(
            stories[0].link.as_deref(),
            Some("http://backdated.example/port-strike")
        );
    }

    #[test]
    fn matching_off_or_outside_the_window_keeps_copies_apart() {
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        let (_dir, store, a, b) = two_feeds();
        save(&store, a, t0, report("one", t0));
        let late = t0 + chrono::Duration::days(3);
        save(&store, b, late, report("two", late));
        assert_eq!(
            store.stories(10).unwrap().len(),
            2,
            "outside the 48 h window"
        );

        let (_dir, store, a, b) = two_feeds();
        let mut settings = DedupSettings::default();
        settings.matching.enabled = false;
        store.set_dedup_settings(settings);
        save(&store, a, t0, report("one", t0));
        save(&store, b, t0, report("two", t0));
        assert_eq!(store.stories(10).unwrap().len(), 2, "matching off");
    }

    #[test]
    fn entries_stored_before_stories_existed_become_stories_and_are_not_duplicated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            MIGRATIONS
                .as_ref()
                .unwrap()
                .to_version(&mut conn, 4)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO feeds (id, url, uid, interval_secs, next_poll_at, created_at)
                     VALUES (1, 'http://a.example/f', 'urn:uuid:f', 600, 0, 0);
                 INSERT INTO entries (feed_id, key, uid, title, link, first_seen, changed_at,
                                      sort_time, hash)
                     VALUES (1, 'link:http://a.example/1?utm_source=x', 'urn:uuid:e1', 'One',
                             'http://a.example/1?utm_source=x', 100, 100, 100, 'old-hash');",
            )
            .unwrap();
        }
        let store = Sqlite::open(&path).unwrap();
        assert_eq!(store.story_count().unwrap(), 1);
        let stories = store.stories(10).unwrap();
        assert_eq!(stories[0].uid, "urn:uuid:e1");
        // The same item polled again (its key is now the canonical link).
        let entry = ParsedEntry {
            title: "One".into(),
            link: Some("http://a.example/1?utm_source=x".into()),
            ..Default::default()
        };
        let counts = store
            .save_poll(
                1,
                Utc::now(),
                200,
                &SourceMeta::default(),
                &Validators::default(),
                &identity::identify(vec![entry]),
                Utc::now(),
            )
            .unwrap();
        assert_eq!((counts.new, counts.updated), (0, 0));
        assert_eq!(store.entry_count().unwrap(), 1);
    }
}
