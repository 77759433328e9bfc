//! Fetch state: what one poll taught the scheduler about a feed.
//! This part of the store interface; each backend implements it.

use crate::model::{FeedId, FeedState, Skip, Validators};
use chrono::{DateTime, Utc};

use super::*;

/// What happens to the consecutive-failure count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failures {
    Reset,
    Increment,
    Keep,
}

/// What happens to the permanent-redirect candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    Keep,
    Clear,
    Set {
        url: String,
        seen: u32,
        since: DateTime<Utc>,
    },
    /// Confirmed: fetch from `url` from now on.
    Adopt {
        url: String,
    },
}

/// The outcome of one poll as the feed row records it.
#[derive(Debug, Clone, PartialEq)]
pub struct PollRecord {
    pub state: FeedState,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub failures: Failures,
    pub next_poll: DateTime<Utc>,
    /// Set on success: the adaptive interval worked out.
    pub interval: Option<std::time::Duration>,
    /// Set when a body was read.
    pub body_hash: Option<String>,
    /// Set when new validators arrived.
    pub validators: Option<Validators>,
    /// Set when a document was parsed.
    pub skip: Option<Skip>,
    pub moved: Moved,
    /// How long the fetch took, for the feed's poll history; `None` for a
    /// document a WebSub hub pushed (nothing was fetched).
    pub took_ms: Option<u64>,
}

/// What a poll's record says happened, in the history's words.
pub(crate) fn outcome_of(record: &PollRecord) -> &'static str {
    match record.state {
        FeedState::Failing => "failed",
        FeedState::Throttled => "throttled",
        FeedState::Gone => "gone",
        FeedState::New => "new",
        FeedState::Ok if record.took_ms.is_none() => "pushed",
        FeedState::Ok if record.status == Some(304) => "not modified",
        FeedState::Ok if record.body_hash.is_some() => "stored",
        FeedState::Ok => "unchanged",
    }
}

pub trait FetchState {
    /// Records one poll's effect on the feed's fetch state, in one
    /// transaction. A poll that stored a document records it together with
    /// its entries instead (`save_document`).
    fn record_poll(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        record: &PollRecord,
    ) -> Result<(), StoreError>;

    /// Forgets every feed's last body hash, so the next 200 is parsed even if
    /// unchanged: after a reload, filters may keep what they dropped before.
    fn forget_body_hashes(&self) -> Result<(), StoreError>;

    /// Whether a feed is still to be polled (configured and not gone): checked
    /// again once a queued poll has waited for its host.
    fn is_polled(&self, id: FeedId) -> Result<bool, StoreError>;

    /// Number of (feed, key) pairs stored more than once: zero, always.
    fn duplicate_entries(&self) -> Result<u64, StoreError>;

    /// [`Store::record_poll`] without waiting for the commit: applied no
    /// later than a write queued after it (it may land before writes queued
    /// earlier, with other queued records; see the backend); a
    /// failure is logged by the writer, with `url`. Only for a caller that
    /// reads no feed's state back before it calls [`Store::flush`], and that
    /// writes nothing else about the same feed: `poll --once` (the daemon's
    /// scheduler reads feeds' state to pick what is due, so it waits for
    /// each record).
    fn queue_poll_record(
        &self,
        id: FeedId,
        url: &str,
        now: DateTime<Utc>,
        record: PollRecord,
    ) -> Result<(), StoreError>;
}
