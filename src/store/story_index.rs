//! The in-memory LSH index of stories' fingerprints (see
//! `identity::fingerprint::BANDS`): near-duplicate matching compares a new
//! entry only with the stories that share a band with it, so a cold ingest of
//! many same-week entries costs time in proportion to the entries, not to
//! their square. About 750 bytes a story; at most [`MAX_STORIES`] are kept.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use super::StoreError;
use crate::identity::fingerprint::Fingerprint;

/// Stories indexed at most (about 45 MiB); past this the index is rebuilt
/// from the newest half.
const MAX_STORIES: usize = 60_000;

const END: u32 = u32::MAX;

/// Band key → chain of stories whose first entry has that band.
#[derive(Debug, Default)]
pub(crate) struct StoryIndex {
    /// Oldest `sort_time` loaded from the database; `None` until loaded.
    since: Option<i64>,
    /// Band key (truncated) → newest link of its chain in `links`.
    heads: HashMap<u32, u32>,
    /// (story id, next link) — chains of stories per band key.
    links: Vec<(u32, u32)>,
    stories: usize,
}

impl StoryIndex {
    /// Makes sure every story with `sort_time >= since` is indexed: on first
    /// use, when an older time is asked for, or after the index grew past its
    /// cap. Stories created later are added as they are created.
    pub(crate) fn ensure_loaded(&mut self, tx: &Connection, since: i64) -> Result<(), StoreError> {
        if self.since.is_some_and(|s| s <= since) && self.stories < MAX_STORIES {
            return Ok(());
        }
        self.heads.clear();
        self.links.clear();
        self.stories = 0;
        let mut stmt = tx.prepare_cached(
            "SELECT s.id, e.fingerprint FROM stories s JOIN entries e ON e.uid = s.uid
             WHERE s.sort_time >= ?1 AND e.fingerprint IS NOT NULL
             ORDER BY s.sort_time DESC, s.id DESC LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![since, (MAX_STORIES / 2) as i64])?;
        while let Some(row) = rows.next()? {
            let bytes: Vec<u8> = row.get(1)?;
            if let Some(fingerprint) = Fingerprint::from_bytes(&bytes) {
                self.add(row.get(0)?, &fingerprint);
            }
        }
        self.since = Some(since);
        Ok(())
    }

    pub(crate) fn add(&mut self, story: i64, fingerprint: &Fingerprint) {
        let Ok(story) = u32::try_from(story) else {
            return;
        };
        for key in fingerprint.band_keys() {
            let link = self.links.len() as u32;
            let previous = self.heads.insert(key as u32, link).unwrap_or(END);
            self.links.push((story, previous));
        }
        self.stories += 1;
    }

    /// Stories sharing at least one band with `fingerprint`. An id may be
    /// stale (a write rolled back, a story pruned): callers look each one up.
    pub(crate) fn candidates(&self, fingerprint: &Fingerprint) -> Vec<i64> {
        let mut found = Vec::new();
        for key in fingerprint.band_keys() {
            let mut at = self.heads.get(&(key as u32)).copied().unwrap_or(END);
            while let Some(&(story, next)) = self.links.get(at as usize) {
                found.push(i64::from(story));
                at = next;
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_share_a_band_and_strangers_do_not() {
        let text = "the harbour authority said the strike ended on wednesday after a nine day stoppage that stranded forty ships at anchor off the coast";
        let a = Fingerprint::of("Port strike ends", text).unwrap();
        let b = Fingerprint::of(
            "Port strike ends",
            &format!("{text} copyright belongs to the original author"),
        )
        .unwrap();
        let c = Fingerprint::of("Council budget", "the council approved a budget for new bike lanes along the river and a library extension next spring with a small rise in fees").unwrap();
        let mut index = StoryIndex::default();
        index.add(1, &a);
        index.add(2, &c);
        assert_eq!(index.candidates(&b), vec![1]);
        assert_eq!(index.candidates(&c), vec![2]);
    }
}
