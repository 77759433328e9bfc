//! Fetch state beyond entries: what one poll taught the scheduler about a feed
//! (state, error, next attempt, adaptive interval, redirects, body hash).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SaveCounts, Sqlite, StoreError, lock, ts};
use crate::model::FeedId;
use crate::store::fetch_state::*;

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

impl FetchState for Sqlite {
    fn queue_poll_record(
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

    fn record_poll(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        record: &PollRecord,
    ) -> Result<(), StoreError> {
        let record = record.clone();
        self.write(move |tx| apply_record(tx, id, now, &record, SaveCounts::default()))
    }

    fn forget_body_hashes(&self) -> Result<(), StoreError> {
        self.lock_writer()
            .execute("UPDATE feeds SET body_hash = NULL", [])?;
        Ok(())
    }

    fn is_polled(&self, id: FeedId) -> Result<bool, StoreError> {
        let polled: Option<bool> = lock(&self.reader)
            .query_row(
                "SELECT active = 1 AND state != 'gone' FROM feeds WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(polled.unwrap_or(false))
    }

    fn duplicate_entries(&self) -> Result<u64, StoreError> {
        let n: i64 = lock(&self.reader).query_row(
            "SELECT COUNT(*) FROM (SELECT 1 FROM entries GROUP BY feed_id, key HAVING COUNT(*) > 1)",
            [],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }
}
