//! Operations: figures for /metrics and /healthz, and the subscription list.
//! This part of the store interface; each backend implements it.

use chrono::{DateTime, Utc};

use super::*;

/// Figures read at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpsSnapshot {
    /// Active feeds per state ("new", "ok", "failing").
    pub feeds_by_state: Vec<(String, u64)>,
    /// Feeds no longer configured (their entries kept).
    pub inactive_feeds: u64,
    pub entries: u64,
    pub tombstones: u64,
    /// The earliest due time among active feeds that are overdue at `now`.
    pub oldest_overdue: Option<DateTime<Utc>>,
}

/// A configured feed as OPML wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub url: String,
    pub title: Option<String>,
    pub site_url: Option<String>,
    pub tags: Vec<String>,
}

pub trait Ops {
    fn ops_snapshot(&self, now: DateTime<Utc>) -> Result<OpsSnapshot, StoreError>;

    /// Proves the database takes writes (for /healthz): one tiny committed write.
    fn check_writable(&self, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Every active feed with its title (configured, else its own), site and tags.
    fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError>;
}
