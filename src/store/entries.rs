//! Entries: saving a poll's results (new and changed entries) atomically.
//! This part of the store interface; each backend implements it.

use crate::model::{FeedId, IdentifiedEntry, SourceMeta, Validators};
use chrono::{DateTime, Utc};

use super::*;

/// A parsed, identified document as one poll stores it.
#[derive(Debug, Clone)]
pub struct PolledDocument {
    pub status: u16,
    pub meta: SourceMeta,
    pub validators: Validators,
    pub entries: Vec<IdentifiedEntry>,
    /// What the parse recovered from (empty for a clean parse); kept on the
    /// feed until its next parse.
    pub parse_warnings: Vec<String>,
}

pub trait Entries {
    /// Stores one successful poll atomically: the source's metadata, its
    /// validators, new and changed entries, and the next poll time.
    #[allow(clippy::too_many_arguments)]
    fn save_poll(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        status: u16,
        meta: &SourceMeta,
        validators: &Validators,
        entries: &[IdentifiedEntry],
        next_poll: DateTime<Utc>,
    ) -> Result<SaveCounts, StoreError>;

    /// A poll's document and its effect on the feed's fetch state (`record`),
    /// in one savepoint of the group commit: stored together or not at all.
    fn save_document(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        doc: PolledDocument,
        record: PollRecord,
    ) -> Result<SaveCounts, StoreError>;

    /// Number of stored entries.
    fn entry_count(&self) -> Result<u64, StoreError>;
}
