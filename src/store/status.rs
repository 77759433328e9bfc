//! Status: the summary, filtered pages of feeds, and one feed's details.
//! This part of the store interface; each backend implements it.

use crate::model::{FeedId, FeedStatus};
use crate::status::{FeedDetail, FeedFilter, FeedPage, Summary};
use chrono::{DateTime, Utc};

use super::*;

/// Polls kept per feed in `poll_history`.
pub const HISTORY_PER_FEED: i64 = 20;

pub trait Status {
    /// The river at a glance: feeds by state, entries, polls in the last
    /// hour, failing feeds by kind of error, the next poll, the database size.
    fn status_summary(&self, now: DateTime<Utc>) -> Result<Summary, StoreError>;

    /// The page of feeds `filter` asks for ([`PAGE_SIZE`] a page), failing
    /// first, then by title. Filtered, ordered and cut in SQL; entries are
    /// counted for the feeds on the page only.
    fn feed_page(&self, filter: &FeedFilter) -> Result<FeedPage, StoreError>;

    /// Every feed `filter` matches (its page ignored), in the page order: for
    /// `newsriver feeds`.
    fn feeds_filtered(&self, filter: &FeedFilter) -> Result<Vec<FeedStatus>, StoreError>;

    /// Everything known about one feed, with its newest polls first.
    fn feed_detail(&self, id: FeedId) -> Result<Option<FeedDetail>, StoreError>;

    /// Records what the last parse of a feed recovered from (one warning per
    /// line in `feeds.parse_warnings`; none clears it).
    fn set_parse_warnings(&self, id: FeedId, warnings: &[String]) -> Result<(), StoreError>;
}
