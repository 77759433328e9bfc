//! WebSub subscriptions and the built-in hub's subscribers on PostgreSQL:
//! the SQLite backend's statements with PostgreSQL's placeholders.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{Postgres, get};
use crate::model::FeedId;
use crate::store::{
    HubSubscriber, PushTarget, StoreError, WebSub, WebSubStatus, WebSubTask, WebSubWork, from_ts,
    ts,
};

/// Runs one statement in a write transaction; the rows it changed.
macro_rules! change {
    ($self:ident, $sql:expr, $($arg:expr),* $(,)?) => {{
        $self.write(move |tx| {
            Box::pin(async move { Ok(tx.execute($sql, &[$(&$arg),*]).await?) })
        })
    }};
}

fn task(r: &Row) -> Result<WebSubTask, StoreError> {
    let work = match get::<String>(r, 7)?.as_str() {
        "expire" => WebSubWork::Expire,
        "unsubscribe" => WebSubWork::Unsubscribe,
        "renew" => WebSubWork::Renew,
        _ => WebSubWork::Subscribe,
    };
    Ok(WebSubTask {
        feed_id: get(r, 0)?,
        work,
        hub: get(r, 1)?,
        topic: get(r, 2)?,
        token: get(r, 3)?,
        secret: get(r, 4)?,
        pending_mode: get(r, 5)?,
        failures: get::<i64>(r, 6)?.clamp(0, u32::MAX.into()) as u32,
    })
}

impl WebSub for Postgres {
    fn record_websub_discovery(
        &self,
        feed_id: FeedId,
        hub: &str,
        topic: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (hub, topic) = (hub.to_string(), topic.to_string());
        let stored = self.read(move |client| {
            Box::pin(async move {
                client
                    .query_opt(
                        "SELECT hub, topic, state FROM websub_subscriptions WHERE feed_id = $1",
                        &[&feed_id],
                    )
                    .await?
                    .map(|r| {
                        Ok::<_, StoreError>((
                            get::<String>(&r, 0)?,
                            get::<String>(&r, 1)?,
                            get::<String>(&r, 2)?,
                        ))
                    })
                    .transpose()
            })
        })?;
        if let Some((h, t, state)) = &stored
            && *h == hub
            && *t == topic
            && state != "unsubscribed"
        {
            return Ok(false);
        }
        change!(
            self,
            "INSERT INTO websub_subscriptions (feed_id, hub, topic, discovered_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (feed_id) DO UPDATE SET
                hub = excluded.hub, topic = excluded.topic,
                discovered_at = excluded.discovered_at,
                state = 'new', pending_mode = NULL, pending_topic = NULL,
                failures = 0, last_error = NULL, next_attempt_at = 0,
                lease_end = NULL, safety_polls = 0",
            feed_id,
            hub,
            topic,
            ts(now)
        )?;
        Ok(true)
    }

    fn websub_work(
        &self,
        now: DateTime<Utc>,
        verify_within: std::time::Duration,
    ) -> Result<Vec<WebSubTask>, StoreError> {
        let within = verify_within.as_secs() as i64;
        self.read(move |client| {
            Box::pin(async move {
                client
                    .query(
                        "SELECT * FROM (
                            SELECT s.feed_id, s.hub, s.topic, s.token, s.secret, s.pending_mode,
                                s.failures,
                                CASE
                                  WHEN s.pending_mode IS NOT NULL AND s.requested_at + $2 <= $1
                                       THEN 'expire'
                                  WHEN f.active = 0 AND s.state IN ('active', 'stale')
                                       AND (s.pending_mode IS NULL OR s.pending_mode = 'subscribe')
                                       AND s.next_attempt_at <= $1 THEN 'unsubscribe'
                                  WHEN f.active = 1 AND f.state != 'gone' AND s.pending_mode IS NULL
                                       AND s.next_attempt_at <= $1
                                       AND s.state IN ('new', 'failed', 'stale') THEN 'subscribe'
                                  WHEN f.active = 1 AND f.state != 'gone' AND s.pending_mode IS NULL
                                       AND s.next_attempt_at <= $1 AND s.state = 'active'
                                       AND s.lease_seconds IS NOT NULL
                                       AND s.lease_end - GREATEST(30, LEAST(86400,
                                           s.lease_seconds / 10)) <= $1
                                       THEN 'renew'
                                END AS work
                            FROM websub_subscriptions s JOIN feeds f ON f.id = s.feed_id) w
                         WHERE work IS NOT NULL ORDER BY feed_id",
                        &[&ts(now), &within],
                    )
                    .await?
                    .iter()
                    .map(task)
                    .collect()
            })
        })
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
        change!(
            self,
            "UPDATE websub_subscriptions SET pending_mode = $2, pending_topic = topic,
                token = $3, secret = $4, requested_at = $5
             WHERE feed_id = $1",
            feed_id,
            mode,
            token,
            secret,
            ts(now)
        )?;
        Ok(())
    }

    fn websub_failed(
        &self,
        feed_id: FeedId,
        error: &str,
        retry_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let error = error.to_string();
        change!(
            self,
            "UPDATE websub_subscriptions SET
                state = CASE
                    WHEN pending_mode = 'unsubscribe' THEN 'unsubscribed'
                    WHEN state = 'active' AND lease_end > $4 THEN 'active'
                    ELSE 'failed' END,
                pending_mode = NULL, pending_topic = NULL,
                failures = failures + 1, last_error = $2, next_attempt_at = $3
             WHERE feed_id = $1",
            feed_id,
            error,
            ts(retry_at),
            ts(now)
        )?;
        Ok(())
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
        let lease = i64::try_from(lease_seconds).unwrap_or(i64::MAX / 4);
        let changed = match mode.as_str() {
            "subscribe" => change!(
                self,
                "UPDATE websub_subscriptions SET state = 'active', pending_mode = NULL,
                    pending_topic = NULL, verified_at = $4, lease_seconds = $5,
                    lease_end = $4::BIGINT + $5::BIGINT, failures = 0, last_error = NULL,
                    next_attempt_at = 0, safety_polls = 0
                 WHERE token = $1 AND pending_mode = $2 AND pending_topic = $3",
                token,
                mode,
                topic,
                ts(now),
                lease
            )?,
            "unsubscribe" => change!(
                self,
                "UPDATE websub_subscriptions SET state = 'unsubscribed', pending_mode = NULL,
                    pending_topic = NULL, lease_end = NULL, next_attempt_at = 0
                 WHERE token = $1 AND pending_mode = $2 AND pending_topic = $3",
                token,
                mode,
                topic
            )?,
            _ => 0,
        };
        Ok(changed == 1)
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
        let changed = change!(
            self,
            "UPDATE websub_subscriptions SET state = 'failed', pending_mode = NULL,
                pending_topic = NULL, lease_end = NULL, failures = failures + 1,
                last_error = $3, next_attempt_at = $4
             WHERE token = $1 AND topic = $2
               AND (pending_mode = 'subscribe' OR state = 'active')",
            token,
            topic,
            reason,
            ts(retry_at)
        )?;
        Ok(changed == 1)
    }

    fn websub_push_target(&self, token: &str) -> Result<Option<PushTarget>, StoreError> {
        let token = token.to_string();
        self.read(move |client| {
            Box::pin(async move {
                client
                    .query_opt(
                        "SELECT s.feed_id, s.secret FROM websub_subscriptions s
                         JOIN feeds f ON f.id = s.feed_id
                         WHERE s.token = $1 AND s.secret IS NOT NULL AND f.active = 1
                           AND (s.state IN ('active', 'stale') OR s.pending_mode = 'subscribe')",
                        &[&token],
                    )
                    .await?
                    .map(|r| {
                        Ok(PushTarget {
                            feed_id: get(&r, 0)?,
                            secret: get(&r, 1)?,
                        })
                    })
                    .transpose()
            })
        })
    }

    fn websub_pushed(&self, feed_id: FeedId, now: DateTime<Utc>) -> Result<(), StoreError> {
        change!(
            self,
            "UPDATE websub_subscriptions SET last_push_at = $2, pushes = pushes + 1,
                safety_polls = 0,
                state = CASE WHEN state = 'stale' AND lease_end > $2 THEN 'active'
                             ELSE state END
             WHERE feed_id = $1",
            feed_id,
            ts(now)
        )?;
        Ok(())
    }

    fn websub_safety_poll(
        &self,
        feed_id: FeedId,
        new_entries: usize,
        resubscribe_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let new_entries = new_entries as i64;
        self.write(move |tx| {
            Box::pin(async move {
                let stale = tx
                    .execute(
                        "UPDATE websub_subscriptions SET state = 'stale', next_attempt_at = $2,
                            last_error = 'a poll found entries the hub did not push'
                         WHERE feed_id = $1 AND state = 'active' AND safety_polls >= 1
                           AND $3::BIGINT > 0",
                        &[&feed_id, &ts(resubscribe_at), &new_entries],
                    )
                    .await?;
                if stale == 0 {
                    tx.execute(
                        "UPDATE websub_subscriptions SET safety_polls = safety_polls + 1
                         WHERE feed_id = $1 AND state = 'active'",
                        &[&feed_id],
                    )
                    .await?;
                }
                Ok(stale == 1)
            })
        })
    }

    fn published_changes_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(FeedId, Vec<String>)>, StoreError> {
        self.read(move |client| {
            Box::pin(async move {
                client
                    .query(
                        "SELECT f.id, ARRAY(SELECT tag FROM feed_tags t WHERE t.feed_id = f.id)
                         FROM feeds f
                         WHERE f.id IN (SELECT DISTINCT feed_id FROM entries WHERE changed_at >= $1)
                         ORDER BY f.id",
                        &[&ts(since)],
                    )
                    .await?
                    .iter()
                    .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
                    .collect()
            })
        })
    }

    fn websub_statuses(&self, now: DateTime<Utc>) -> Result<Vec<WebSubStatus>, StoreError> {
        self.read(move |client| {
            Box::pin(async move {
                client
                    .query(
                        "SELECT s.feed_id, f.url, s.hub, s.topic, s.state,
                                s.state = 'active' AND COALESCE(s.lease_end > $1, FALSE),
                                s.lease_end, s.last_push_at, s.pushes, s.last_error
                         FROM websub_subscriptions s JOIN feeds f ON f.id = s.feed_id
                         ORDER BY s.feed_id",
                        &[&ts(now)],
                    )
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(WebSubStatus {
                            feed_id: get(r, 0)?,
                            url: get(r, 1)?,
                            hub: get(r, 2)?,
                            topic: get(r, 3)?,
                            state: get(r, 4)?,
                            pushed: get(r, 5)?,
                            lease_end: get::<Option<i64>>(r, 6)?.map(from_ts),
                            last_push_at: get::<Option<i64>>(r, 7)?.map(from_ts),
                            pushes: get::<i64>(r, 8)?.max(0) as u64,
                            last_error: get(r, 9)?,
                        })
                    })
                    .collect()
            })
        })
    }

    fn hub_subscriber_count(
        &self,
        topic: &str,
        callback: &str,
        now: DateTime<Utc>,
    ) -> Result<(u64, bool), StoreError> {
        let (topic, callback) = (topic.to_string(), callback.to_string());
        self.read(move |client| {
            Box::pin(async move {
                let r = client
                    .query_one(
                        "SELECT (SELECT COUNT(*) FROM websub_hub_subscribers WHERE lease_end > $3),
                            EXISTS (SELECT 1 FROM websub_hub_subscribers
                                WHERE topic = $1 AND callback = $2 AND lease_end > $3)",
                        &[&topic, &callback, &ts(now)],
                    )
                    .await?;
                Ok((get::<i64>(&r, 0)?.max(0) as u64, get(&r, 1)?))
            })
        })
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
        change!(
            self,
            "INSERT INTO websub_hub_subscribers (topic, callback, secret, lease_end, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (topic, callback) DO UPDATE SET
                secret = excluded.secret, lease_end = excluded.lease_end,
                failures = 0, last_error = NULL",
            topic,
            callback,
            secret,
            ts(lease_end),
            ts(now)
        )?;
        Ok(())
    }

    fn hub_unsubscribe(&self, topic: &str, callback: &str) -> Result<bool, StoreError> {
        let (topic, callback) = (topic.to_string(), callback.to_string());
        Ok(change!(
            self,
            "DELETE FROM websub_hub_subscribers WHERE topic = $1 AND callback = $2",
            topic,
            callback
        )? > 0)
    }

    fn hub_subscribers_of(
        &self,
        topic: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<HubSubscriber>, StoreError> {
        let topic = topic.to_string();
        self.read(move |client| {
            Box::pin(async move {
                client
                    .query(
                        "SELECT id, topic, callback, secret FROM websub_hub_subscribers
                         WHERE topic = $1 AND lease_end > $2 ORDER BY id",
                        &[&topic, &ts(now)],
                    )
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(HubSubscriber {
                            id: get(r, 0)?,
                            topic: get(r, 1)?,
                            callback: get(r, 2)?,
                            secret: get(r, 3)?,
                        })
                    })
                    .collect()
            })
        })
    }

    fn hub_delivered(&self, id: i64, error: Option<&str>) -> Result<(), StoreError> {
        let error = error.map(str::to_string);
        change!(
            self,
            "UPDATE websub_hub_subscribers SET
                deliveries = deliveries + CASE WHEN $2::TEXT IS NULL THEN 1 ELSE 0 END,
                failures = CASE WHEN $2::TEXT IS NULL THEN 0 ELSE failures + 1 END,
                last_error = $2
             WHERE id = $1",
            id,
            error
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;

    use crate::store::{FeedSpec, Store, StoreError, WebSubWork};

    /// A subscription's life on one backend: what `websub_work` asks for at
    /// each step, and the states it goes through.
    fn lifecycle(store: &Store) -> Result<Vec<String>, StoreError> {
        let t0 = chrono::Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
        store.sync_feeds(
            &[FeedSpec {
                url: "http://a.example/feed".into(),
                title: None,
                interval: Duration::from_secs(600),
                tags: vec![],
                fixed_interval: false,
            }],
            t0,
        )?;
        let id = store.feed_statuses()?[0].id;
        let mut log = Vec::new();
        let note = |log: &mut Vec<String>, what: &str, store: &Store| -> Result<(), StoreError> {
            let work: Vec<String> = store
                .websub_work(t0, Duration::from_secs(60))?
                .iter()
                .map(|t| format!("{:?}", t.work))
                .collect();
            let state: Vec<String> = store
                .websub_statuses(t0)?
                .iter()
                .map(|s| format!("{}/{}", s.state, s.pushed))
                .collect();
            log.push(format!("{what}: work {work:?} state {state:?}"));
            Ok(())
        };
        assert!(store.record_websub_discovery(id, "http://hub/", "http://a.example/feed", t0)?);
        note(&mut log, "discovered", store)?;
        store.websub_begin(id, "subscribe", "tok", "sec", t0)?;
        note(&mut log, "asked", store)?;
        let target = store.websub_push_target("tok")?.map(|t| t.secret);
        log.push(format!("target {target:?}"));
        let verified =
            store.websub_verify("tok", "subscribe", "http://a.example/feed", 3600, t0)?;
        log.push(format!("verified {verified}"));
        note(&mut log, "verified", store)?;
        store.websub_pushed(id, t0)?;
        let stale = store.websub_safety_poll(id, 0, t0)?;
        log.push(format!("stale {stale}"));
        store.hub_subscribe(
            "http://t/",
            "http://cb/",
            Some("s"),
            t0 + chrono::Duration::hours(1),
            t0,
        )?;
        log.push(format!(
            "{:?}",
            store.hub_subscriber_count("http://t/", "http://cb/", t0)?
        ));
        let subs = store.hub_subscribers_of("http://t/", t0)?;
        store.hub_delivered(subs[0].id, None)?;
        store.hub_delivered(subs[0].id, Some("boom"))?;
        log.push(format!(
            "unsubscribed {}",
            store.hub_unsubscribe("http://t/", "http://cb/")?
        ));
        let _ = WebSubWork::Renew;
        Ok(log)
    }

    #[test]
    fn a_subscription_lives_the_same_on_both_backends() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Store::open(&dir.path().join("w.db")).unwrap();
        let postgres =
            Store::open_postgres(&super::super::test_database(), Duration::from_secs(10), 2)
                .unwrap();
        let expected = lifecycle(&sqlite).unwrap();
        assert!(
            expected.iter().any(|l| l.contains("Subscribe")),
            "{expected:?}"
        );
        assert_eq!(lifecycle(&postgres).unwrap(), expected);
    }
}
