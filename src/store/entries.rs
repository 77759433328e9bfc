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

impl PolledDocument {
    /// A cleanly parsed document, as `save_poll` is given it.
    pub(crate) fn of_poll(
        status: u16,
        meta: &SourceMeta,
        validators: &Validators,
        entries: &[IdentifiedEntry],
    ) -> Self {
        Self {
            status,
            meta: meta.clone(),
            validators: validators.clone(),
            entries: entries.to_vec(),
            parse_warnings: Vec::new(),
        }
    }
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

/// The identity rung a feed is keyed by after a poll: the rung its entries
/// were re-keyed at, one lower when too many of its guids changed or were
/// reused (`unstable` of `total`, more than `tolerance` of them). Returns the
/// new rung when it is not the stored one, and logs why the feed moved.
pub(crate) fn settle_rung(
    feed_url: &str,
    stored: crate::identity::Rung,
    rekeyed: crate::identity::Rung,
    unstable: usize,
    total: usize,
    tolerance: f64,
) -> Option<crate::identity::Rung> {
    use crate::identity::Rung;
    let unstable_guids =
        rekeyed == Rung::Guid && unstable > 0 && unstable as f64 > total as f64 * tolerance;
    let rung = if unstable_guids { Rung::Link } else { rekeyed };
    if rung == stored {
        return None;
    }
    let reason = if unstable_guids {
        "its guids change or are reused between polls"
    } else {
        "its entries' ids are missing or repeated"
    };
    tracing::warn!(feed = %feed_url, from = stored.as_str(), to = rung.as_str(), unstable, total, "{reason}: the feed moves down the identity ladder and its entries are keyed by {} from now on", rung.as_str());
    Some(rung)
}
