//! Feeds: the configured list, the schedule, and each feed's fetch state.
//! This part of the store interface; each backend implements it.

use crate::model::{FeedId, FeedStatus, FeedToPoll};
use chrono::{DateTime, Utc};
use std::collections::HashSet;

use super::*;

pub trait Feeds {
    /// Makes the stored feed list match the configuration: new feeds are added
    /// and due at once, changed settings are applied, feeds no longer configured
    /// are deactivated (their entries stay).
    fn sync_feeds(&self, feeds: &[FeedSpec], now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Active feeds due at `now`, earliest first, skipping those in `busy`.
    fn due_feeds(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        busy: &HashSet<FeedId>,
    ) -> Result<Vec<FeedToPoll>, StoreError>;

    /// Every active feed, for a one-off poll of everything.
    fn active_feeds(&self) -> Result<Vec<FeedToPoll>, StoreError>;

    /// One active feed as a poll needs it, for a push that brings its
    /// document: `pushed` tells whether its subscription is active at `now`.
    fn feed_for_push(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
    ) -> Result<Option<FeedToPoll>, StoreError>;

    /// When the next feed (not in `busy`) falls due, as seen at `now`.
    fn next_due(
        &self,
        busy: &HashSet<FeedId>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// A 304: only the schedule moves.
    fn record_not_modified(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        next_poll: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// A failed poll: the error is kept on the feed with the next attempt.
    fn record_failure(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        status: Option<u16>,
        error: &str,
        next_poll: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Every feed with its state, for status displays.
    fn feed_statuses(&self) -> Result<Vec<FeedStatus>, StoreError>;

    /// Keeps this daemon's claim on feeds it took from `due_feeds` and has
    /// not recorded yet (a poll waiting for its host), so that no other
    /// daemon takes them while they wait. A backend that one daemon owns
    /// claims nothing and has nothing to renew.
    fn renew_claims(&self, ids: &[FeedId], now: DateTime<Utc>) -> Result<(), StoreError>;

    /// The per-host politeness every daemon on this database keeps together:
    /// at most `per_host` requests to one host at once, starts at least `gap`
    /// apart. A backend that one daemon owns leaves this to the scheduler's
    /// own host gate.
    fn set_politeness(&self, per_host: usize, gap: std::time::Duration);
}
