//! Entries: saving a poll's results atomically, new and changed entries.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SaveCounts, Store, StoreError, lock, ts};
use crate::identity;
use crate::model::{FeedId, IdentifiedEntry, SourceMeta, Validators};

impl Store {
    /// Stores one successful poll atomically: the source's metadata, its
    /// validators, new and changed entries, and the next poll time.
    #[allow(clippy::too_many_arguments)]
    pub fn save_poll(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        status: u16,
        meta: &SourceMeta,
        validators: &Validators,
        entries: &[IdentifiedEntry],
        next_poll: DateTime<Utc>,
    ) -> Result<SaveCounts, StoreError> {
        let (meta, validators, entries) = (meta.clone(), validators.clone(), entries.to_vec());
        self.write(move |tx| {
            tx.execute(
            "UPDATE feeds SET source_id = ?2, title = ?3, site_url = ?4, rights = ?5, author = ?6,
                source_updated = ?7, etag = ?8, last_modified = ?9, state = 'ok', last_status = ?10,
                last_error = NULL, failures = 0, last_polled_at = ?11, last_success_at = ?11,
                next_poll_at = ?12
             WHERE id = ?1",
            params![
                id,
                meta.id,
                meta.title,
                meta.site_url,
                meta.rights,
                meta.author,
                meta.updated.map(ts),
                validators.etag,
                validators.last_modified,
                status,
                ts(now),
                ts(next_poll)
            ],
        )?;
            save_entries(tx, id, now, &entries)
        })
    }

    /// Number of stored entries.
    pub fn entry_count(&self) -> Result<u64, StoreError> {
        let count: i64 =
            lock(&self.reader).query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))?;
        Ok(count.max(0) as u64)
    }
}

fn save_entries(
    tx: &Connection,
    feed_id: FeedId,
    now: DateTime<Utc>,
    entries: &[IdentifiedEntry],
) -> Result<SaveCounts, StoreError> {
    let feed_uid: String = tx.query_row("SELECT uid FROM feeds WHERE id = ?1", [feed_id], |r| {
        r.get(0)
    })?;
    let mut find =
        tx.prepare_cached("SELECT id, hash FROM entries WHERE feed_id = ?1 AND key = ?2")?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO entries (feed_id, key, uid, title, link, author, summary, content, rights,
            published, updated, first_seen, changed_at, sort_time, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14)",
    )?;
    let mut update = tx.prepare_cached(
        "UPDATE entries SET title = ?2, link = ?3, author = ?4, summary = ?5, content = ?6,
            rights = ?7, published = ?8, updated = ?9, changed_at = ?10, hash = ?11
         WHERE id = ?1",
    )?;
    let mut counts = SaveCounts::default();
    let now_ts = ts(now);
    for item in entries {
        let e = &item.entry;
        let existing: Option<(i64, String)> = find
            .query_row(params![feed_id, item.key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match existing {
            // Pruned by retention: it stays gone even while the feed carries it.
            None if super::retention::is_tombstoned(tx, feed_id, &item.key, now)? => {}
            None => {
                // A source may not date an entry after we first saw it: that
                // would let it pin its items to the top of the river.
                let sort_time = e
                    .published
                    .or(e.updated)
                    .map_or(now_ts, |d| ts(d).min(now_ts));
                insert.execute(params![
                    feed_id,
                    item.key,
                    identity::entry_uid(&feed_uid, &item.key),
                    e.title,
                    e.link,
                    e.author,
                    e.summary,
                    e.content,
                    e.rights,
                    e.published.map(ts),
                    e.updated.map(ts),
                    now_ts,
                    sort_time,
                    item.hash
                ])?;
                counts.new += 1;
            }
            Some((row, hash)) if hash != item.hash => {
                // The entry changed: its updated time advances even when the
                // source does not say so.
                let updated = e.updated.map_or(now_ts, |d| ts(d).min(now_ts));
                update.execute(params![
                    row,
                    e.title,
                    e.link,
                    e.author,
                    e.summary,
                    e.content,
                    e.rights,
                    e.published.map(ts),
                    updated,
                    now_ts,
                    item.hash
                ])?;
                counts.updated += 1;
            }
            Some(_) => {}
        }
    }
    Ok(counts)
}
