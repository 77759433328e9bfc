//! Search: the stories that match a query of our own grammar (`crate::search`).
//! This part of the store interface; each backend implements it.

use crate::model::Story;
use crate::search::Query;

use super::*;
use crate::identity::fingerprint::visible_text;

/// How much of an entry's text is indexed, in bytes (cut at a word break):
/// the lead of a story, where its subject is named. Tokenising is nearly all
/// of the index's cost on the writer, the one serial stage of ingest: the
/// whole text of the benchmark's 1.4 kB items slowed a cold ingest by 42 %
/// (the target is at most 25 %); see BENCHMARKS.md.
pub(crate) const INDEXED_TEXT_BYTES: usize = 600;

/// The text of an entry as indexed: its content, else its summary, without
/// markup and with entities decoded, its first `INDEXED_TEXT_BYTES`.
pub(crate) fn body_text(summary: Option<&str>, content: Option<&str>) -> String {
    let text = visible_text(content.or(summary).unwrap_or_default());
    if text.len() <= INDEXED_TEXT_BYTES {
        return text.into_owned();
    }
    let mut cut = INDEXED_TEXT_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    // Not in the middle of a word: a cut word would be indexed as another.
    let head = &text[..cut];
    let head = match text[cut..].chars().next() {
        Some(c) if c.is_alphanumeric() => head
            .rfind(|c: char| !c.is_alphanumeric())
            .map_or(head, |at| &head[..at]),
        _ => head,
    };
    head.to_string()
}

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
