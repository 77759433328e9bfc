//! WebSub subscriptions: the hub and topic each feed advertises, what we
//! asked its hub, what the hub verified (lease), and the pushes since.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Sqlite, StoreError, from_ts, lock, ts};
use crate::model::FeedId;
use crate::store::websub::*;

impl WebSub for Sqlite {
    fn record_websub_discovery(
        &self,
        feed_id: FeedId,
        hub: &str,
        topic: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let stored: Option<(String, String, String)> = lock(&self.reader)
            .query_row(
                "SELECT hub, topic, state FROM websub_subscriptions WHERE feed_id = ?1",
                [feed_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        if let Some((h, t, state)) = &stored
            && h == hub
            && t == topic
            && state != "unsubscribed"
        {
            return Ok(false);
        }
        let (hub, topic) = (hub.to_string(), topic.to_string());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO websub_subscriptions (feed_id, hub, topic, discovered_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (feed_id) DO UPDATE SET
                    hub = excluded.hub, topic = excluded.topic,
                    discovered_at = excluded.discovered_at,
                    state = 'new', pending_mode = NULL, pending_topic = NULL,
                    failures = 0, last_error = NULL, next_attempt_at = 0,
                    lease_end = NULL, safety_polls = 0",
                params![feed_id, hub, topic, ts(now)],
            )?;
            Ok(true)
        })
    }

    fn websub_work(
        &self,
        now: DateTime<Utc>,
        verify_within: std::time::Duration,
    ) -> Result<Vec<WebSubTask>, StoreError> {
        let conn = lock(&self.reader);
        // Renewal starts a tenth of the lease before its end (between 30
        // seconds and a day).
        let mut stmt = conn.prepare_cached(
            "SELECT s.feed_id, s.hub, s.topic, s.token, s.secret, s.pending_mode, s.failures,
                CASE
                  WHEN s.pending_mode IS NOT NULL AND s.requested_at + ?2 <= ?1 THEN 'expire'
                  WHEN f.active = 0 AND s.state IN ('active', 'stale')
                       AND (s.pending_mode IS NULL OR s.pending_mode = 'subscribe')
                       AND s.next_attempt_at <= ?1 THEN 'unsubscribe'
                  WHEN f.active = 1 AND f.state != 'gone' AND s.pending_mode IS NULL
                       AND s.next_attempt_at <= ?1 AND s.state IN ('new', 'failed', 'stale')
                       THEN 'subscribe'
                  WHEN f.active = 1 AND f.state != 'gone' AND s.pending_mode IS NULL
                       AND s.next_attempt_at <= ?1 AND s.state = 'active'
                       AND s.lease_end - MAX(30, MIN(86400, s.lease_seconds / 10)) <= ?1
                       THEN 'renew'
                END AS work
             FROM websub_subscriptions s JOIN feeds f ON f.id = s.feed_id
             WHERE work IS NOT NULL ORDER BY s.feed_id",
        )?;
        let rows = stmt.query_map(params![ts(now), verify_within.as_secs() as i64], |r| {
            let work = match r.get::<_, String>(7)?.as_str() {
                "expire" => WebSubWork::Expire,
                "unsubscribe" => WebSubWork::Unsubscribe,
                "renew" => WebSubWork::Renew,
                _ => WebSubWork::Subscribe,
            };
            Ok(WebSubTask {
                feed_id: r.get(0)?,
                work,
                hub: r.get(1)?,
                topic: r.get(2)?,
                token: r.get(3)?,
                secret: r.get(4)?,
                pending_mode: r.get(5)?,
                failures: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn websub_begin(
        &self,
        feed_id: FeedId,
        mode: &str,
        token: &str,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (mode, token, secret) = (mode.to_string(), token.to_string(), secret.to_string());
        self.write(move |tx| {
            tx.execute(
                "UPDATE websub_subscriptions SET pending_mode = ?2, pending_topic = topic,
                    token = ?3, secret = ?4, requested_at = ?5
                 WHERE feed_id = ?1",
                params![feed_id, mode, token, secret, ts(now)],
            )?;
            Ok(())
        })
    }

    fn websub_failed(
        &self,
        feed_id: FeedId,
        error: &str,
        retry_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let error = error.to_string();
        self.write(move |tx| {
            tx.execute(
                "UPDATE websub_subscriptions SET
                    state = CASE
                        WHEN pending_mode = 'unsubscribe' THEN 'unsubscribed'
                        WHEN state = 'active' AND lease_end > ?4 THEN 'active'
                        ELSE 'failed' END,
                    pending_mode = NULL, pending_topic = NULL,
                    failures = failures + 1, last_error = ?2, next_attempt_at = ?3
                 WHERE feed_id = ?1",
                params![feed_id, error, ts(retry_at), ts(now)],
            )?;
            Ok(())
        })
    }

    fn websub_verify(
        &self,
        token: &str,
        mode: &str,
        topic: &str,
        lease_seconds: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (token, mode, topic) = (token.to_string(), mode.to_string(), topic.to_string());
        self.write(move |tx| {
            let changed = match mode.as_str() {
                "subscribe" => tx.execute(
                    "UPDATE websub_subscriptions SET state = 'active', pending_mode = NULL,
                        pending_topic = NULL, verified_at = ?4, lease_seconds = ?5,
                        lease_end = ?4 + ?5, failures = 0, last_error = NULL,
                        next_attempt_at = 0, safety_polls = 0
                     WHERE token = ?1 AND pending_mode = ?2 AND pending_topic = ?3",
                    params![token, mode, topic, ts(now), lease_seconds as i64],
                )?,
                "unsubscribe" => tx.execute(
                    "UPDATE websub_subscriptions SET state = 'unsubscribed', pending_mode = NULL,
                        pending_topic = NULL, lease_end = NULL, next_attempt_at = 0
                     WHERE token = ?1 AND pending_mode = ?2 AND pending_topic = ?3",
                    params![token, mode, topic],
                )?,
                _ => 0,
            };
            Ok(changed == 1)
        })
    }

    fn websub_denied(
        &self,
        token: &str,
        topic: &str,
        reason: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (token, topic) = (token.to_string(), topic.to_string());
        let reason = format!("the hub denied the subscription: {reason}");
        self.write(move |tx| {
            let changed = tx.execute(
                "UPDATE websub_subscriptions SET state = 'failed', pending_mode = NULL,
                    pending_topic = NULL, lease_end = NULL, failures = failures + 1,
                    last_error = ?3, next_attempt_at = ?4
                 WHERE token = ?1 AND topic = ?2
                   AND (pending_mode = 'subscribe' OR state = 'active')",
                params![token, topic, reason, ts(retry_at)],
            )?;
            Ok(changed == 1)
        })
    }

    fn websub_push_target(&self, token: &str) -> Result<Option<PushTarget>, StoreError> {
        Ok(lock(&self.reader)
            .query_row(
                "SELECT s.feed_id, s.secret FROM websub_subscriptions s
                 JOIN feeds f ON f.id = s.feed_id
                 WHERE s.token = ?1 AND s.secret IS NOT NULL AND f.active = 1
                   AND (s.state IN ('active', 'stale') OR s.pending_mode = 'subscribe')",
                [token],
                |r| {
                    Ok(PushTarget {
                        feed_id: r.get(0)?,
                        secret: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    fn websub_pushed(&self, feed_id: FeedId, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.execute(
                "UPDATE websub_subscriptions SET last_push_at = ?2, pushes = pushes + 1,
                    safety_polls = 0,
                    state = CASE WHEN state = 'stale' AND lease_end > ?2 THEN 'active'
                                 ELSE state END
                 WHERE feed_id = ?1",
                params![feed_id, ts(now)],
            )?;
            Ok(())
        })
    }

    fn websub_safety_poll(
        &self,
        feed_id: FeedId,
        new_entries: usize,
        resubscribe_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let stale = tx.execute(
                "UPDATE websub_subscriptions SET state = 'stale', next_attempt_at = ?2,
                    last_error = 'a poll found entries the hub did not push'
                 WHERE feed_id = ?1 AND state = 'active' AND safety_polls >= 1 AND ?3 > 0",
                params![feed_id, ts(resubscribe_at), new_entries as i64],
            )?;
            if stale == 0 {
                tx.execute(
                    "UPDATE websub_subscriptions SET safety_polls = safety_polls + 1
                     WHERE feed_id = ?1 AND state = 'active'",
                    [feed_id],
                )?;
            }
            Ok(stale == 1)
        })
    }

    fn published_changes_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(FeedId, Vec<String>)>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT f.id, (SELECT group_concat(tag, '/') FROM feed_tags t WHERE t.feed_id = f.id)
             FROM feeds f WHERE f.id IN (SELECT DISTINCT feed_id FROM entries WHERE changed_at >= ?1)
             ORDER BY f.id",
        )?;
        let rows = stmt.query_map([ts(since)], |r| {
            let tags: Option<String> = r.get(1)?;
            Ok((
                r.get::<_, FeedId>(0)?,
                // Tags never contain '/' (the configuration refuses them).
                tags.map(|t| t.split('/').map(str::to_string).collect())
                    .unwrap_or_default(),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn websub_statuses(&self, now: DateTime<Utc>) -> Result<Vec<WebSubStatus>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT s.feed_id, f.url, s.hub, s.topic, s.state,
                    s.state = 'active' AND s.lease_end > ?1, s.lease_end, s.last_push_at,
                    s.pushes, s.last_error
             FROM websub_subscriptions s JOIN feeds f ON f.id = s.feed_id ORDER BY s.feed_id",
        )?;
        let rows = stmt.query_map([ts(now)], |r| {
            Ok(WebSubStatus {
                feed_id: r.get(0)?,
                url: r.get(1)?,
                hub: r.get(2)?,
                topic: r.get(3)?,
                state: r.get(4)?,
                pushed: r.get(5)?,
                lease_end: r.get::<_, Option<i64>>(6)?.map(from_ts),
                last_push_at: r.get::<_, Option<i64>>(7)?.map(from_ts),
                pushes: r.get::<_, i64>(8)?.max(0) as u64,
                last_error: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn hub_subscriber_count(
        &self,
        topic: &str,
        callback: &str,
        now: DateTime<Utc>,
    ) -> Result<(u64, bool), StoreError> {
        let conn = lock(&self.reader);
        let all: i64 = conn.query_row(
            "SELECT COUNT(*) FROM websub_hub_subscribers WHERE lease_end > ?1",
            [ts(now)],
            |r| r.get(0),
        )?;
        let this: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM websub_hub_subscribers
                WHERE topic = ?1 AND callback = ?2 AND lease_end > ?3)",
            params![topic, callback, ts(now)],
            |r| r.get(0),
        )?;
        Ok((all.max(0) as u64, this))
    }

    fn hub_subscribe(
        &self,
        topic: &str,
        callback: &str,
        secret: Option<&str>,
        lease_end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (topic, callback) = (topic.to_string(), callback.to_string());
        let secret = secret.map(str::to_string);
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO websub_hub_subscribers (topic, callback, secret, lease_end, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (topic, callback) DO UPDATE SET
                    secret = excluded.secret, lease_end = excluded.lease_end,
                    failures = 0, last_error = NULL",
                params![topic, callback, secret, ts(lease_end), ts(now)],
            )?;
            Ok(())
        })
    }

    fn hub_unsubscribe(&self, topic: &str, callback: &str) -> Result<bool, StoreError> {
        let (topic, callback) = (topic.to_string(), callback.to_string());
        self.write(move |tx| {
            Ok(tx.execute(
                "DELETE FROM websub_hub_subscribers WHERE topic = ?1 AND callback = ?2",
                params![topic, callback],
            )? > 0)
        })
    }

    fn hub_subscribers_of(
        &self,
        topic: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<HubSubscriber>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT id, topic, callback, secret FROM websub_hub_subscribers
             WHERE topic = ?1 AND lease_end > ?2 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![topic, ts(now)], |r| {
            Ok(HubSubscriber {
                id: r.get(0)?,
                topic: r.get(1)?,
                callback: r.get(2)?,
                secret: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn hub_delivered(&self, id: i64, error: Option<&str>) -> Result<(), StoreError> {
        let error = error.map(str::to_string);
        self.write(move |tx| {
            tx.execute(
                "UPDATE websub_hub_subscribers SET
                    deliveries = deliveries + (?2 IS NULL),
                    failures = CASE WHEN ?2 IS NULL THEN 0 ELSE failures + 1 END,
                    last_error = ?2
                 WHERE id = ?1",
                params![id, error],
            )?;
            Ok(())
        })
    }
}
