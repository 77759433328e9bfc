//! The status page's queries: a summary by aggregates, pages of feeds filtered
//! and ordered in SQL (a river of 100,000 feeds is never loaded whole), one
//! feed's details, and the bounded poll history the write path keeps.
//!
//! Plain SQL (CTEs, CASE, LIKE … ESCAPE, LIMIT/OFFSET) that PostgreSQL reads
//! the same; only the database size comes from SQLite's pragmas.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::feeds::{STATUS_COLUMNS, feed_status};
use super::{PollRecord, SaveCounts, Sqlite, StoreError, from_ts, lock, ts};
use crate::model::{FeedId, FeedStatus};
use crate::status::{
    FailureKind, FeedDetail, FeedFilter, FeedPage, NextPoll, PAGE_SIZE, PendingMove, PollEntry,
    StateCounts, Summary,
};
use crate::store::status::*;
use crate::store::status::{FAILURE_KINDS, ORDER, parse_warnings_text, where_clause};

/// Adds one poll to the feed's history and forgets all but the newest
/// [`HISTORY_PER_FEED`]. Runs in the poll's own savepoint.
pub(super) fn record_history(
    tx: &Connection,
    id: FeedId,
    now: DateTime<Utc>,
    record: &PollRecord,
    counts: SaveCounts,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO poll_history (feed_id, started_at, duration_ms, outcome, http_status, error,
            new_entries, updated_entries)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        id,
        ts(now),
        record.took_ms.unwrap_or(0).min(i64::MAX as u64) as i64,
        crate::store::fetch_state::outcome_of(record),
        record.status,
        record.error,
        counts.new as i64,
        counts.updated as i64,
    ])?;
    tx.prepare_cached(
        "DELETE FROM poll_history WHERE feed_id = ?1 AND id <= (
            SELECT id FROM poll_history WHERE feed_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )?
    .execute(params![id, HISTORY_PER_FEED])?;
    Ok(())
}

impl Status for Sqlite {
    fn status_summary(&self, now: DateTime<Utc>) -> Result<Summary, StoreError> {
        let conn = lock(&self.reader);
        let feeds = conn
            .prepare_cached(
                "SELECT COUNT(*),
                    COALESCE(SUM(CASE WHEN active = 1 AND state = 'ok' THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN active = 1 AND state = 'failing' THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN active = 1 AND state = 'new' THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN active = 1 AND state = 'throttled' THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN active = 0 OR state = 'gone' THEN 1 ELSE 0 END), 0)
                 FROM feeds",
            )?
            .query_row([], |r| {
                let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                Ok(StateCounts {
                    total: n(0)?,
                    ok: n(1)?,
                    failing: n(2)?,
                    new: n(3)?,
                    throttled: n(4)?,
                    retired: n(5)?,
                })
            })?;
        let entries: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM entries")?
            .query_row([], |r| r.get(0))?;
        let polls: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM poll_history WHERE started_at > ?1")?
            .query_row([ts(now) - 3600], |r| r.get(0))?;
        let failures = conn
            .prepare_cached(FAILURE_KINDS)?
            .query_map([], |r| {
                Ok(FailureKind {
                    kind: r.get(0)?,
                    feeds: r.get::<_, i64>(1)?.max(0) as u64,
                })
            })?
            .collect::<Result<_, _>>()?;
        let next_poll = conn
            .prepare_cached(
                "SELECT id, COALESCE(config_title, title, url), next_poll_at FROM feeds
                 WHERE active = 1 AND state != 'gone' ORDER BY next_poll_at, id LIMIT 1",
            )?
            .query_row([], |r| {
                Ok(NextPoll {
                    feed_id: r.get(0)?,
                    title: r.get(1)?,
                    at: from_ts(r.get(2)?),
                })
            })
            .optional()?;
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(Summary {
            feeds,
            entries: entries.max(0) as u64,
            polls_last_hour: polls.max(0) as u64,
            failures,
            next_poll,
            database_bytes: (pages.max(0) as u64).saturating_mul(page_size.max(0) as u64),
        })
    }

    fn feed_page(&self, filter: &FeedFilter) -> Result<FeedPage, StoreError> {
        self.feeds_matching(filter, Some(PAGE_SIZE))
    }

    fn feeds_filtered(&self, filter: &FeedFilter) -> Result<Vec<FeedStatus>, StoreError> {
        Ok(self.feeds_matching(filter, None)?.feeds)
    }

    fn feed_detail(&self, id: FeedId) -> Result<Option<FeedDetail>, StoreError> {
        let conn = lock(&self.reader);
        let status = conn
            .prepare_cached(&format!(
                "SELECT {STATUS_COLUMNS} FROM feeds f WHERE f.id = ?1"
            ))?
            .query_row([id], feed_status)
            .optional()?;
        let Some(status) = status else {
            return Ok(None);
        };
        let tags = conn
            .prepare_cached("SELECT tag FROM feed_tags WHERE feed_id = ?1 ORDER BY tag")?
            .query_map([id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let history = conn
            .prepare_cached(
                "SELECT started_at, duration_ms, outcome, http_status, error, new_entries,
                    updated_entries
                 FROM poll_history WHERE feed_id = ?1 ORDER BY id DESC LIMIT ?2",
            )?
            .query_map(params![id, HISTORY_PER_FEED], |r| {
                Ok(PollEntry {
                    started_at: from_ts(r.get(0)?),
                    duration_ms: r.get::<_, i64>(1)?.max(0) as u64,
                    outcome: r.get(2)?,
                    http_status: r.get(3)?,
                    error: r.get(4)?,
                    new_entries: r.get::<_, i64>(5)?.max(0) as u64,
                    updated_entries: r.get::<_, i64>(6)?.max(0) as u64,
                })
            })?
            .collect::<Result<_, _>>()?;
        let detail = conn
            .prepare_cached(
                "SELECT site_url, interval_secs, poll_interval_secs, fixed_interval, skip_hours,
                    skip_days, moved_to, moved_seen, moved_since, identity_rung, parse_warnings,
                    created_at
                 FROM feeds WHERE id = ?1",
            )?
            .query_row([id], |r| {
                let moving = match (r.get::<_, Option<String>>(6)?, r.get::<_, Option<i64>>(8)?) {
                    (Some(to), Some(since)) => Some(PendingMove {
                        to,
                        seen: r.get::<_, i64>(7)?.max(0) as u32,
                        since: from_ts(since),
                    }),
                    _ => None,
                };
                let warnings: Option<String> = r.get(10)?;
                Ok(FeedDetail {
                    status: status.clone(),
                    tags: Vec::new(),
                    site_url: r.get(0)?,
                    interval_secs: r.get::<_, i64>(1)?.max(0) as u64,
                    poll_interval_secs: r.get::<_, Option<i64>>(2)?.map(|s| s.max(0) as u64),
                    fixed_interval: r.get(3)?,
                    skip_hours: r.get::<_, i64>(4)?.max(0) as u32,
                    skip_days: r.get::<_, i64>(5)?.clamp(0, 255) as u8,
                    moving,
                    identity: r.get(9)?,
                    parse_warnings: warnings
                        .iter()
                        .flat_map(|w| w.lines())
                        .filter(|l| !l.trim().is_empty())
                        .map(str::to_string)
                        .collect(),
                    created_at: from_ts(r.get(11)?),
                    history: Vec::new(),
                })
            })?;
        Ok(Some(FeedDetail {
            tags,
            history,
            ..detail
        }))
    }

    fn set_parse_warnings(&self, id: FeedId, warnings: &[String]) -> Result<(), StoreError> {
        let text = parse_warnings_text(warnings);
        self.write(move |tx| {
            tx.prepare_cached("UPDATE feeds SET parse_warnings = ?2 WHERE id = ?1")?
                .execute(params![id, text])?;
            Ok(())
        })
    }
}

impl Sqlite {
    fn feeds_matching(
        &self,
        filter: &FeedFilter,
        page_size: Option<usize>,
    ) -> Result<FeedPage, StoreError> {
        let (clause, values) = where_clause(filter, '?');
        let mut values: Vec<Value> = values.into_iter().map(Value::Text).collect();
        let conn = lock(&self.reader);
        let matching: i64 = conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM feeds f WHERE {clause}"))?
            .query_row(params_from_iter(values.iter()), |r| r.get(0))?;
        let matching = matching.max(0) as u64;
        let (limit, offset, pages, page) = match page_size {
            Some(size) => {
                let pages = (matching as usize).div_ceil(size).max(1);
                let offset = (filter.page - 1).saturating_mul(size);
                (size as i64, offset as i64, pages, filter.page)
            }
            None => (-1, 0, 1, 1),
        };
        values.push(Value::Integer(limit));
        values.push(Value::Integer(offset));
        let (l, o) = (values.len() - 1, values.len());
        let sql = format!(
            "WITH page AS (
                SELECT f.id FROM feeds f WHERE {clause} ORDER BY {ORDER} LIMIT ?{l} OFFSET ?{o})
             SELECT {STATUS_COLUMNS} FROM page JOIN feeds f ON f.id = page.id ORDER BY {ORDER}"
        );
        let feeds = conn
            .prepare_cached(&sql)?
            .query_map(params_from_iter(values.iter()), feed_status)?
            .collect::<Result<_, _>>()?;
        Ok(FeedPage {
            matching,
            page,
            pages,
            feeds,
        })
    }
}
