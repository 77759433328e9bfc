//! Which canonical links the database may hold: a Bloom filter over
//! `entries.canonical_link`, so that storing an entry whose link no other
//! entry has (nearly every entry of a cold ingest) skips the cross-feed
//! lookup by link in `stories::assign_story`. That lookup is a descent of a
//! random-order index, and skipping it made a 100,000-entry ingest about a
//! tenth faster. The filter only ever answers "no" for a link that is truly
//! absent; a "maybe" is checked in the database as before.

use fastbloom::BloomFilter;
use rusqlite::Connection;

use super::StoreError;

/// Share of absent links the filter lets through to the database.
const FALSE_POSITIVES: f64 = 0.01;
/// Links a new filter is sized for, at least (about 80 KiB).
const MIN_CAPACITY: usize = 1 << 16;
/// Reading this many stored links, as building the filter does, costs about
/// as much as one lookup by link; the filter is built once the lookups made
/// without it, times this, reach the entries stored. A cron `poll --once` that
/// stores a few new entries into a large database never builds it; a cold
/// ingest builds it at once, and again each time it fills up.
const SCANNED_PER_LOOKUP: i64 = 8;

/// Built from the database once it pays off, then kept up to date by the
/// writer (every link it stores is added). Rebuilt, twice as large, when it
/// fills up; dropped when another connection committed to the database (a
/// cron `poll --once` beside the daemon), which `PRAGMA data_version` tells.
/// Deleted entries leave their links in the filter until it is rebuilt: a
/// "maybe" costs a lookup.
#[derive(Debug, Default)]
pub(crate) struct LinkFilter {
    filter: Option<BloomFilter>,
    capacity: usize,
    count: usize,
    /// Lookups answered "maybe" for want of a filter since it was dropped.
    lookups: i64,
    /// `PRAGMA data_version` of the writer connection when last checked.
    version: Option<i64>,
}

impl LinkFilter {
    /// Brings the filter up to date before a document is stored. `tx` is
    /// the writer connection, inside its transaction (no other connection
    /// can commit until it ends).
    pub(crate) fn refresh(&mut self, tx: &Connection) -> Result<(), StoreError> {
        let version: i64 = tx
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if self.version.is_some_and(|seen| seen != version) {
            self.filter = None;
            self.lookups = 0;
        }
        self.version = Some(version);
        let rebuild = match &self.filter {
            Some(_) => self.count > self.capacity,
            None => self.lookups * SCANNED_PER_LOOKUP >= stored_at_most(tx)?,
        };
        if rebuild {
            self.rebuild(tx)?;
        }
        Ok(())
    }

    /// Whether some stored entry may have canonical link `link`; false only
    /// if none has (as of the last [`LinkFilter::refresh`] and the links
    /// added since). Without a filter, always true.
    pub(crate) fn may_hold(&mut self, link: &str) -> bool {
        match &self.filter {
            Some(filter) => filter.contains(link),
            None => {
                self.lookups += 1;
                true
            }
        }
    }

    /// Records that an entry with canonical link `link` is being stored.
    pub(crate) fn add(&mut self, link: &str) {
        if let Some(filter) = &mut self.filter {
            filter.insert(link);
            self.count += 1;
        }
    }

    fn rebuild(&mut self, tx: &Connection) -> Result<(), StoreError> {
        // Unusable until rebuilt: a failed rebuild answers "maybe" to all.
        self.filter = None;
        let stored = stored_at_most(tx)?;
        let capacity = (usize::try_from(stored).unwrap_or(0) * 2).max(MIN_CAPACITY);
        let mut filter = BloomFilter::with_false_pos(FALSE_POSITIVES).expected_items(capacity);
        let mut count = 0;
        let mut links =
            tx.prepare("SELECT canonical_link FROM entries WHERE canonical_link IS NOT NULL")?;
        let mut rows = links.query([])?;
        while let Some(row) = rows.next()? {
            let link: String = row.get(0)?;
            filter.insert(link.as_str());
            count += 1;
        }
        self.filter = Some(filter);
        self.capacity = capacity;
        self.count = count;
        Ok(())
    }
}

/// At least as many as the stored entries, read from the ends of the rowid
/// index instead of counted (entry ids only grow; pruning leaves gaps, which
/// only make this larger).
fn stored_at_most(tx: &Connection) -> Result<i64, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT COALESCE((SELECT MAX(id) FROM entries) - (SELECT MIN(id) FROM entries) + 1, 0)",
        )?
        .query_row([], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::store::sqlite::MIGRATIONS;

    /// `conn` with the schema and one feed (id 1) to store entries of.
    fn with_a_feed(mut conn: Connection) -> Connection {
        MIGRATIONS.as_ref().unwrap().to_latest(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO feeds (id, url, uid, interval_secs, next_poll_at, created_at)
             VALUES (1, 'http://a.example/feed', 'urn:feed:a', 600, 0, 0)",
            [],
        )
        .unwrap();
        conn
    }

    fn database() -> Connection {
        with_a_feed(Connection::open_in_memory().unwrap())
    }

    fn store_link(conn: &Connection, n: usize, link: &str) {
        conn.execute(
            "INSERT INTO entries (feed_id, key, uid, title, first_seen, changed_at, sort_time,
                hash, canonical_link)
             VALUES (1, ?1, ?1, 't', 0, 0, 0, 'h', ?2)",
            rusqlite::params![format!("k{n}"), link],
        )
        .unwrap();
    }

    #[test]
    fn stored_and_added_links_are_always_maybe_and_most_others_are_not() {
        let conn = database();
        for n in 0..500 {
            store_link(&conn, n, &format!("https://a.example/stored/{n}"));
        }
        let mut filter = LinkFilter::default();
        // Without a filter (never refreshed, or not yet worth building),
        // every link is a "maybe".
        for n in 0..100 {
            assert!(filter.may_hold(&format!("https://b.example/early/{n}")));
        }
        filter.refresh(&conn).unwrap();
        assert!(
            filter.filter.is_some(),
            "100 lookups pay for reading 500 links"
        );
        for n in 0..500 {
            assert!(filter.may_hold(&format!("https://a.example/stored/{n}")));
        }
        filter.add("https://a.example/added");
        assert!(filter.may_hold("https://a.example/added"));
        let passed = (0..10_000)
            .filter(|n| filter.may_hold(&format!("https://b.example/absent/{n}")))
            .count();
        assert!(passed < 300, "{passed} of 10,000 absent links let through");
    }

    #[test]
    fn a_few_new_entries_into_a_large_database_do_not_build_it() {
        let conn = database();
        for n in 0..1_000 {
            store_link(&conn, n, &format!("https://a.example/stored/{n}"));
        }
        let mut filter = LinkFilter::default();
        // A cron poll storing ten new entries: ten lookups, no filter.
        for n in 0..10 {
            filter.refresh(&conn).unwrap();
            assert!(filter.may_hold(&format!("https://b.example/new/{n}")));
        }
        assert!(filter.filter.is_none());
        // Enough lookups and it pays to read the stored links once.
        for n in 0..200 {
            filter.may_hold(&format!("https://b.example/more/{n}"));
        }
        filter.refresh(&conn).unwrap();
        assert!(filter.filter.is_some());
        assert!(filter.may_hold("https://a.example/stored/999"));
    }

    #[test]
    fn it_grows_past_its_capacity_without_losing_a_link() {
        let conn = database();
        let mut filter = LinkFilter::default();
        let total = MIN_CAPACITY + 5_000;
        for n in 0..total {
            let link = format!("https://a.example/{n}");
            // As the writer does for each document (of one entry here):
            // refresh, ask, then store the entry and add its link.
            filter.refresh(&conn).unwrap();
            filter.may_hold(&link);
            store_link(&conn, n, &link);
            filter.add(&link);
        }
        filter.refresh(&conn).unwrap();
        assert!(filter.capacity > MIN_CAPACITY, "rebuilt larger once full");
        for n in (0..total).step_by(97) {
            assert!(filter.may_hold(&format!("https://a.example/{n}")));
        }
    }

    #[test]
    fn links_another_connection_stored_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.db");
        let conn = with_a_feed(Connection::open(&path).unwrap());
        let mut filter = LinkFilter::default();
        let link = "https://a.example/from-cron";
        filter.refresh(&conn).unwrap();
        assert!(!filter.may_hold(link));
        // Another process (a cron poll beside the daemon) stores it.
        let other = Connection::open(&path).unwrap();
        store_link(&other, 1, link);
        filter.refresh(&conn).unwrap();
        assert!(filter.may_hold(link));
    }
}
