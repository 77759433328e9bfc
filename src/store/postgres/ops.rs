//! Running the service on PostgreSQL: figures for /metrics and /healthz, the
//! subscription list for OPML, retention, and the database as a whole.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Postgres, get};
use crate::identity;
use crate::store::{
    Maintenance, Ops, OpsSnapshot, PruneCounts, Retention, RetentionPolicy, StoreError,
    Subscription, from_ts, ts,
};

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}

impl Ops for Postgres {
    fn ops_snapshot(&self, now: DateTime<Utc>) -> Result<OpsSnapshot, StoreError> {
        self.read(move |client| {
            Box::pin(async move {
                let feeds_by_state = client
                    .query(
                        "SELECT state, COUNT(*) FROM feeds WHERE active = 1
                         GROUP BY state ORDER BY state",
                        &[],
                    )
                    .await?
                    .iter()
                    .map(|r| Ok((get(r, 0)?, get::<i64>(r, 1)?.max(0) as u64)))
                    .collect::<Result<_, StoreError>>()?;
                let r = client
                    .query_one(
                        "SELECT (SELECT COUNT(*) FROM feeds WHERE active = 0),
                                (SELECT COUNT(*) FROM entries),
                                (SELECT COUNT(*) FROM entry_tombstones),
                                (SELECT MIN(next_poll_at) FROM feeds
                                 WHERE active = 1 AND next_poll_at <= $1)",
                        &[&ts(now)],
                    )
                    .await?;
                let n = |i| get::<i64>(&r, i).map(|v| v.max(0) as u64);
                Ok(OpsSnapshot {
                    feeds_by_state,
                    inactive_feeds: n(0)?,
                    entries: n(1)?,
                    tombstones: n(2)?,
                    oldest_overdue: get::<Option<i64>>(&r, 3)?.map(from_ts),
                })
            })
        })
    }

    fn check_writable(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.write_unseen(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('healthz_at', $1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[&ts(now).to_string()],
                )
                .await?;
                Ok(())
            })
        })
    }

    fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        self.read(|client| {
            Box::pin(async move {
                client
                    .query(
                        "SELECT f.url, COALESCE(f.config_title, f.title), f.site_url,
                            ARRAY(SELECT tag FROM feed_tags t WHERE t.feed_id = f.id ORDER BY tag)
                         FROM feeds f WHERE f.active = 1 ORDER BY f.id",
                        &[],
                    )
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(Subscription {
                            url: get(r, 0)?,
                            title: get(r, 1)?,
                            site_url: get(r, 2)?,
                            tags: get(r, 3)?,
                        })
                    })
                    .collect()
            })
        })
    }
}

impl Retention for Postgres {
    fn prune(
        &self,
        policy: RetentionPolicy,
        now: DateTime<Utc>,
    ) -> Result<PruneCounts, StoreError> {
        let now = ts(now);
        let oldest = policy.max_age.map(|age| now - secs(age));
        let keep = policy
            .max_entries
            .map(|k| i64::try_from(k).unwrap_or(i64::MAX));
        let forget_before = now - secs(policy.keep_tombstones);
        self.write(move |tx| {
            Box::pin(async move {
                tx.batch_execute(
                    "CREATE TEMP TABLE IF NOT EXISTS doomed (id BIGINT PRIMARY KEY)
                        ON COMMIT DELETE ROWS;
                     CREATE TEMP TABLE IF NOT EXISTS doomed_stories (id BIGINT PRIMARY KEY)
                        ON COMMIT DELETE ROWS;
                     DELETE FROM doomed; DELETE FROM doomed_stories;",
                )
                .await?;
                if let Some(oldest) = oldest {
                    tx.execute(
                        "INSERT INTO doomed (id) SELECT id FROM entries WHERE sort_time < $1
                         ON CONFLICT DO NOTHING",
                        &[&oldest],
                    )
                    .await?;
                }
                if let Some(keep) = keep {
                    tx.execute(
                        "INSERT INTO doomed (id)
                         SELECT id FROM (
                            SELECT id, ROW_NUMBER() OVER (
                                PARTITION BY feed_id ORDER BY sort_time DESC, id DESC) AS n
                            FROM entries) ranked
                         WHERE n > $1
                         ON CONFLICT DO NOTHING",
                        &[&keep],
                    )
                    .await?;
                }
                tx.execute(
                    "INSERT INTO doomed_stories (id)
                     SELECT story_id FROM entries
                     WHERE id IN (SELECT id FROM doomed) AND story_id IS NOT NULL
                     ON CONFLICT DO NOTHING",
                    &[],
                )
                .await?;
                tx.execute(
                    "INSERT INTO entry_tombstones (feed_id, key, pruned_at, last_seen,
                        canonical_link, uid)
                     SELECT feed_id, key, $1, COALESCE(last_seen, $1), canonical_link, uid
                     FROM entries WHERE id IN (SELECT id FROM doomed)
                     ON CONFLICT (feed_id, key) DO UPDATE SET pruned_at = excluded.pruned_at,
                        canonical_link = excluded.canonical_link, uid = excluded.uid",
                    &[&now],
                )
                .await?;
                // search_docs rows go with their entries (ON DELETE CASCADE).
                let entries = tx
                    .execute(
                        "DELETE FROM entries WHERE id IN (SELECT id FROM doomed)",
                        &[],
                    )
                    .await?;
                // A story left without entries goes, unless a poll is
                // putting a new entry into it right now: deleting under the
                // story lock waits for that poll's commit and then sees its entry.
                tx.execute(
                    "SELECT pg_advisory_xact_lock($1)",
                    &[&super::entries::STORY_LOCK],
                )
                .await?;
                tx.execute(
                    "DELETE FROM stories WHERE id IN (SELECT id FROM doomed_stories)
                        AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.story_id = stories.id)",
                    &[],
                )
                .await?;
                let tombstones_forgotten = tx
                    .execute(
                        "DELETE FROM entry_tombstones WHERE last_seen < $1",
                        &[&forget_before],
                    )
                    .await?;
                Ok(PruneCounts {
                    entries: entries as usize,
                    tombstones_forgotten: tombstones_forgotten as usize,
                })
            })
        })
    }

    fn tombstone_count(&self) -> Result<u64, StoreError> {
        self.count("SELECT COUNT(*) FROM entry_tombstones")
    }
}

impl Maintenance for Postgres {
    /// This process's writes; other daemons' show in `data_version`.
    fn local_writes(&self) -> u64 {
        self.local_write_count()
    }

    /// Every write is committed before its method returns.
    fn flush_writes(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn schema_version(&self) -> Result<i64, StoreError> {
        self.applied_migrations()
    }

    fn river_id(&self) -> Result<String, StoreError> {
        let candidate = identity::feed_uid(&format!(
            "river:{}",
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        // The first daemon's id wins; the others read it.
        self.write_unseen(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('river_id', $1)
                     ON CONFLICT (key) DO NOTHING",
                    &[&candidate],
                )
                .await?;
                let row = tx
                    .query_one("SELECT value FROM meta WHERE key = 'river_id'", &[])
                    .await?;
                get(&row, 0)
            })
        })
    }

    /// PostgreSQL keeps its own write-ahead log; nothing to fold in.
    fn checkpoint(&self) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// The server's own consistency is its business; this checks that the
    /// database answers and holds every table the schema has.
    fn integrity_check(&self) -> Result<String, StoreError> {
        self.read(|client| {
            Box::pin(async move {
                let row = client
                    .query_one(
                        "SELECT COUNT(*) FROM information_schema.tables
                         WHERE table_schema = current_schema()
                           AND table_name IN ('feeds', 'entries', 'stories', 'meta')",
                        &[],
                    )
                    .await?;
                Ok(if get::<i64>(&row, 0)? == 4 {
                    "ok".to_string()
                } else {
                    "tables are missing".to_string()
                })
            })
        })
    }

    fn is_shared(&self) -> bool {
        true
    }
}
