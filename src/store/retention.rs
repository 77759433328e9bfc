//! Retention: pruning old entries by age and by count, leaving tombstones.
//! This part of the store interface; each backend implements it.

use crate::config::RetentionConfig;
use chrono::{DateTime, Utc};
use std::time::Duration;

use super::*;

/// What to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Entries dated (never later than first seen) before now − max_age go.
    pub max_age: Option<Duration>,
    /// Per feed, only the newest max_entries stay.
    pub max_entries: Option<u64>,
    /// A tombstone is forgotten once its feed has not carried the entry for this long.
    pub keep_tombstones: Duration,
}

impl From<&RetentionConfig> for RetentionPolicy {
    fn from(c: &RetentionConfig) -> Self {
        Self {
            max_age: c.max_age.map(|d| d.0),
            max_entries: c.max_entries.map(|n| n.0),
            keep_tombstones: c.keep_tombstones.0,
        }
    }
}

impl RetentionPolicy {
    /// Whether this policy ever prunes an entry.
    pub fn prunes(&self) -> bool {
        self.max_age.is_some() || self.max_entries.is_some()
    }
}

/// What one pruning pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneCounts {
    /// Entries deleted (each leaves a tombstone).
    pub entries: usize,
    /// Old tombstones forgotten.
    pub tombstones_forgotten: usize,
}

pub trait Retention {
    /// Deletes the entries the policy no longer keeps, leaving a tombstone for
    /// each, and forgets tombstones not seen in their feed for a long time.
    /// One transaction: a crash leaves either all of it or none.
    fn prune(&self, policy: RetentionPolicy, now: DateTime<Utc>)
    -> Result<PruneCounts, StoreError>;

    /// Number of tombstones kept.
    fn tombstone_count(&self) -> Result<u64, StoreError>;
}
