//! Retention: pruning old entries by age and by count per feed, and the
//! tombstones that keep a pruned entry from coming back as new.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::{Sqlite, StoreError, lock, ts};
use crate::model::FeedId;
use crate::store::retention::*;

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}

/// Whether this item was pruned from this feed, by its key or (under another
/// guid) by its canonical link; if so, notes that the feed still carries it
/// (so the tombstone lives on while it matters).
pub(super) fn is_tombstoned(
    tx: &Connection,
    feed_id: FeedId,
    key: &str,
    canonical_link: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let touched = tx
        .prepare_cached(
            "UPDATE entry_tombstones SET last_seen = ?4
             WHERE feed_id = ?1 AND (key = ?2 OR (?3 IS NOT NULL AND canonical_link = ?3))",
        )?
        .execute(params![feed_id, key, canonical_link, ts(now)])?;
    Ok(touched > 0)
}

impl Retention for Sqlite {
    fn prune(
        &self,
        policy: RetentionPolicy,
        now: DateTime<Utc>,
    ) -> Result<PruneCounts, StoreError> {
        let mut conn = self.lock_writer();
        let tx = conn.transaction()?;
        tx.execute(
            "CREATE TEMP TABLE IF NOT EXISTS doomed (id INTEGER PRIMARY KEY)",
            [],
        )?;
        tx.execute("DELETE FROM doomed", [])?;
        if let Some(age) = policy.max_age {
            tx.execute(
                // Feed by feed, through entries_feed_sort: no index on
                // sort_time alone is kept up to date on every insert for this.
                "INSERT OR IGNORE INTO doomed (id)
                 SELECT e.id FROM feeds f CROSS JOIN entries e
                 WHERE e.feed_id = f.id AND e.sort_time < ?1",
                [ts(now) - secs(age)],
            )?;
        }
        if let Some(keep) = policy.max_entries {
            tx.execute(
                "INSERT OR IGNORE INTO doomed (id)
                 SELECT id FROM (
                    SELECT id, ROW_NUMBER() OVER (
                        PARTITION BY feed_id ORDER BY sort_time DESC, id DESC) AS n
                    FROM entries)
                 WHERE n > ?1",
                [i64::try_from(keep).unwrap_or(i64::MAX)],
            )?;
        }
        // The stories of the doomed entries, the only ones that can lose
        // their last copy (looking at every story would cost a lookup per
        // story on every pass, however little is pruned).
        tx.execute(
            "CREATE TEMP TABLE IF NOT EXISTS doomed_stories (id INTEGER PRIMARY KEY)",
            [],
        )?;
        tx.execute("DELETE FROM doomed_stories", [])?;
        tx.execute(
            "INSERT OR IGNORE INTO doomed_stories (id)
             SELECT story_id FROM entries
             WHERE id IN (SELECT id FROM doomed) AND story_id IS NOT NULL",
            [],
        )?;
        tx.execute(
            "INSERT INTO entry_tombstones (feed_id, key, pruned_at, last_seen, canonical_link, uid)
             SELECT feed_id, key, ?1, COALESCE(last_seen, ?1), canonical_link, uid FROM entries
             WHERE id IN (SELECT id FROM doomed)
             ON CONFLICT (feed_id, key) DO UPDATE SET pruned_at = excluded.pruned_at,
                canonical_link = excluded.canonical_link, uid = excluded.uid",
            [ts(now)],
        )?;
        // Pruned entries leave the search index with them.
        super::search::unindex_doomed(&tx)?;
        let entries = tx.execute(
            "DELETE FROM entries WHERE id IN (SELECT id FROM doomed)",
            [],
        )?;
        // A story keeps its id and place while any of its copies is left.
        tx.execute(
            "DELETE FROM stories WHERE id IN (SELECT id FROM doomed_stories)
                AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.story_id = stories.id)",
            [],
        )?;
        tx.execute("DELETE FROM doomed", [])?;
        tx.execute("DELETE FROM doomed_stories", [])?;
        let tombstones_forgotten = tx.execute(
            "DELETE FROM entry_tombstones WHERE last_seen < ?1",
            [ts(now) - secs(policy.keep_tombstones)],
        )?;
        tx.commit()?;
        // Give freed pages back to the file system a little at a time (a no-op
        // unless the database uses auto_vacuum = INCREMENTAL; see README).
        if entries > 0 {
            conn.execute_batch("PRAGMA incremental_vacuum(2000)")?;
        }
        Ok(PruneCounts {
            entries,
            tombstones_forgotten,
        })
    }

    fn tombstone_count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            lock(&self.reader)
                .query_row("SELECT COUNT(*) FROM entry_tombstones", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }
}
