//! Queries for running the service: figures for /metrics and /healthz, and
//! the subscription list for OPML export.

use chrono::{DateTime, Utc};

use super::{Sqlite, StoreError, from_ts, lock, ts};
use crate::store::ops::*;

impl Ops for Sqlite {
    fn ops_snapshot(&self, now: DateTime<Utc>) -> Result<OpsSnapshot, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT state, COUNT(*) FROM feeds WHERE active = 1 GROUP BY state ORDER BY state",
        )?;
        let feeds_by_state = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })?
            .collect::<Result<_, _>>()?;
        let count = |sql: &str| -> Result<u64, StoreError> {
            Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))?.max(0) as u64)
        };
        let inactive_feeds = count("SELECT COUNT(*) FROM feeds WHERE active = 0")?;
        let entries = count("SELECT COUNT(*) FROM entries")?;
        let tombstones = count("SELECT COUNT(*) FROM entry_tombstones")?;
        let oldest: Option<i64> = conn.query_row(
            "SELECT MIN(next_poll_at) FROM feeds WHERE active = 1 AND next_poll_at <= ?1",
            [ts(now)],
            |r| r.get(0),
        )?;
        Ok(OpsSnapshot {
            feeds_by_state,
            inactive_feeds,
            entries,
            tombstones,
            oldest_overdue: oldest.map(from_ts),
        })
    }

    fn check_writable(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.lock_writer().execute(
            "INSERT INTO meta (key, value) VALUES ('healthz_at', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [ts(now).to_string()],
        )?;
        Ok(())
    }

    fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT f.url, COALESCE(f.config_title, f.title), f.site_url,
                    (SELECT group_concat(tag, '/') FROM
                        (SELECT tag FROM feed_tags t WHERE t.feed_id = f.id ORDER BY tag))
             FROM feeds f WHERE f.active = 1 ORDER BY f.id",
        )?;
        let rows = stmt.query_map([], |r| {
            let tags: Option<String> = r.get(3)?;
            Ok(Subscription {
                url: r.get(0)?,
                title: r.get(1)?,
                site_url: r.get(2)?,
                // Tags never contain '/' (the configuration refuses them).
                tags: tags
                    .map(|t| t.split('/').map(str::to_string).collect())
                    .unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
