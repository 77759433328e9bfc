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

    /// The feed list the database follows: the last one any daemon applied
    /// (`sync_feeds`), by whom and when; `None` before the first.
    fn applied_feed_set(&self) -> Result<Option<AppliedFeedSet>, StoreError>;

    /// The per-host politeness every daemon on this database keeps together:
    /// at most `per_host` requests to one host at once, starts at least `gap`
    /// apart. A backend that one daemon owns leaves this to the scheduler's
    /// own host gate.
    fn set_politeness(&self, per_host: usize, gap: std::time::Duration);
}

/// A feed list as `sync_feeds` applied it, recorded in the database so that
/// a daemon can tell whether the list in force is the one its own file gives.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedFeedSet {
    /// [`feed_set_digest`] of the list.
    pub digest: String,
    /// How many feeds it lists.
    pub feeds: usize,
    /// The process that applied it (host:pid, and more on a shared backend).
    pub by: String,
    pub at: DateTime<Utc>,
}

/// The `meta` key it is kept under.
pub(crate) const FEED_SET_KEY: &str = "feed_set";

/// A digest of a feed list as configured, independent of its order: two
/// daemons with the same feeds and per-feed settings agree.
pub fn feed_set_digest(feeds: &[FeedSpec]) -> String {
    let mut lines: Vec<String> = feeds
        .iter()
        .map(|f| {
            let mut tags = f.tags.clone();
            tags.sort();
            format!(
                "{}\t{}\t{}\t{}\t{}",
                f.url,
                f.title.as_deref().unwrap_or("\u{0}"),
                f.interval.as_secs(),
                f.fixed_interval,
                tags.join(",")
            )
        })
        .collect();
    lines.sort();
    lines.dedup();
    format!(
        "{:032x}",
        xxhash_rust::xxh3::xxh3_128(lines.join("\n").as_bytes())
    )
}

/// How many feeds a list names (a URL listed twice is one feed).
pub(crate) fn distinct_feeds(feeds: &[FeedSpec]) -> usize {
    feeds
        .iter()
        .map(|f| f.url.as_str())
        .collect::<HashSet<_>>()
        .len()
}

impl AppliedFeedSet {
    /// What `sync_feeds` records for `feeds`.
    pub(crate) fn of(feeds: &[FeedSpec], by: &str, at: DateTime<Utc>) -> Self {
        Self {
            digest: feed_set_digest(feeds),
            feeds: distinct_feeds(feeds),
            by: by.to_string(),
            at,
        }
    }

    /// As stored in `meta`: digest, count, unix time and name, tab-separated.
    pub(crate) fn encode(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}",
            self.digest,
            self.feeds,
            self.at.timestamp(),
            self.by
        )
    }

    /// Reads [`AppliedFeedSet::encode`]'s text; `None` for anything else.
    pub(crate) fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(4, '\t');
        let digest = parts.next()?.to_string();
        let feeds = parts.next()?.parse().ok()?;
        let at = DateTime::from_timestamp(parts.next()?.parse().ok()?, 0)?;
        let by = parts.next()?.to_string();
        Some(Self {
            digest,
            feeds,
            by,
            at,
        })
    }
}

/// This machine's name, as processes are named in the database.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into())
}

/// This process, as [`AppliedFeedSet::by`] names it: host and process id.
pub(crate) fn this_process() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str, secs: u64) -> FeedSpec {
        FeedSpec {
            url: url.into(),
            title: None,
            interval: std::time::Duration::from_secs(secs),
            tags: vec!["a".into(), "b".into()],
            fixed_interval: false,
        }
    }

    #[test]
    fn the_digest_ignores_order_and_sees_every_setting() {
        let one = [spec("http://a/", 60), spec("http://b/", 60)];
        let same = [spec("http://b/", 60), spec("http://a/", 60)];
        assert_eq!(feed_set_digest(&one), feed_set_digest(&same));
        let slower = [spec("http://a/", 60), spec("http://b/", 120)];
        assert_ne!(feed_set_digest(&one), feed_set_digest(&slower));
        let fewer = [spec("http://a/", 60)];
        assert_ne!(feed_set_digest(&one), feed_set_digest(&fewer));
        let mut retagged = one.clone();
        retagged[0].tags = vec!["a".into()];
        assert_ne!(feed_set_digest(&one), feed_set_digest(&retagged));
    }

    #[test]
    fn the_record_reads_back_and_junk_is_none() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let applied = AppliedFeedSet::of(&[spec("http://a/", 60)], "box:12:ab", at);
        assert_eq!(AppliedFeedSet::decode(&applied.encode()), Some(applied));
        assert_eq!(AppliedFeedSet::decode("nonsense"), None);
    }
}
