//! Feeds: the configured list, the schedule, and each feed's fetch state.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{FeedSpec, Sqlite, StoreError, from_ts, lock, ts};
use crate::identity;
use crate::model::{FeedId, FeedState, FeedStatus, FeedToPoll, MovedTo, Skip, Validators};
use crate::store::Feeds;

/// A feed's row as `sync_feeds` compares it with the configuration.
struct StoredFeed {
    id: FeedId,
    active: bool,
    title: Option<String>,
    interval: i64,
    fixed_interval: bool,
}

/// The columns [`feed_status`] reads, of `feeds f`.
pub(super) const STATUS_COLUMNS: &str =
    "f.id, f.url, COALESCE(f.config_title, f.title), f.active, f.state, f.last_status,
     f.last_error, f.failures, f.last_polled_at, f.last_success_at, f.next_poll_at,
     (SELECT COUNT(*) FROM entries e WHERE e.feed_id = f.id), f.etag, f.last_modified,
     f.fetch_url, f.parse_warnings";

pub(super) fn feed_status(r: &rusqlite::Row<'_>) -> rusqlite::Result<FeedStatus> {
    Ok(FeedStatus {
        id: r.get(0)?,
        url: r.get(1)?,
        title: r.get(2)?,
        active: r.get(3)?,
        state: FeedState::parse(&r.get::<_, String>(4)?),
        last_status: r.get(5)?,
        last_error: r.get(6)?,
        failures: r.get(7)?,
        last_polled_at: r.get::<_, Option<i64>>(8)?.map(from_ts),
        last_success_at: r.get::<_, Option<i64>>(9)?.map(from_ts),
        next_poll_at: from_ts(r.get(10)?),
        entries: r.get::<_, i64>(11)?.max(0) as u64,
        validators: Validators {
            etag: r.get(12)?,
            last_modified: r.get(13)?,
        },
        fetch_url: r.get(14)?,
        parse_warnings: r
            .get::<_, Option<String>>(15)?
            .map(|w| w.lines().map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// The columns `feed_to_poll` reads, in order (then whether it is pushed).
const TO_POLL: &str = "id, url, etag, last_modified, interval_secs, failures, fetch_url, body_hash,
    poll_interval_secs, moved_to, moved_seen, moved_since, skip_hours, skip_days, fixed_interval";

/// Whether the feed's WebSub subscription is active at the time bound to `param`.
fn pushed_at(param: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM websub_subscriptions w WHERE w.feed_id = feeds.id
            AND w.state = 'active' AND w.lease_end > {param})"
    )
}

fn feed_to_poll(r: &rusqlite::Row<'_>) -> rusqlite::Result<FeedToPoll> {
    Ok(FeedToPoll {
        id: r.get(0)?,
        url: r.get(1)?,
        validators: Validators {
            etag: r.get(2)?,
            last_modified: r.get(3)?,
        },
        interval: Duration::from_secs(r.get::<_, i64>(4)?.max(1) as u64),
        failures: r.get(5)?,
        fetch_url: match r.get::<_, Option<String>>(6)? {
            Some(moved) => moved,
            None => r.get(1)?,
        },
        body_hash: r.get(7)?,
        current_interval: r
            .get::<_, Option<i64>>(8)?
            .map(|s| Duration::from_secs(s.max(1) as u64)),
        moved: match (r.get::<_, Option<String>>(9)?, r.get::<_, Option<i64>>(11)?) {
            (Some(url), Some(since)) => Some(MovedTo {
                url,
                seen: r.get(10)?,
                since: from_ts(since),
            }),
            _ => None,
        },
        skip: Skip {
            hours: r.get::<_, i64>(12)? as u32,
            days: r.get::<_, i64>(13)? as u8,
        },
        fixed_interval: r.get(14)?,
        pushed: r.get(15)?,
    })
}

use crate::store::feeds::{AppliedFeedSet, FEED_SET_KEY, this_process};

impl Feeds for Sqlite {
    /// One daemon: its scheduler's host gate is the whole of it.
    fn set_politeness(&self, _per_host: usize, _gap: Duration) {}

    /// Nothing is claimed in a file one daemon owns.
    fn renew_claims(&self, _ids: &[FeedId], _now: DateTime<Utc>) -> Result<(), StoreError> {
        Ok(())
    }

    fn sync_feeds(&self, feeds: &[FeedSpec], now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut conn = self.lock_writer();
        let tx = conn.transaction()?;
        // Statements are prepared once for the whole list. The upsert runs
        // only for a feed that is new or not as configured (`as_configured`
        // below): a restart with 10,000 unchanged feeds writes nothing.
        let mut upsert = tx.prepare_cached(
            "INSERT INTO feeds (url, uid, config_title, interval_secs, next_poll_at, created_at,
                fixed_interval)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)
             ON CONFLICT (url) DO UPDATE SET
                active = 1,
                config_title = excluded.config_title,
                interval_secs = excluded.interval_secs,
                fixed_interval = excluded.fixed_interval,
                -- a changed interval replaces the adaptive one learned so far
                poll_interval_secs = CASE
                    WHEN interval_secs != excluded.interval_secs
                      OR fixed_interval != excluded.fixed_interval THEN NULL
                    ELSE poll_interval_secs END,
                -- a shorter interval takes effect now, not after the old one;
                -- otherwise the schedule (a Retry-After, a backoff) stands
                next_poll_at = CASE WHEN excluded.interval_secs < interval_secs
                    THEN MIN(next_poll_at, ?5 + excluded.interval_secs)
                    ELSE next_poll_at END",
        )?;
        let mut find = tx.prepare_cached("SELECT id FROM feeds WHERE url = ?1")?;
        let mut clear_tags = tx.prepare_cached("DELETE FROM feed_tags WHERE feed_id = ?1")?;
        let mut add_tag =
            tx.prepare_cached("INSERT OR IGNORE INTO feed_tags (feed_id, tag) VALUES (?1, ?2)")?;
        // What is stored, read in two queries rather than two per feed.
        let mut stored: HashMap<String, StoredFeed> = tx
            .prepare_cached(
                "SELECT url, id, active = 1, config_title, interval_secs, fixed_interval FROM feeds",
            )?
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    StoredFeed {
                        id: r.get(1)?,
                        active: r.get(2)?,
                        title: r.get(3)?,
                        interval: r.get(4)?,
                        fixed_interval: r.get(5)?,
                    },
                ))
            })?
            .collect::<Result<_, _>>()?;
        let mut stored_tags: HashMap<FeedId, HashSet<String>> = HashMap::new();
        for row in tx
            .prepare_cached("SELECT feed_id, tag FROM feed_tags")?
            .query_map([], |r| Ok((r.get::<_, FeedId>(0)?, r.get::<_, String>(1)?)))?
        {
            let (id, tag) = row?;
            stored_tags.entry(id).or_default().insert(tag);
        }
        let mut configured = HashSet::with_capacity(feeds.len());
        for feed in feeds {
            let interval = feed.interval.as_secs() as i64;
            let as_configured = stored.get(&feed.url).filter(|row| {
                row.active
                    && row.title == feed.title
                    && row.interval == interval
                    && row.fixed_interval == feed.fixed_interval
            });
            let id = match as_configured {
                Some(row) => row.id,
                None => {
                    // The outlet's name is indexed with each of its entries.
                    let renamed = stored
                        .get(&feed.url)
                        .is_some_and(|row| row.title != feed.title);
                    upsert.execute(params![
                        feed.url,
                        identity::feed_uid(&feed.url),
                        feed.title,
                        interval,
                        ts(now),
                        feed.fixed_interval
                    ])?;
                    let id: FeedId = find.query_row([&feed.url], |r| r.get(0))?;
                    if renamed {
                        super::search::reindex_feed(&tx, id)?;
                    }
                    // A URL listed twice is compared with what was just written.
                    stored.insert(
                        feed.url.clone(),
                        StoredFeed {
                            id,
                            active: true,
                            title: feed.title.clone(),
                            interval,
                            fixed_interval: feed.fixed_interval,
                        },
                    );
                    id
                }
            };
            configured.insert(id);
            let wanted: HashSet<&String> = feed.tags.iter().collect();
            let tags = stored_tags.entry(id).or_default();
            if tags.len() != wanted.len() || !wanted.iter().all(|t| tags.contains(*t)) {
                clear_tags.execute([id])?;
                for tag in &feed.tags {
                    add_tag.execute(params![id, tag])?;
                }
                *tags = feed.tags.iter().cloned().collect();
            }
        }
        let mut deactivate = tx.prepare_cached("UPDATE feeds SET active = 0 WHERE id = ?1")?;
        for row in stored.values() {
            if row.active && !configured.contains(&row.id) {
                deactivate.execute([row.id])?;
            }
        }
        drop((upsert, find, clear_tags, add_tag, deactivate));
        // Who applied this list first, and when: the same list applied
        // again (a restart) rewrites nothing.
        let applied = AppliedFeedSet::of(feeds, &this_process(), now);
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value
             WHERE substr(meta.value, 1, 32) != substr(excluded.value, 1, 32)",
            params![FEED_SET_KEY, applied.encode()],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn applied_feed_set(&self) -> Result<Option<AppliedFeedSet>, StoreError> {
        let conn = lock(&self.reader);
        let text: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [FEED_SET_KEY],
                |r| r.get(0),
            )
            .optional()?;
        Ok(text.as_deref().and_then(AppliedFeedSet::decode))
    }

    fn due_feeds(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        busy: &HashSet<FeedId>,
    ) -> Result<Vec<FeedToPoll>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {TO_POLL}, {} FROM feeds
             WHERE active = 1 AND state != 'gone' AND next_poll_at <= ?1 ORDER BY next_poll_at, id LIMIT ?2",
            pushed_at("?1")
        ))?;
        let rows = stmt.query_map(params![ts(now), (limit + busy.len()) as i64], feed_to_poll)?;
        let mut due = Vec::new();
        for row in rows {
            let feed = row?;
            if !busy.contains(&feed.id) && due.len() < limit {
                due.push(feed);
            }
        }
        Ok(due)
    }

    fn active_feeds(&self) -> Result<Vec<FeedToPoll>, StoreError> {
        let conn = lock(&self.reader);
        // `+active`: the table is read in id order, not through the
        // `feeds_due` index and then sorted (nearly every feed is active).
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {TO_POLL}, 0 FROM feeds WHERE +active = 1 AND state != 'gone' ORDER BY id"
        ))?;
        let rows = stmt.query_map([], feed_to_poll)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn feed_for_push(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
    ) -> Result<Option<FeedToPoll>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {TO_POLL}, {} FROM feeds WHERE id = ?1 AND active = 1 AND state != 'gone'",
            pushed_at("?2")
        ))?;
        Ok(stmt
            .query_row(params![id, ts(now)], feed_to_poll)
            .optional()?)
    }

    fn next_due(
        &self,
        busy: &HashSet<FeedId>,
        _now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT id, next_poll_at FROM feeds WHERE active = 1 AND state != 'gone'
             ORDER BY next_poll_at LIMIT ?1",
        )?;
        let rows = stmt.query_map([(busy.len() + 1) as i64], |r| {
            Ok((r.get::<_, FeedId>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (id, at) = row?;
            if !busy.contains(&id) {
                return Ok(Some(from_ts(at)));
            }
        }
        Ok(None)
    }

    fn record_not_modified(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        next_poll: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE feeds SET state = 'ok', last_status = 304, last_error = NULL, failures = 0,
                    last_polled_at = ?2, last_success_at = ?2, next_poll_at = ?3 WHERE id = ?1",
                params![id, ts(now), ts(next_poll)],
            )?;
            Ok(())
        })
    }

    fn record_failure(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        status: Option<u16>,
        error: &str,
        next_poll: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let error = error.to_string();
        self.write(move |conn| {
            conn.execute(
                "UPDATE feeds SET state = 'failing', last_status = ?2, last_error = ?3,
                    failures = failures + 1, last_polled_at = ?4, next_poll_at = ?5 WHERE id = ?1",
                params![id, status, error, ts(now), ts(next_poll)],
            )?;
            Ok(())
        })
    }

    fn feed_statuses(&self) -> Result<Vec<FeedStatus>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {STATUS_COLUMNS} FROM feeds f ORDER BY f.id"
        ))?;
        let rows = stmt.query_map([], feed_status)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
