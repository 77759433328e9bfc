//! Retention: pruning old entries by age and by count per feed, and the
//! tombstones that keep a pruned entry from coming back as new.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::{Store, StoreError, lock, ts};
use crate::config::RetentionConfig;
use crate::model::FeedId;

/// What to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Entries dated (never later than first seen) before now − max_age go.
    pub max_age: Option<Duration>,
    /// Per feed, only the newest max_entries stay.
    pub max_entries: Option<u64>,
    /// A tombstone is forgotten once its feed has not carried the entry for this long.
    pub keep_tombstones: Duration,
}

impl From<&RetentionConfig> for RetentionPolicy {
    fn from(c: &RetentionConfig) -> Self {
        Self {
            max_age: c.max_age.map(|d| d.0),
            max_entries: c.max_entries.map(|n| n.0),
            keep_tombstones: c.keep_tombstones.0,
        }
    }
}

impl RetentionPolicy {
    /// Whether this policy ever prunes an entry.
    pub fn prunes(&self) -> bool {
        self.max_age.is_some() || self.max_entries.is_some()
    }
}

/// What one pruning pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneCounts {
    /// Entries deleted (each leaves a tombstone).
    pub entries: usize,
    /// Old tombstones forgotten.
    pub tombstones_forgotten: usize,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}

impl Store {
    /// Deletes the entries the policy no longer keeps, leaving a tombstone for
    /// each, and forgets tombstones not seen in their feed for a long time.
    /// One transaction: a crash leaves either all of it or none.
    pub fn prune(
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

    /// Number of tombstones kept.
    pub fn tombstone_count(&self) -> Result<u64, StoreError> {
        let n: i64 =
            lock(&self.reader)
                .query_row("SELECT COUNT(*) FROM entry_tombstones", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }
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
