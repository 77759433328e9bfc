//! The in-memory LSH index of stories' fingerprints (see
//! `identity::fingerprint::BANDS`): near-duplicate matching compares a new
//! entry only with the stories that share a band with it, so a cold ingest of
//! many same-week entries costs time in proportion to the entries, not to
//! their square. About 1.1 kB a story (chain links, band keys, the map); at
//! most [`MAX_STORIES`] are kept.
//!
//! Both backends keep one: SQLite's writer as the only writer; each
//! PostgreSQL daemon as a cache it brings up to date from the database
//! (the stories other daemons created) under the story lock before it
//! matches. Either way the index only proposes candidates; each is looked up
//! in the database before it is used.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::identity::fingerprint::{BANDS, Fingerprint};

/// Stories indexed at most (about 65 MiB); past this the index keeps the
/// newest half.
const MAX_STORIES: usize = 60_000;

/// Stories a load reads at most (the newest of the window).
pub(crate) const LOAD_LIMIT: usize = MAX_STORIES / 2;

const END: u32 = u32::MAX;

/// Hashes a band key, which is already a well-mixed hash, by one multiply
/// (std's default SipHash cost more than the rest of an index insert).
#[derive(Debug, Default, Clone, Copy)]
struct BandKeyHasher(u64);

impl Hasher for BandKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u32(&mut self, key: u32) {
        // Spread over all 64 bits: the table reads its control bits from the top.
        self.0 = u64::from(key).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Band key → chain of stories whose first entry has that band.
#[derive(Debug, Default)]
pub(crate) struct StoryIndex {
    /// Oldest `sort_time` loaded from the database; `None` until loaded.
    since: Option<i64>,
    /// Band key (truncated) → newest link of its chain in `links`.
    heads: HashMap<u32, u32, BuildHasherDefault<BandKeyHasher>>,
    /// (story id, next link) — chains of stories per band key.
    links: Vec<(u32, u32)>,
    /// Each indexed story's id and sort time, with its band keys in `keys`
    /// (BANDS apiece), so the index can drop its oldest half by itself.
    stories: Vec<(u32, i64)>,
    keys: Vec<u32>,
}

impl StoryIndex {
    /// Whether every story with `sort_time >= since` is indexed (those
    /// created since the load are added as they are created). Past
    /// [`MAX_STORIES`] the oldest half is dropped here, in memory: a cold
    /// ingest of many stories would otherwise re-read the database again and
    /// again.
    pub(crate) fn covers(&mut self, since: i64) -> bool {
        if self.since.is_some_and(|s| s <= since) {
            if self.stories.len() >= MAX_STORIES {
                self.keep_newest(MAX_STORIES / 2);
            }
            return true;
        }
        false
    }

    /// The oldest sort time loaded, if a load completed.
    #[cfg(test)]
    pub(crate) fn loaded_since(&self) -> Option<i64> {
        self.since
    }

    /// Starts a load of the stories from `since` on (at most
    /// [`LOAD_LIMIT`], newest first): forgets everything, and counts as
    /// loaded only once [`StoryIndex::loaded`] is called, so a load that
    /// fails is tried again.
    pub(crate) fn start_load(&mut self) {
        self.clear();
    }

    /// Ends a load started by [`StoryIndex::start_load`].
    pub(crate) fn loaded(&mut self, since: i64) {
        self.since = Some(since);
    }

    fn clear(&mut self) {
        // Unloaded until a load completes: a failed one is tried again.
        self.since = None;
        self.heads.clear();
        self.links.clear();
        self.stories.clear();
        self.keys.clear();
    }

    /// Drops all but the `keep` newest stories (by sort time).
    fn keep_newest(&mut self, keep: usize) {
        let mut order: Vec<usize> = (0..self.stories.len()).collect();
        order.sort_unstable_by_key(|&i| std::cmp::Reverse(self.stories[i].1));
        order.truncate(keep);
        // Oldest first, so the newest end up at the heads of their chains.
        order.reverse();
        let stories = std::mem::take(&mut self.stories);
        let keys = std::mem::take(&mut self.keys);
        self.heads.clear();
        self.links.clear();
        for i in order {
            let (story, time) = stories[i];
            self.insert(story, time, &keys[i * BANDS..(i + 1) * BANDS]);
        }
    }

    pub(crate) fn add(&mut self, story: i64, sort_time: i64, fingerprint: &Fingerprint) {
        let Ok(story) = u32::try_from(story) else {
            return;
        };
        let keys: Vec<u32> = fingerprint
            .band_keys()
            .into_iter()
            .map(|k| k as u32)
            .collect();
        if keys.len() == BANDS {
            self.insert(story, sort_time, &keys);
        }
    }

    fn insert(&mut self, story: u32, sort_time: i64, keys: &[u32]) {
        for &key in keys {
            let link = self.links.len() as u32;
            let previous = self.heads.insert(key, link).unwrap_or(END);
            self.links.push((story, previous));
        }
        self.stories.push((story, sort_time));
        self.keys.extend_from_slice(keys);
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
        index.add(1, 0, &a);
        index.add(2, 0, &c);
        assert_eq!(index.candidates(&b), vec![1]);
        assert_eq!(index.candidates(&c), vec![2]);
    }

    #[test]
    fn past_its_cap_the_index_keeps_the_newest_stories() {
        // Four texts with no word in common.
        let text = |n: usize| {
            (0..30)
                .map(|i| format!("w{n}x{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let prints: Vec<Fingerprint> = (0..4)
            .map(|n| Fingerprint::of("t", &text(n)).unwrap())
            .collect();
        let mut index = StoryIndex::default();
        // Added out of time order: stories 10 and 12 are the newest.
        for (id, time) in [(10, 300), (11, 100), (12, 400), (13, 200)] {
            index.add(id, time, &prints[(id - 10) as usize]);
        }
        index.keep_newest(2);
        assert_eq!(index.stories.len(), 2);
        assert_eq!(index.candidates(&prints[0]), vec![10]);
        assert_eq!(index.candidates(&prints[2]), vec![12]);
        assert!(index.candidates(&prints[1]).is_empty());
        assert!(index.candidates(&prints[3]).is_empty());
    }
}
