//! How many fetched documents are parsed and identified at once.
//!
//! Parsing, keying, hashing and fingerprinting are CPU work on blocking
//! threads, while the store's writer thread, the one serial stage of ingest,
//! saves what they produce. With every fetched document parsing at once (up
//! to `2 × concurrency` of them), the writer was one runnable thread among
//! dozens and got a share of a core to match; the parsers then filled the
//! queue in front of it and sat waiting, so on two cores about a fifth of a
//! cold ingest's CPU time went idle. One document per core keeps the cores
//! busy without crowding the writer out (2,000 × 50 cold ingest: 8–12 %
//! faster; see `bench/notes.md`).

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Slots for parsing documents, shared by every poll of a [`super::Poller`].
#[derive(Debug, Clone)]
pub struct ParseSlots {
    slots: Arc<Semaphore>,
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    busy: AtomicUsize,
    most: AtomicUsize,
    parsed: AtomicU64,
}

impl ParseSlots {
    /// At most `slots` documents at once (at least one).
    pub fn new(slots: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            counts: Arc::default(),
        }
    }

    /// One slot per core this process may use.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, NonZeroUsize::get))
    }

    /// Waits for a free slot; the slot is free again when the returned
    /// guard is dropped (on the blocking thread, once parsing is done).
    pub async fn enter(&self) -> ParseSlot {
        // The semaphore is never closed; were it, parsing would go unlimited
        // rather than stop.
        let permit = self.slots.clone().acquire_owned().await.ok();
        let busy = self.counts.busy.fetch_add(1, Ordering::AcqRel) + 1;
        self.counts.most.fetch_max(busy, Ordering::AcqRel);
        self.counts.parsed.fetch_add(1, Ordering::Relaxed);
        ParseSlot {
            _permit: permit,
            counts: self.counts.clone(),
        }
    }

    /// The most documents that were ever being parsed at once.
    pub fn most_at_once(&self) -> usize {
        self.counts.most.load(Ordering::Acquire)
    }

    /// Documents that have entered a slot.
    pub fn entered(&self) -> u64 {
        self.counts.parsed.load(Ordering::Relaxed)
    }
}

impl Default for ParseSlots {
    fn default() -> Self {
        Self::per_core()
    }
}

/// A document's turn to be parsed; see [`ParseSlots::enter`].
#[derive(Debug)]
pub struct ParseSlot {
    _permit: Option<OwnedSemaphorePermit>,
    counts: Arc<Counts>,
}

impl Drop for ParseSlot {
    fn drop(&mut self) {
        self.counts.busy.fetch_sub(1, Ordering::AcqRel);
    }
}
