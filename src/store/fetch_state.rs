//! Fetch state beyond entries: what one poll taught the scheduler about a feed
//! (state, error, next attempt, adaptive interval, redirects, body hash).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SaveCounts, Store, StoreError, lock, ts};
use crate::model::{FeedId, FeedState, Skip, Validators};

/// What happens to the consecutive-failure count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failures {
    Reset,
    Increment,
    Keep,
}

/// What happens to the permanent-redirect candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    Keep,
    Clear,
    Set {
        url: String,
        seen: u32,
        since: DateTime<Utc>,
    },
    /// Confirmed: fetch from `url` from now on.
    Adopt {
        url: String,
    },
}

/// The outcome of one poll as the feed row records it.
#[derive(Debug, Clone, PartialEq)]
pub struct PollRecord {
    pub state: FeedState,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub failures: Failures,
    pub next_poll: DateTime<Utc>,
    /// Set on success: the adaptive interval worked out.
    pub interval: Option<std::time::Duration>,
    /// Set when a body was read.
    pub body_hash: Option<String>,
    /// Set when new validators arrived.
    pub validators: Option<Validators>,
    /// Set when a document was parsed.
    pub skip: Option<Skip>,
    pub moved: Moved,
    /// How long the fetch took, for the feed's poll history; `None` for a
    /// document a WebSub hub pushed (nothing was fetched).
    pub took_ms: Option<u64>,
}

impl Store {
    /// Records one poll's effect on the feed's fetch state, in one
    /// transaction. A poll that stored a document records it together with
    /// its entries instead (`save_document`).
    pub fn record_poll(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        record: &PollRecord,
    ) -> Result<(), StoreError> {
        let record = record.clone();
        self.write(move |tx| apply_record(tx, id, now, &record, SaveCounts::default()))
    }

    /// [`Store::record_poll`] without waiting for the commit: applied no
    /// later than a write queued after it (it may land before writes queued
    /// earlier, with other queued records; see [`Store::write_detached`]); a
    /// failure is logged by the writer, with `url`. Only for a caller that
    /// reads no feed's state back before it calls [`Store::flush`], and that
    /// writes nothing else about the same feed: `poll --once` (the daemon's
    /// scheduler reads feeds' state to pick what is due, so it waits for
    /// each record).
    pub(crate) fn queue_poll_record(
        &self,
        id: FeedId,
        url: &str,
        now: DateTime<Utc>,
        record: PollRecord,
    ) -> Result<(), StoreError> {
        self.write_detached(format!("the outcome of a poll of {url}"), move |tx| {
            apply_record(tx, id, now, &record, SaveCounts::default())
        })
    }

    /// Forgets every feed's last body hash, so the next 200 is parsed even if
    /// unchanged: after a reload, filters may keep what they dropped before.
    pub fn forget_body_hashes(&self) -> Result<(), StoreError> {
        self.lock_writer()
            .execute("UPDATE feeds SET body_hash = NULL", [])?;
        Ok(())
    }

    /// Whether a feed is still to be polled (configured and not gone): checked
    /// again once a queued poll has waited for its host.
    pub fn is_polled(&self, id: FeedId) -> Result<bool, StoreError> {
        let polled: Option<bool> = lock(&self.reader)
            .query_row(
                "SELECT active = 1 AND state != 'gone' FROM feeds WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(polled.unwrap_or(false))
    }

    /// Number of (feed, key) pairs stored more than once: zero, always.
    pub fn duplicate_entries(&self) -> Result<u64, StoreError> {
        let n: i64 = lock(&self.reader).query_row(
            "SELECT COUNT(*) FROM (SELECT 1 FROM entries GROUP BY feed_id, key HAVING COUNT(*) > 1)",
            [],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }
}

/// Writes one poll's effect on the feed row (prepared statements, cached),
/// and the poll with what it stored (`counts`) to the feed's history.
pub(super) fn apply_record(
    tx: &Connection,
    id: FeedId,
    now: DateTime<Utc>,
    record: &PollRecord,
    counts: SaveCounts,
) -> Result<(), StoreError> {
    super::status::record_history(tx, id, now, record, counts)?;
    let run = |sql: &str, values: &[&dyn rusqlite::ToSql]| -> Result<(), StoreError> {
        tx.prepare_cached(sql)?.execute(values)?;
        Ok(())
    };
    let failures = match record.failures {
        Failures::Reset => "0",
        Failures::Increment => "failures + 1",
        Failures::Keep => "failures",
    };
    run(
        &format!(
            "UPDATE feeds SET state = ?2, last_status = ?3, last_error = ?4,
                failures = {failures}, last_polled_at = ?5, next_poll_at = ?6,
                last_success_at = CASE WHEN ?2 = 'ok' THEN ?5 ELSE last_success_at END,
                poll_interval_secs = COALESCE(?7, poll_interval_secs),
                body_hash = COALESCE(?8, body_hash)
             WHERE id = ?1"
        ),
        params![
            id,
            record.state.as_str(),
            record.status,
            record.error,
            ts(now),
            ts(record.next_poll),
            record.interval.map(|d| d.as_secs() as i64),
            record.body_hash,
        ],
    )?;
    if let Some(v) = &record.validators {
        run(
            "UPDATE feeds SET etag = ?2, last_modified = ?3 WHERE id = ?1",
            params![id, v.etag, v.last_modified],
        )?;
    }
    if let Some(skip) = record.skip {
        run(
            "UPDATE feeds SET skip_hours = ?2, skip_days = ?3 WHERE id = ?1",
            params![id, skip.hours as i64, skip.days as i64],
        )?;
    }
    match &record.moved {
        Moved::Keep => Ok(()),
        Moved::Clear => run(
            "UPDATE feeds SET moved_to = NULL, moved_seen = 0, moved_since = NULL WHERE id = ?1",
            params![id],
        ),
        Moved::Set { url, seen, since } => run(
            "UPDATE feeds SET moved_to = ?2, moved_seen = ?3, moved_since = ?4 WHERE id = ?1",
            params![id, url, seen, ts(*since)],
        ),
        Moved::Adopt { url } => run(
            "UPDATE feeds SET fetch_url = ?2, moved_to = NULL, moved_seen = 0,
                moved_since = NULL WHERE id = ?1",
            params![id, url],
        ),
    }
}
