//! WebSub: subscriptions to hubs, pushes, and the built-in hub's subscribers.
//! This part of the store interface; each backend implements it.

use crate::model::FeedId;
use chrono::{DateTime, Utc};

use super::*;

/// What the subscriber must do next for one feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebSubWork {
    /// Ask the hub for a new subscription (new callback and secret).
    Subscribe,
    /// Ask again before the lease ends (same callback and secret).
    Renew,
    /// The feed left the configuration: end the subscription.
    Unsubscribe,
    /// A request the hub never verified: give up on it.
    Expire,
}

/// One feed's subscription, as the subscriber needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSubTask {
    pub feed_id: FeedId,
    pub work: WebSubWork,
    pub hub: String,
    pub topic: String,
    /// The callback token and secret in use, if any.
    pub token: Option<String>,
    pub secret: Option<String>,
    pub pending_mode: Option<String>,
    pub failures: u32,
}

/// A feed's subscription for `feeds` and `/status` (no token, no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSubStatus {
    pub feed_id: FeedId,
    pub url: String,
    pub hub: String,
    pub topic: String,
    pub state: String,
    /// Whether pushes stand in for polls now (active, lease running).
    pub pushed: bool,
    pub lease_end: Option<DateTime<Utc>>,
    pub last_push_at: Option<DateTime<Utc>>,
    pub pushes: u64,
    pub last_error: Option<String>,
}

/// A reader subscribed to one of our feeds on the built-in hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSubscriber {
    pub id: i64,
    pub topic: String,
    pub callback: String,
    pub secret: Option<String>,
}

/// Where a push for a callback token goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub feed_id: FeedId,
    pub secret: String,
}

pub trait WebSub {
    /// Records the hub and topic a poll found for a feed. Writes only when
    /// they differ from what is stored (or the feed was unsubscribed and is
    /// back): a new hub or topic means a new subscription.
    fn record_websub_discovery(
        &self,
        feed_id: FeedId,
        hub: &str,
        topic: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Subscriptions that need a request to their hub at `now`.
    /// `verify_within`: how long a hub may take to verify a request.
    fn websub_work(
        &self,
        now: DateTime<Utc>,
        verify_within: std::time::Duration,
    ) -> Result<Vec<WebSubTask>, StoreError>;

    /// Notes a request about to be sent to the hub (before it is sent: the
    /// hub may verify it before it answers).
    fn websub_begin(
        &self,
        feed_id: FeedId,
        mode: &str,
        token: &str,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The hub refused a request, could not be reached, or never verified
    /// it: try again at `retry_at`. An active subscription stays active
    /// while its lease runs; an unsubscription counts as done (the lease
    /// will lapse anyway).
    fn websub_failed(
        &self,
        feed_id: FeedId,
        error: &str,
        retry_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The hub's verification of intent for callback `token`: true (and the
    /// request is confirmed) only if we asked that hub for `mode` on
    /// `topic` and have not heard back yet.
    fn websub_verify(
        &self,
        token: &str,
        mode: &str,
        topic: &str,
        lease_seconds: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The hub denied a subscription we asked for (`hub.mode=denied`).
    fn websub_denied(
        &self,
        token: &str,
        topic: &str,
        reason: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The feed and secret a push to callback `token` is checked against:
    /// only for a subscription we asked for and that has not ended.
    fn websub_push_target(&self, token: &str) -> Result<Option<PushTarget>, StoreError>;

    /// A signed push was stored: pushes work (a stale subscription is
    /// trusted again).
    fn websub_pushed(&self, feed_id: FeedId, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// A safety-net poll of a pushed feed. One that finds new entries after
    /// an earlier safety poll saw none (the hub had its chance to push
    /// them) marks the subscription stale: the feed is polled normally
    /// again, and subscribed anew at `resubscribe_at`. Returns whether it
    /// went stale.
    fn websub_safety_poll(
        &self,
        feed_id: FeedId,
        new_entries: usize,
        resubscribe_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Feeds with entries stored or changed at or after `since`, each with
    /// its tags: the published views that changed. (A scan of
    /// `entries.changed_at`, run only after this process wrote something.)
    fn published_changes_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(FeedId, Vec<String>)>, StoreError>;

    /// Every feed's subscription, for `feeds` and `/status`.
    fn websub_statuses(&self, now: DateTime<Utc>) -> Result<Vec<WebSubStatus>, StoreError>;

    // The built-in hub's subscribers.
    /// Subscriptions whose lease runs at `now`, and whether (`topic`,
    /// `callback`) is one of them.
    fn hub_subscriber_count(
        &self,
        topic: &str,
        callback: &str,
        now: DateTime<Utc>,
    ) -> Result<(u64, bool), StoreError>;

    /// A verified subscription (new, or renewed with a new lease and secret).
    fn hub_subscribe(
        &self,
        topic: &str,
        callback: &str,
        secret: Option<&str>,
        lease_end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// A verified unsubscription; true if there was something to end.
    fn hub_unsubscribe(&self, topic: &str, callback: &str) -> Result<bool, StoreError>;

    /// The subscribers of `topic` whose lease runs at `now`.
    fn hub_subscribers_of(
        &self,
        topic: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<HubSubscriber>, StoreError>;

    /// The outcome of one delivery to a subscriber.
    fn hub_delivered(&self, id: i64, error: Option<&str>) -> Result<(), StoreError>;
}
