//! Search: the stories that match a query of our own grammar (`crate::search`).
//! This part of the store interface; each backend implements it.

use crate::model::Story;
use crate::search::Query;

use super::*;

pub trait Search {
    /// The newest `limit` stories matching `query` (one of their copies
    /// matches it), newest first: the first page of the search's view.
    fn search(&self, query: &Query, limit: usize) -> Result<Vec<Story>, StoreError>;

    /// Merges the search index into one segment when writes have left it in
    /// `MIN_SEGMENTS` or more; returns whether it did. FTS5's automerge keeps
    /// the count bounded, not low: a cold ingest of 500,000 entries leaves
    /// 22 segments, and every lookup of a word reads each of them (a query
    /// probing stories one by one pays that per story: 17 ms for a common
    /// word on 22 segments, 3 ms on one). Merging 500,000 entries' index
    /// took 1.8 s here; the daemon does it in its retention pass.
    fn compact_search_index(&self) -> Result<bool, StoreError>;

    /// Entries in the search index (for tests and `/status`-like checks).
    fn indexed_entries(&self) -> Result<u64, StoreError>;
}
