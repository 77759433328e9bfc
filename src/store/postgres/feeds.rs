//! Feeds and their fetch state on PostgreSQL: the configured list, the
//! schedule with claims (several daemons: each due feed is taken by one,
//! with `FOR UPDATE SKIP LOCKED` and a lease), and what each poll recorded.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::cached;
use super::{Postgres, Tx, get};
use crate::identity;
use crate::model::{FeedId, FeedState, FeedStatus, FeedToPoll, MovedTo, Skip, Validators};
use crate::store::fetch_state::{Failures, FetchState, Moved, PollRecord, outcome_of};
use crate::store::{
    CLAIM_LEASE, FeedSpec, Feeds, HISTORY_PER_FEED, SaveCounts, StoreError, from_ts, ts,
};

/// The advisory lock key one daemon at a time claims due feeds under ("claims!!").
const CLAIM_LOCK: i64 = 0x636c_6169_6d73_2121;

/// The columns [`feed_status`] reads, of `feeds f`.
pub(super) const STATUS_COLUMNS: &str =
    "f.id, f.url, COALESCE(f.config_title, f.title), f.active = 1, f.state, f.last_status,
     f.last_error, f.failures, f.last_polled_at, f.last_success_at, f.next_poll_at,
     (SELECT COUNT(*) FROM entries e WHERE e.feed_id = f.id), f.etag, f.last_modified,
     f.fetch_url, f.parse_warnings";

pub(super) fn feed_status(r: &Row) -> Result<FeedStatus, StoreError> {
    Ok(FeedStatus {
        id: get(r, 0)?,
        url: get(r, 1)?,
        title: get(r, 2)?,
        active: get(r, 3)?,
        state: FeedState::parse(&get::<String>(r, 4)?),
        last_status: get::<Option<i64>>(r, 5)?.and_then(|s| u16::try_from(s).ok()),
        last_error: get(r, 6)?,
        failures: get::<i64>(r, 7)?.clamp(0, u32::MAX.into()) as u32,
        last_polled_at: get::<Option<i64>>(r, 8)?.map(from_ts),
        last_success_at: get::<Option<i64>>(r, 9)?.map(from_ts),
        next_poll_at: from_ts(get(r, 10)?),
        entries: get::<i64>(r, 11)?.max(0) as u64,
        validators: Validators {
            etag: get(r, 12)?,
            last_modified: get(r, 13)?,
        },
        fetch_url: get(r, 14)?,
        parse_warnings: get::<Option<String>>(r, 15)?
            .map(|w| w.lines().map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// The columns `feed_to_poll` reads, in order (then whether it is pushed).
const TO_POLL: &str = "feeds.id, feeds.url, feeds.etag, feeds.last_modified,
    feeds.interval_secs, feeds.failures, feeds.fetch_url, feeds.body_hash,
    feeds.poll_interval_secs, feeds.moved_to, feeds.moved_seen, feeds.moved_since,
    feeds.skip_hours, feeds.skip_days, feeds.fixed_interval";

/// Whether the feed's WebSub subscription is active at the time bound to `param`.
fn pushed_at(param: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM websub_subscriptions w WHERE w.feed_id = feeds.id
            AND w.state = 'active' AND w.lease_end > {param})"
    )
}

fn feed_to_poll(r: &Row) -> Result<FeedToPoll, StoreError> {
    let url: String = get(r, 1)?;
    Ok(FeedToPoll {
        id: get(r, 0)?,
        fetch_url: get::<Option<String>>(r, 6)?.unwrap_or_else(|| url.clone()),
        url,
        validators: Validators {
            etag: get(r, 2)?,
            last_modified: get(r, 3)?,
        },
        interval: Duration::from_secs(get::<i64>(r, 4)?.max(1) as u64),
        failures: get::<i64>(r, 5)?.clamp(0, u32::MAX.into()) as u32,
        body_hash: get(r, 7)?,
        current_interval: get::<Option<i64>>(r, 8)?.map(|s| Duration::from_secs(s.max(1) as u64)),
        moved: match (get::<Option<String>>(r, 9)?, get::<Option<i64>>(r, 11)?) {
            (Some(url), Some(since)) => Some(MovedTo {
                url,
                seen: get::<i64>(r, 10)?.clamp(0, u32::MAX.into()) as u32,
                since: from_ts(since),
            }),
            _ => None,
        },
        skip: Skip {
            hours: get::<i64>(r, 12)? as u32,
            days: get::<i64>(r, 13)? as u8,
        },
        fixed_interval: get::<i64>(r, 14)? != 0,
        pushed: get(r, 15)?,
    })
}

/// A feed's row as `sync_feeds` compares it with the configuration.
struct StoredFeed {
    id: FeedId,
    active: bool,
    title: Option<String>,
    interval: i64,
    fixed_interval: bool,
}

use crate::store::feeds::{AppliedFeedSet, FEED_SET_KEY};

/// The advisory lock key serialising writes of the whole feed list
/// (`sync_feeds`, ranks, forgetting body hashes) across daemons ("feedlist").
pub(super) const FEED_LIST_LOCK: i64 = 0x6665_6564_6c69_7374;

/// How many of the earliest feeds `next_due` weighs one by one.
const NEXT_DUE_LOOKS_AT: i64 = 256;

/// Locks the rows of `ids` in id order. Every transaction that writes
/// several feed rows takes their locks this way first (a poll writes only
/// its own), so two daemons' writes never wait on each other in a circle:
/// a reload's sync, a claim, a renewal. `FOR NO KEY UPDATE` is what an
/// UPDATE takes; inserting rows that refer to a feed still may.
pub(super) async fn lock_feeds(tx: &Tx<'_>, ids: &[FeedId]) -> Result<(), StoreError> {
    if !ids.is_empty() {
        cached::execute(
            tx,
            "SELECT id FROM feeds WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
            &[&ids],
        )
        .await?;
    }
    Ok(())
}

/// WHERE conditions for a write of several feeds in one statement that
/// locks them in id order before writing, as [`lock_feeds`] does (the array
/// is worked out once, before the rows are scanned), so it needs no
/// statement of its own: the feeds `claimed_by = $1`, the feeds `id =
/// ANY($1)`.
pub(super) const CLAIMED_BY_IN_ORDER: &str = "id = ANY(ARRAY(
    SELECT id FROM feeds WHERE claimed_by = $1 ORDER BY id FOR NO KEY UPDATE))
    AND claimed_by = $1";
const IDS_IN_ORDER: &str = "id = ANY(ARRAY(
    SELECT id FROM feeds WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE))";

impl Feeds for Postgres {
    fn sync_feeds(&self, feeds: &[FeedSpec], now: DateTime<Utc>) -> Result<(), StoreError> {
        let applied = AppliedFeedSet::of(feeds, self.daemon(), now).encode();
        let feeds = feeds.to_vec();
        self.write(move |tx| {
            Box::pin(async move {
                cached::execute(tx, "SELECT pg_advisory_xact_lock($1)", &[&FEED_LIST_LOCK]).await?;
                let mut stored: HashMap<String, StoredFeed> = HashMap::new();
                for r in cached::query(
                    tx,
                    "SELECT url, id, active = 1, config_title, interval_secs, fixed_interval
                         FROM feeds",
                    &[],
                )
                .await?
                {
                    stored.insert(
                        get(&r, 0)?,
                        StoredFeed {
                            id: get(&r, 1)?,
                            active: get(&r, 2)?,
                            title: get(&r, 3)?,
                            interval: get(&r, 4)?,
                            fixed_interval: get::<i64>(&r, 5)? != 0,
                        },
                    );
                }
                let mut stored_tags: HashMap<FeedId, HashSet<String>> = HashMap::new();
                for r in cached::query(tx, "SELECT feed_id, tag FROM feed_tags", &[]).await? {
                    stored_tags
                        .entry(get(&r, 0)?)
                        .or_default()
                        .insert(get(&r, 1)?);
                }
                let upsert = tx
                    .prepare(
                        "INSERT INTO feeds (url, uid, config_title, interval_secs, next_poll_at,
                            created_at, fixed_interval)
                         VALUES ($1, $2, $3, $4, $5, $5, $6)
                         ON CONFLICT (url) DO UPDATE SET
                            active = 1,
                            config_title = excluded.config_title,
                            interval_secs = excluded.interval_secs,
                            fixed_interval = excluded.fixed_interval,
                            poll_interval_secs = CASE
                                WHEN feeds.interval_secs != excluded.interval_secs
                                  OR feeds.fixed_interval != excluded.fixed_interval THEN NULL
                                ELSE feeds.poll_interval_secs END,
                            next_poll_at = CASE WHEN excluded.interval_secs < feeds.interval_secs
                                THEN LEAST(feeds.next_poll_at, $5 + excluded.interval_secs)
                                ELSE feeds.next_poll_at END
                         RETURNING id",
                    )
                    .await?;
                let as_configured = |feed: &FeedSpec, row: &StoredFeed| {
                    row.active
                        && row.title == feed.title
                        && row.interval == feed.interval.as_secs() as i64
                        && row.fixed_interval == feed.fixed_interval
                };
                // The stored rows this sync writes, locked first, in order.
                let listed: HashSet<&str> = feeds.iter().map(|f| f.url.as_str()).collect();
                let mut writes: Vec<FeedId> = feeds
                    .iter()
                    .filter_map(|f| stored.get(&f.url).filter(|row| !as_configured(f, row)))
                    .chain(
                        stored
                            .iter()
                            .filter(|(url, row)| row.active && !listed.contains(url.as_str()))
                            .map(|(_, row)| row),
                    )
                    .map(|row| row.id)
                    .collect();
                writes.sort_unstable();
                writes.dedup();
                lock_feeds(tx, &writes).await?;
                let mut configured = HashSet::with_capacity(feeds.len());
                for feed in &feeds {
                    let interval = feed.interval.as_secs() as i64;
                    let as_configured =
                        stored.get(&feed.url).filter(|row| as_configured(feed, row));
                    let id = match as_configured {
                        Some(row) => row.id,
                        None => {
                            let renamed = stored
                                .get(&feed.url)
                                .is_some_and(|row| row.title != feed.title);
                            let row = tx
                                .query_one(
                                    &upsert,
                                    &[
                                        &feed.url,
                                        &identity::feed_uid(&feed.url),
                                        &feed.title,
                                        &interval,
                                        &ts(now),
                                        &i64::from(feed.fixed_interval),
                                    ],
                                )
                                .await?;
                            let id: FeedId = get(&row, 0)?;
                            if renamed {
                                super::search::reindex_feed(tx, id).await?;
                            }
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
                        cached::execute(tx, "DELETE FROM feed_tags WHERE feed_id = $1", &[&id])
                            .await?;
                        for tag in &feed.tags {
                            cached::execute(
                                tx,
                                "INSERT INTO feed_tags (feed_id, tag) VALUES ($1, $2)
                                 ON CONFLICT DO NOTHING",
                                &[&id, tag],
                            )
                            .await?;
                        }
                        *tags = feed.tags.iter().cloned().collect();
                    }
                }
                let gone: Vec<FeedId> = stored
                    .values()
                    .filter(|row| row.active && !configured.contains(&row.id))
                    .map(|row| row.id)
                    .collect();
                if !gone.is_empty() {
                    cached::execute(
                        tx,
                        "UPDATE feeds SET active = 0 WHERE id = ANY($1)",
                        &[&gone],
                    )
                    .await?;
                }
                // Who applied this list first, and when.
                cached::execute(
                    tx,
                    "INSERT INTO meta (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value
                     WHERE substr(meta.value, 1, 32) != substr(excluded.value, 1, 32)",
                    &[&FEED_SET_KEY, &applied],
                )
                .await?;
                Ok(())
            })
        })
    }

    fn applied_feed_set(&self) -> Result<Option<AppliedFeedSet>, StoreError> {
        self.read(|client| {
            Box::pin(async move {
                let row = client
                    .query_opt("SELECT value FROM meta WHERE key = $1", &[&FEED_SET_KEY])
                    .await?;
                let text: Option<String> = row.map(|r| get(&r, 0)).transpose()?;
                Ok(text.as_deref().and_then(AppliedFeedSet::decode))
            })
        })
    }

    /// Claims the due feeds it returns for this daemon (a lease of
    /// `CLAIM_LEASE`), keeping per-host politeness across every daemon on
    /// the database: a host has at most `per_host` live claims, and the
    /// claims on one host are spaced by the gap (`host_gates`), so the
    /// requests they lead to start at least that far apart whichever daemon
    /// makes them. Claims are taken one daemon at a time (a transaction-level
    /// advisory lock: a claim reads and moves the host counts), and a feed
    /// another daemon holds a live claim on is not due here.
    fn due_feeds(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        busy: &HashSet<FeedId>,
    ) -> Result<Vec<FeedToPoll>, StoreError> {
        let busy: Vec<FeedId> = busy.iter().copied().collect();
        let daemon = self.daemon().to_string();
        let lease = CLAIM_LEASE.as_secs() as i64;
        let (per_host, gap) = self.politeness();
        let (per_host, gap_ms) = (
            per_host as i64,
            gap.as_millis().min(i64::MAX as u128) as i64,
        );
        let now_ms = now.timestamp_millis();
        let mut due = self.write_unseen(move |tx| {
            Box::pin(async move {
                cached::execute(tx, "SELECT pg_advisory_xact_lock($1)", &[&CLAIM_LOCK])
                    .await?;
                // Due feeds, numbered within their host, beside the host's
                // live claims and its gate: a host takes as many as it has
                // room for, and none before its gate opens.
                // Planned afresh each time (not kept): what is due changes
                // the best plan.
                let rows = tx.query("WITH live AS (
                            SELECT host, COUNT(*) AS n FROM feeds
                            WHERE claim_until >= $1 GROUP BY host),
                         due AS (
                            SELECT id, host, next_poll_at, ROW_NUMBER() OVER (
                                PARTITION BY host ORDER BY next_poll_at, id) AS nth
                            FROM feeds
                            WHERE active = 1 AND state != 'gone' AND next_poll_at <= $1
                              AND (claim_until IS NULL OR claim_until < $1)
                              AND NOT (id = ANY($3)))
                         SELECT d.id, d.host FROM due d
                         LEFT JOIN live l ON l.host = d.host
                         LEFT JOIN host_gates g ON g.host = d.host
                         WHERE d.nth + COALESCE(l.n, 0) <= $4
                           AND COALESCE(g.next_start_ms, 0) <= $5
                         ORDER BY d.next_poll_at, d.id LIMIT $2",
                        &[&ts(now), &(limit as i64), &busy, &per_host, &now_ms],
                    )
                    .await?;
                let mut ids = Vec::with_capacity(rows.len());
                let mut per: HashMap<String, i64> = HashMap::new();
                for r in &rows {
                    ids.push(get::<i64>(r, 0)?);
                    if let Some(host) = get::<Option<String>>(r, 1)? {
                        *per.entry(host).or_default() += 1;
                    }
                }
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let claimed = tx
                    .query(
                        &format!(
                            "UPDATE feeds SET claimed_by = $2, claim_until = $3::BIGINT + $4::BIGINT
                             WHERE {IDS_IN_ORDER}
                             RETURNING {TO_POLL}, {}, feeds.next_poll_at",
                            pushed_at("$3")
                        ),
                        &[&ids, &daemon, &ts(now), &lease],
                    )
                    .await?;
                // The next start on each host: after the ones claimed now.
                for (host, n) in per {
                    cached::execute(tx, "INSERT INTO host_gates (host, next_start_ms)
                         VALUES ($1, $2::BIGINT + $3::BIGINT * $4::BIGINT)
                         ON CONFLICT (host) DO UPDATE SET next_start_ms =
                            GREATEST(host_gates.next_start_ms, $2::BIGINT) + $3::BIGINT * $4::BIGINT",
                        &[&host, &now_ms, &gap_ms, &n],
                    )
                    .await?;
                }
                claimed
                    .iter()
                    .map(|r| Ok((get::<i64>(r, 16)?, feed_to_poll(r)?)))
                    .collect::<Result<Vec<_>, StoreError>>()
            })
        })?;
        due.sort_by_key(|(at, feed)| (*at, feed.id));
        Ok(due.into_iter().map(|(_, feed)| feed).collect())
    }

    fn active_feeds(&self) -> Result<Vec<FeedToPoll>, StoreError> {
        self.read(|client| {
            Box::pin(async move {
                client
                    .query(
                        &format!(
                            "SELECT {TO_POLL}, FALSE FROM feeds
                             WHERE active = 1 AND state != 'gone' ORDER BY id"
                        ),
                        &[],
                    )
                    .await?
                    .iter()
                    .map(feed_to_poll)
                    .collect()
            })
        })
    }

    fn feed_for_push(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
    ) -> Result<Option<FeedToPoll>, StoreError> {
        self.read(move |client| {
            Box::pin(async move {
                client
                    .query_opt(
                        &format!(
                            "SELECT {TO_POLL}, {} FROM feeds
                             WHERE id = $1 AND active = 1 AND state != 'gone'",
                            pushed_at("$2")
                        ),
                        &[&id, &ts(now)],
                    )
                    .await?
                    .as_ref()
                    .map(feed_to_poll)
                    .transpose()
            })
        })
    }

    /// The next time a feed falls due that this daemon may claim then:
    /// another daemon's claim holds a feed until its lease ends, a host's
    /// gate until it opens; a host with no room is looked at again in a
    /// second (its claims end as their polls do, in any daemon).
    fn next_due(
        &self,
        busy: &HashSet<FeedId>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let busy: Vec<FeedId> = busy.iter().copied().collect();
        let per_host = self.politeness().0 as i64;
        let now_s = ts(now);
        self.read(move |client| {
            Box::pin(async move {
                // The earliest feeds by their own schedule (through the
                // `feeds_due` index), each held back by its claim, its host's
                // gate and live claims; every later feed is due no earlier
                // than its own time. Not a scan of every feed per turn.
                let row = client
                    .query_one(
                        "WITH live AS (
                            SELECT host, COUNT(*) AS n FROM feeds
                            WHERE claim_until >= $2 GROUP BY host),
                         first AS (
                            SELECT host, next_poll_at, claim_until FROM feeds
                            WHERE active = 1 AND state != 'gone' AND NOT (id = ANY($1))
                            ORDER BY next_poll_at LIMIT $4)
                         SELECT
                            (SELECT MIN(GREATEST(
                                f.next_poll_at * 1000,
                                COALESCE(f.claim_until + 1, 0) * 1000,
                                COALESCE(g.next_start_ms, 0),
                                CASE WHEN COALESCE(l.n, 0) >= $3 THEN ($2 + 1) * 1000 ELSE 0 END))
                             FROM first f
                             LEFT JOIN live l ON l.host = f.host
                             LEFT JOIN host_gates g ON g.host = f.host),
                            (SELECT next_poll_at FROM feeds
                             WHERE active = 1 AND state != 'gone' AND NOT (id = ANY($1))
                             ORDER BY next_poll_at OFFSET $4 LIMIT 1)",
                        &[&busy, &now_s, &per_host, &NEXT_DUE_LOOKS_AT],
                    )
                    .await?;
                let first: Option<i64> = get(&row, 0)?;
                // The rest: not before their own time, nor before a second
                // from now (whatever held the first ones back may hold them).
                let rest: Option<i64> =
                    get::<Option<i64>>(&row, 1)?.map(|at| at.max(now_s + 1) * 1000);
                let next = match (first, rest) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                Ok(next.and_then(chrono::DateTime::from_timestamp_millis))
            })
        })
    }

    fn set_politeness(&self, per_host: usize, gap: Duration) {
        self.set_politeness_to(per_host, gap);
    }

    fn record_not_modified(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        next_poll: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |tx| {
            Box::pin(async move {
                cached::execute(
                    tx,
                    "UPDATE feeds SET state = 'ok', last_status = 304, last_error = NULL,
                        failures = 0, last_polled_at = $2, last_success_at = $2,
                        next_poll_at = $3, claimed_by = NULL, claim_until = NULL
                     WHERE id = $1",
                    &[&id, &ts(now), &ts(next_poll)],
                )
                .await?;
                Ok(())
            })
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
        let status = status.map(i64::from);
        self.write(move |tx| {
            Box::pin(async move {
                cached::execute(
                    tx,
                    "UPDATE feeds SET state = 'failing', last_status = $2, last_error = $3,
                        failures = failures + 1, last_polled_at = $4, next_poll_at = $5,
                        claimed_by = NULL, claim_until = NULL
                     WHERE id = $1",
                    &[&id, &status, &error, &ts(now), &ts(next_poll)],
                )
                .await?;
                Ok(())
            })
        })
    }

    fn feed_statuses(&self) -> Result<Vec<FeedStatus>, StoreError> {
        self.read(|client| {
            Box::pin(async move {
                client
                    .query(
                        &format!("SELECT {STATUS_COLUMNS} FROM feeds f ORDER BY f.id"),
                        &[],
                    )
                    .await?
                    .iter()
                    .map(feed_status)
                    .collect()
            })
        })
    }

    /// Also lets go of the claims of daemons of this machine that are gone,
    /// so that, beside them, a killed daemon's feeds wait one renewal at
    /// most rather than the lease.
    fn renew_claims(&self, ids: &[FeedId], now: DateTime<Utc>) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        let daemon = self.daemon().to_string();
        let until = ts(now) + CLAIM_LEASE.as_secs() as i64;
        if !ids.is_empty() {
            self.write_unseen(move |tx| {
                Box::pin(async move {
                    cached::execute(
                        tx,
                        &format!(
                            "UPDATE feeds SET claim_until = $3 WHERE {IDS_IN_ORDER} AND claimed_by = $2"
                        ),
                        &[&ids, &daemon, &until],
                    )
                    .await?;
                    Ok(())
                })
            })?;
        }
        // Apart: its rows are locked in an order of their own.
        self.read(|client| Box::pin(super::release_dead_neighbours(client)))
    }
}

/// Writes one poll's effect on the feed row and its history (with what it
/// stored, `counts`), and lets go of this daemon's claim on it.
pub(super) async fn apply_record(
    tx: &Tx<'_>,
    id: FeedId,
    now: DateTime<Utc>,
    record: &PollRecord,
    counts: SaveCounts,
) -> Result<(), StoreError> {
    record_history(tx, id, now, record, counts).await?;
    let failures = match record.failures {
        Failures::Reset => "0",
        Failures::Increment => "failures + 1",
        Failures::Keep => "failures",
    };
    let status = record.status.map(i64::from);
    let interval = record.interval.map(|d| d.as_secs() as i64);
    tx.execute(
        &format!(
            "UPDATE feeds SET state = $2, last_status = $3, last_error = $4,
                failures = {failures}, last_polled_at = $5, next_poll_at = $6,
                last_success_at = CASE WHEN $2 = 'ok' THEN $5 ELSE last_success_at END,
                poll_interval_secs = COALESCE($7, poll_interval_secs),
                body_hash = COALESCE($8, body_hash),
                claimed_by = NULL, claim_until = NULL
             WHERE id = $1"
        ),
        &[
            &id,
            &record.state.as_str(),
            &status,
            &record.error,
            &ts(now),
            &ts(record.next_poll),
            &interval,
            &record.body_hash,
        ],
    )
    .await?;
    if let Some(v) = &record.validators {
        cached::execute(
            tx,
            "UPDATE feeds SET etag = $2, last_modified = $3 WHERE id = $1",
            &[&id, &v.etag, &v.last_modified],
        )
        .await?;
    }
    if let Some(skip) = record.skip {
        cached::execute(
            tx,
            "UPDATE feeds SET skip_hours = $2, skip_days = $3 WHERE id = $1",
            &[&id, &i64::from(skip.hours), &i64::from(skip.days)],
        )
        .await?;
    }
    let (sql, values): (&str, Vec<Box<dyn ToSql + Sync + Send>>) = match &record.moved {
        Moved::Keep => return Ok(()),
        Moved::Clear => (
            "UPDATE feeds SET moved_to = NULL, moved_seen = 0, moved_since = NULL WHERE id = $1",
            vec![],
        ),
        Moved::Set { url, seen, since } => (
            "UPDATE feeds SET moved_to = $2, moved_seen = $3, moved_since = $4 WHERE id = $1",
            vec![
                Box::new(url.clone()),
                Box::new(i64::from(*seen)),
                Box::new(ts(*since)),
            ],
        ),
        Moved::Adopt { url } => (
            "UPDATE feeds SET fetch_url = $2, moved_to = NULL, moved_seen = 0,
                moved_since = NULL WHERE id = $1",
            vec![Box::new(url.clone())],
        ),
    };
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&id];
    params.extend(values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)));
    tx.execute(sql, &params).await?;
    Ok(())
}

/// Adds one poll to the feed's history and forgets all but the newest
/// [`HISTORY_PER_FEED`].
async fn record_history(
    tx: &Tx<'_>,
    id: FeedId,
    now: DateTime<Utc>,
    record: &PollRecord,
    counts: SaveCounts,
) -> Result<(), StoreError> {
    let took = record.took_ms.unwrap_or(0).min(i64::MAX as u64) as i64;
    let status = record.status.map(i64::from);
    cached::execute(
        tx,
        "INSERT INTO poll_history (feed_id, started_at, duration_ms, outcome, http_status,
            error, new_entries, updated_entries)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &id,
            &ts(now),
            &took,
            &outcome_of(record),
            &status,
            &record.error,
            &(counts.new as i64),
            &(counts.updated as i64),
        ],
    )
    .await?;
    cached::execute(
        tx,
        "DELETE FROM poll_history WHERE feed_id = $1 AND id <= (
            SELECT id FROM poll_history WHERE feed_id = $1 ORDER BY id DESC
            LIMIT 1 OFFSET $2)",
        &[&id, &HISTORY_PER_FEED],
    )
    .await?;
    Ok(())
}

impl FetchState for Postgres {
    fn record_poll(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        record: &PollRecord,
    ) -> Result<(), StoreError> {
        let record = record.clone();
        self.write(move |tx| {
            Box::pin(async move { apply_record(tx, id, now, &record, SaveCounts::default()).await })
        })
    }

    /// Written at once: PostgreSQL takes concurrent writers, so there is no
    /// queue to join.
    fn queue_poll_record(
        &self,
        id: FeedId,
        _url: &str,
        now: DateTime<Utc>,
        record: PollRecord,
    ) -> Result<(), StoreError> {
        self.record_poll(id, now, &record)
    }

    fn forget_body_hashes(&self) -> Result<(), StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                cached::execute(tx, "SELECT pg_advisory_xact_lock($1)", &[&FEED_LIST_LOCK]).await?;
                cached::execute(
                    tx,
                    "SELECT id FROM feeds WHERE body_hash IS NOT NULL
                     ORDER BY id FOR NO KEY UPDATE",
                    &[],
                )
                .await?;
                cached::execute(
                    tx,
                    "UPDATE feeds SET body_hash = NULL WHERE body_hash IS NOT NULL",
                    &[],
                )
                .await?;
                Ok(())
            })
        })
    }

    fn is_polled(&self, id: FeedId) -> Result<bool, StoreError> {
        self.read(move |client| {
            Box::pin(async move {
                let row = client
                    .query_opt(
                        "SELECT active = 1 AND state != 'gone' FROM feeds WHERE id = $1",
                        &[&id],
                    )
                    .await?;
                Ok(match row {
                    Some(r) => get(&r, 0)?,
                    None => false,
                })
            })
        })
    }

    fn duplicate_entries(&self) -> Result<u64, StoreError> {
        self.read(|client| {
            Box::pin(async move {
                let row = client
                    .query_one(
                        "SELECT COUNT(*) FROM (SELECT 1 FROM entries GROUP BY feed_id, key
                            HAVING COUNT(*) > 1) d",
                        &[],
                    )
                    .await?;
                Ok(get::<i64>(&row, 0)?.max(0) as u64)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::seq::SliceRandom;

    use super::*;

    /// Daemons reloading different orders of one list at once, while others
    /// claim and renew: every multi-row write of feeds locks its rows in id
    /// order, so none of them fails with a deadlock.
    #[test]
    fn reloads_claims_and_renewals_of_several_daemons_do_not_deadlock() {
        const FEEDS: usize = 400;
        let url = super::super::test_database();
        let open = || Postgres::connect(&url, Duration::from_secs(10), 2).unwrap();
        let spec = |n: usize, secs: u64| FeedSpec {
            url: format!("http://h{}.example/{n}", n % 7),
            title: None,
            interval: Duration::from_secs(secs),
            tags: vec![format!("t{}", n % 3)],
            fixed_interval: true,
        };
        let first: Vec<FeedSpec> = (0..FEEDS).map(|n| spec(n, 60)).collect();
        open().sync_feeds(&first, Utc::now()).unwrap();
        let daemons: Vec<_> = (0..3)
            .map(|d| {
                let store = open();
                store.set_politeness(50, Duration::ZERO);
                std::thread::spawn(move || -> Result<(), StoreError> {
                    for round in 0..12_u64 {
                        // A reload: every interval changes, in an order of its own.
                        let mut list: Vec<FeedSpec> =
                            (0..FEEDS).map(|n| spec(n, 61 + round)).collect();
                        list.shuffle(&mut rand::rng());
                        store.sync_feeds(&list, Utc::now())?;
                        // Claims, renewals and a forgotten body hash between.
                        let later = Utc::now() + chrono::Duration::hours(round as i64 + 1);
                        let due = store.due_feeds(later, 100, &HashSet::new())?;
                        let ids: Vec<FeedId> = due.iter().map(|f| f.id).rev().collect();
                        store.renew_claims(&ids, later)?;
                        if round % 4 == d {
                            store.forget_body_hashes()?;
                        }
                        for f in due.iter().take(20) {
                            store.record_not_modified(
                                f.id,
                                later,
                                later + chrono::Duration::hours(1),
                            )?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for daemon in daemons {
            daemon.join().unwrap().unwrap();
        }
        let stored = open().feed_statuses().unwrap();
        assert_eq!(stored.len(), FEEDS);
    }
}
