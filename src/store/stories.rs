//! Stories: entries of any feed that carry the same report, under one story.
//! This part of the store interface; each backend implements it.

use crate::identity::DedupSettings;
use crate::model::Story;

use super::*;

/// How the configuration ranks one feed as a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRank {
    pub url: String,
    /// Higher wins the primary slot of a story it shares.
    pub priority: i64,
    /// An original publisher: primary over every feed that is not.
    pub original: bool,
}

pub trait Stories {
    /// Sets how entries are told apart and merged (from `[dedup]`).
    fn set_dedup_settings(&self, settings: DedupSettings);

    fn dedup_settings(&self) -> DedupSettings;

    /// Records each configured feed's rank as a source (`priority`, `original`).
    fn set_feed_ranks(&self, ranks: &[FeedRank]) -> Result<(), StoreError>;

    /// The newest `limit` stories with an entry from an active feed, newest
    /// first: one per story, its primary source's copy with the other outlets.
    /// The first page of the river (`story_page` of every feed).
    fn stories(&self, limit: usize) -> Result<Vec<Story>, StoreError>;

    /// A feed's rank as recorded: (priority, original); `None` for an unknown URL.
    fn feed_rank_of(&self, url: &str) -> Result<Option<(i64, bool)>, StoreError>;

    /// Number of stories.
    fn story_count(&self) -> Result<u64, StoreError>;
}
