//! Entries: saving a poll's results atomically, new and changed entries.

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Matching, PollRecord, SaveCounts, Sqlite, StoreError, lock, ts};
use crate::identity::fingerprint::Fingerprint;
use crate::identity::{self, DedupSettings, Rung};
use crate::model::{FeedId, IdentifiedEntry, SourceMeta, Validators};
use crate::store::entries::*;
use crate::store::prelude::*;

/// Records what the source said about itself, its validators and a
/// successful poll.
fn update_source(
    tx: &Connection,
    id: FeedId,
    now: DateTime<Utc>,
    doc: &PolledDocument,
    next_poll: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (meta, validators) = (&doc.meta, &doc.validators);
    // The outlet's name is indexed with each of its entries: a source that
    // renames itself has them indexed again (rare; never on a first poll,
    // which has no entries yet).
    let renamed: bool = tx
        .prepare_cached(
            "SELECT config_title IS NULL AND title IS NOT ?2
                AND EXISTS (SELECT 1 FROM entries WHERE feed_id = ?1)
             FROM feeds WHERE id = ?1",
        )?
        .query_row(params![id, meta.title], |r| r.get(0))
        .optional()?
        .unwrap_or(false);
    tx.prepare_cached(
        "UPDATE feeds SET source_id = ?2, title = ?3, site_url = ?4, rights = ?5, author = ?6,
            source_updated = ?7, etag = ?8, last_modified = ?9, state = 'ok', last_status = ?10,
            last_error = NULL, failures = 0, last_polled_at = ?11, last_success_at = ?11,
            next_poll_at = ?12, parse_warnings = ?13
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        meta.id,
        meta.title,
        meta.site_url,
        meta.rights,
        meta.author,
        meta.updated.map(ts),
        validators.etag,
        validators.last_modified,
        doc.status,
        ts(now),
        ts(next_poll),
        (!doc.parse_warnings.is_empty()).then(|| doc.parse_warnings.join("\n")),
    ])?;
    if renamed {
        super::search::reindex_feed(tx, id)?;
    }
    Ok(())
}

/// A stored entry that a document's item was matched to.
struct Existing {
    id: i64,
    hash: String,
    churn_hash: Option<String>,
    canonical_link: Option<String>,
    title: String,
    updated: Option<i64>,
    changed_at: i64,
}

fn existing(r: &rusqlite::Row<'_>) -> rusqlite::Result<Existing> {
    Ok(Existing {
        id: r.get(0)?,
        hash: r.get(1)?,
        churn_hash: r.get(2)?,
        canonical_link: r.get(3)?,
        title: r.get(4)?,
        updated: r.get(5)?,
        changed_at: r.get(6)?,
    })
}

const EXISTING_COLUMNS: &str = "id, hash, churn_hash, canonical_link, title, updated, changed_at";

fn save_entries(
    tx: &Connection,
    feed_id: FeedId,
    now: DateTime<Utc>,
    entries: Vec<IdentifiedEntry>,
    settings: &DedupSettings,
    matching: &mut Matching,
) -> Result<(SaveCounts, Vec<IdentifiedEntry>), StoreError> {
    let (feed_uid, feed_url, stored_rung): (String, String, String) = tx.query_row(
        "SELECT uid, url, identity_rung FROM feeds WHERE id = ?1",
        [feed_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let stored_rung = Rung::parse(&stored_rung);
    // Keys are decided here, at the feed's own rung of the ladder, which only
    // ever moves down: a feed that once had unreliable guids is not trusted
    // with them again.
    let total = entries.len();
    let (rung, items) = identity::rekey_at(entries, stored_rung, settings.guid_tolerance);

    let mut by_key = tx.prepare_cached(&format!(
        "SELECT {EXISTING_COLUMNS} FROM entries WHERE feed_id = ?1 AND key = ?2"
    ))?;
    // The same item under another key: a guid that changes on every poll, a
    // feed moved down the ladder, or a link keyed before canonicalisation.
    let mut by_link = tx.prepare_cached(&format!(
        "SELECT {EXISTING_COLUMNS} FROM entries
         WHERE feed_id = ?1 AND title = ?3 AND (canonical_link = ?2 OR (canonical_link IS NULL AND link = ?4))
         ORDER BY id"
    ))?;
    // A feed's first poll (or one after everything was pruned) has nothing to
    // match, and most feeds have no tombstones: one query each instead of
    // lookups per entry.
    let any = |sql: &str| -> Result<bool, StoreError> {
        Ok(tx.prepare_cached(sql)?.query_row([feed_id], |r| r.get(0))?)
    };
    let has_entries = any("SELECT EXISTS (SELECT 1 FROM entries WHERE feed_id = ?1)")?;
    let has_tombstones = any("SELECT EXISTS (SELECT 1 FROM entry_tombstones WHERE feed_id = ?1)")?;
    matching.links.refresh(tx)?;
    let mut counts = SaveCounts::default();
    let mut matched = HashSet::new();
    let (mut unstable, mut buried_count) = (0usize, 0usize);
    // First every item that its key finds, so that a lookup by link in the
    // second pass never takes a row another item of this document owns.
    let mut resolved = Vec::with_capacity(items.len());
    let mut taken: HashSet<String> = if has_entries {
        items.iter().map(|i| i.key.clone()).collect()
    } else {
        HashSet::new()
    };
    for item in &items {
        let e = &item.entry;
        let canonical = item.canonical.as_deref();
        let mut key = Cow::Borrowed(item.key.as_str());
        if !has_entries {
            resolved.push((item, key, canonical, None));
            continue;
        }
        let mut found = by_key
            .query_row(params![feed_id, key], existing)
            .optional()?;
        if let Some(old) = &found
            && key.starts_with("guid:")
            && canonical.is_some()
            && old.canonical_link.is_some()
            && old.canonical_link.as_deref() != canonical
            && old.title != e.title
        {
            // A guid reused for another item (a feed numbering its slots):
            // this item is new, keyed one rung down.
            unstable += 1;
            key = Cow::Owned(format!("link:{}", canonical.unwrap_or_default()));
            if !taken.insert(key.to_string()) {
                key = Cow::Owned(identity::hash_key(e));
                taken.insert(key.to_string());
            }
            found = by_key
                .query_row(params![feed_id, key], existing)
                .optional()?;
        }
        if let Some(old) = &found {
            matched.insert(old.id);
        }
        resolved.push((item, key, canonical, found));
    }
    for (item, key, canonical, mut found) in resolved {
        let e = &item.entry;
        if found.is_none()
            && has_entries
            && let Some(link) = canonical
        {
            let raw = e.link.as_deref().unwrap_or_default();
            let mut rows = by_link.query(params![feed_id, link, e.title, raw])?;
            while let Some(row) = rows.next()? {
                let candidate = existing(row)?;
                if matched.insert(candidate.id) {
                    if key.starts_with("guid:") {
                        unstable += 1;
                    }
                    found = Some(candidate);
                    break;
                }
            }
        }
        match found {
            Some(old) => {
                if let Some(link) = canonical
                    && old.canonical_link.as_deref() != Some(link)
                {
                    matching.links.add(link);
                }
                if update_entry(tx, &old, item, canonical, now, settings)? {
                    counts.updated += 1;
                }
            }
            None => {
                // Pruned by retention: it stays gone while the feed carries
                // it, also under another guid (same canonical link).
                if has_tombstones
                    && super::retention::is_tombstoned(tx, feed_id, &key, canonical, now)?
                {
                    buried_count += 1;
                    continue;
                }
                let uid = identity::new_entry_uid(&feed_uid, &key, now);
                let id = insert_entry(
                    tx, feed_id, &key, &uid, item, canonical, now, settings, matching,
                )?;
                matched.insert(id);
                counts.new += 1;
            }
        }
    }
    if buried_count > 0 {
        tracing::debug!(feed = %feed_url, entries = buried_count, "removed entries shown again by the source stay removed");
    }
    if let Some(rung) = crate::store::entries::settle_rung(
        &feed_url,
        stored_rung,
        rung,
        unstable,
        total,
        settings.guid_tolerance,
    ) {
        tx.execute(
            "UPDATE feeds SET identity_rung = ?2 WHERE id = ?1",
            params![feed_id, rung.as_str()],
        )?;
    }
    // Handed back, to be freed off the writer thread.
    Ok((counts, items))
}

#[allow(clippy::too_many_arguments)]
fn insert_entry(
    tx: &Connection,
    feed_id: FeedId,
    key: &str,
    uid: &str,
    item: &IdentifiedEntry,
    canonical: Option<&str>,
    now: DateTime<Utc>,
    settings: &DedupSettings,
    matching: &mut Matching,
) -> Result<i64, StoreError> {
    let e = &item.entry;
    let now_ts = ts(now);
    // Order by the source's date, but a source may not date an entry after we
    // first saw it (that would pin it to the top of the river), nor long before.
    let floor = ts(now - settings.max_date_skew);
    let sort_time = e
        .published
        .or(e.updated)
        .map_or(now_ts, |d| ts(d).clamp(floor, now_ts));
    // Every story this entry could match: its sort time is at least `floor`,
    // and matches lie within the window of it.
    super::story_index::ensure_loaded(
        &mut matching.stories,
        tx,
        floor - settings.matching.window.num_seconds(),
    )?;
    // The story is decided first, so the entry is written once, with it.
    let story = super::stories::assign_story(
        tx,
        feed_id,
        uid,
        &e.title,
        canonical.filter(|_| item.article_link),
        item.fingerprint.as_ref(),
        sort_time,
        now,
        &settings.matching,
        matching,
    )?;
    if let Some(link) = canonical {
        matching.links.add(link);
    }
    tx.prepare_cached(
        "INSERT INTO entries (feed_id, key, uid, title, link, author, summary, content, rights,
            published, updated, first_seen, changed_at, sort_time, hash, canonical_link,
            fingerprint, churn_hash, last_seen, story_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14, ?15, ?16, ?17, ?12, ?18)",
    )?
    .execute(params![
        feed_id,
        key,
        uid,
        e.title,
        e.link,
        e.author,
        e.summary,
        e.content,
        e.rights,
        e.published.map(ts),
        e.updated.map(ts),
        now_ts,
        sort_time,
        item.hash,
        canonical,
        item.fingerprint.as_ref().map(Fingerprint::to_bytes),
        item.churn,
        story,
    ])?;
    let id = tx.last_insert_rowid();
    super::search::index_later(tx, id)?;
    Ok(id)
}

/// Stores what changed in a known entry. The published date is the one first
/// stored (feeds that restamp every item with the current time would otherwise
/// move it on every poll). Returns whether it counts as updated:
/// a change in words counts at once; a change in digits alone (a timestamp
/// baked into the item) at most once per churn cooldown; anything else
/// (markup, dates, a first poll after the upgrade that introduced churn
/// hashes) is stored silently.
fn update_entry(
    tx: &Connection,
    old: &Existing,
    item: &IdentifiedEntry,
    canonical: Option<&str>,
    now: DateTime<Utc>,
    settings: &DedupSettings,
) -> Result<bool, StoreError> {
    let now_ts = ts(now);
    let e = &item.entry;
    let churn = item.churn.clone();
    // Hashes stored before they were XXH3 (SHA-256) are compared with this
    // item's hashes in that format, once; the new ones are stored with it.
    let legacy = (!identity::is_current_hash(&old.hash))
        .then(|| identity::legacy_hashes(e, item.canonical.as_deref()));
    let (hash, churn_now) = legacy
        .as_ref()
        .map_or((&item.hash, &item.churn), |(h, c)| (h, c));
    let counts = match &old.churn_hash {
        _ if old.hash == *hash => false,
        None => false,
        Some(previous) if previous != churn_now => true,
        Some(_) => now_ts - old.changed_at >= settings.churn_cooldown.num_seconds(),
    };
    if old.hash == item.hash && old.churn_hash.is_some() {
        tx.prepare_cached("UPDATE entries SET last_seen = ?2 WHERE id = ?1")?
            .execute(params![old.id, now_ts])?;
        return Ok(false);
    }
    // The updated time advances: to the source's, if it moved forward (but not
    // past now), else to now. A silent change keeps the old one.
    let updated = if counts {
        Some(
            e.updated
                .map(ts)
                .filter(|u| *u <= now_ts && old.updated.is_none_or(|o| *u > o))
                .unwrap_or(now_ts),
        )
    } else {
        old.updated
    };
    let changed_at = if counts { now_ts } else { old.changed_at };
    tx.prepare_cached(
        "UPDATE entries SET title = ?2, link = ?3, author = ?4, summary = ?5, content = ?6,
            rights = ?7, published = COALESCE(published, ?8), updated = ?9, changed_at = ?10, hash = ?11,
            canonical_link = ?12, fingerprint = ?13, churn_hash = ?14, last_seen = ?15
         WHERE id = ?1",
    )?
    .execute(params![
        old.id,
        e.title,
        e.link,
        e.author,
        e.summary,
        e.content,
        e.rights,
        e.published.map(ts),
        updated,
        changed_at,
        item.hash,
        canonical,
        item.fingerprint.as_ref().map(Fingerprint::to_bytes),
        churn,
        now_ts,
    ])?;
    super::search::reindex_later(tx, old.id)?;
    Ok(counts)
}

impl Entries for Sqlite {
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
    ) -> Result<SaveCounts, StoreError> {
        let settings = self.dedup_settings();
        let doc = PolledDocument::of_poll(status, meta, validators, entries);
        let matching = self.matching.clone();
        let (counts, _spent) = self.write(move |tx| {
            update_source(tx, id, now, &doc, next_poll)?;
            let mut matching = matching.lock().unwrap_or_else(|p| p.into_inner());
            save_entries(tx, id, now, doc.entries, &settings, &mut matching)
        })?;
        Ok(counts)
    }

    fn save_document(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        doc: PolledDocument,
        record: PollRecord,
    ) -> Result<SaveCounts, StoreError> {
        let settings = self.dedup_settings();
        let matching = self.matching.clone();
        let (counts, spent) = self.write(move |tx| {
            update_source(tx, id, now, &doc, record.next_poll)?;
            let saved = {
                let mut matching = matching.lock().unwrap_or_else(|p| p.into_inner());
                save_entries(tx, id, now, doc.entries, &settings, &mut matching)?
            };
            super::fetch_state::apply_record(tx, id, now, &record, saved.0)?;
            Ok(saved)
        })?;
        // Freed here rather than on the writer thread, the one serial stage
        // of ingest (dropping a document's strings was 6 % of its time).
        drop(spent);
        Ok(counts)
    }

    fn entry_count(&self) -> Result<u64, StoreError> {
        let count: i64 =
            lock(&self.reader).query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))?;
        Ok(count.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Entries, Feeds, Retention, Stories};
    use std::time::Duration;

    use crate::model::ParsedEntry;

    use chrono::TimeZone;

    use super::*;
    use crate::store::FeedSpec;

    fn store() -> (tempfile::TempDir, Sqlite, FeedId) {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("r.db")).unwrap();
        let spec = FeedSpec {
            url: "http://a.example/feed".into(),
            title: None,
            interval: Duration::from_secs(600),
            tags: vec![],
            fixed_interval: false,
        };
        store.sync_feeds(&[spec], Utc::now()).unwrap();
        let id = store.active_feeds().unwrap()[0].id;
        (dir, store, id)
    }

    fn entry(guid: &str, n: u32) -> ParsedEntry {
        ParsedEntry {
            guid: Some(guid.into()),
            title: format!("Story {n}"),
            link: Some(format!("http://a.example/{n}")),
            summary: Some(format!("<p>Text of story number {n}.</p>")),
            ..Default::default()
        }
    }

    fn save(
        store: &Sqlite,
        id: FeedId,
        now: DateTime<Utc>,
        entries: Vec<ParsedEntry>,
    ) -> SaveCounts {
        store
            .save_poll(
                id,
                now,
                200,
                &SourceMeta::default(),
                &Validators::default(),
                &identity::identify(entries),
                now,
            )
            .unwrap()
    }

    fn rung(store: &Sqlite, id: FeedId) -> String {
        lock(&store.reader)
            .query_row("SELECT identity_rung FROM feeds WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap()
    }

    #[test]
    fn guids_that_change_every_poll_do_not_duplicate_and_move_the_feed_to_links() {
        let (_dir, store, id) = store();
        let now = Utc::now();
        let poll = |round: u32| -> Vec<ParsedEntry> {
            (0..10)
                .map(|n| entry(&format!("random-{round}-{n}"), n))
                .collect()
        };
        assert_eq!(save(&store, id, now, poll(1)).new, 10);
        assert_eq!(rung(&store, id), "guid");
        assert_eq!(save(&store, id, now, poll(2)), SaveCounts::default());
        assert_eq!(rung(&store, id), "link");
        assert_eq!(save(&store, id, now, poll(3)), SaveCounts::default());
        assert_eq!(store.entry_count().unwrap(), 10);
    }

    #[test]
    fn a_guid_reused_for_another_item_is_a_new_entry() {
        let (_dir, store, id) = store();
        let now = Utc::now();
        save(&store, id, now, vec![entry("slot-1", 1)]);
        let counts = save(&store, id, now, vec![entry("slot-1", 2)]);
        assert_eq!(counts.new, 1);
        let titles: Vec<String> = store
            .stories(10)
            .unwrap()
            .into_iter()
            .map(|s| s.title)
            .collect();
        assert_eq!(titles.len(), 2, "{titles:?}");
    }

    #[test]
    fn pruned_entries_leave_tombstones_and_do_not_come_back() {
        let (_dir, store, id) = store();
        let now = Utc::now();
        let old = now - chrono::Duration::days(10);
        let mut stale = entry("old", 1);
        stale.published = Some(old);
        save(&store, id, now, vec![stale.clone(), entry("new", 2)]);
        assert_eq!(store.story_count().unwrap(), 2);
        let policy = crate::store::RetentionPolicy {
            max_age: Some(Duration::from_secs(5 * 86400)),
            max_entries: None,
            keep_tombstones: Duration::from_secs(90 * 86400),
        };
        let removed = store.prune(policy, now).unwrap();
        assert_eq!(removed.entries, 1);
        assert_eq!(store.tombstone_count().unwrap(), 1);
        assert_eq!(store.story_count().unwrap(), 1);
        // The source still shows it: it stays removed, also under another guid.
        let counts = save(&store, id, now, vec![stale.clone(), entry("new", 2)]);
        assert_eq!(counts, SaveCounts::default());
        let mut regu = stale;
        regu.guid = Some("old-2".into());
        assert_eq!(save(&store, id, now, vec![regu]).new, 0);
        assert_eq!(store.entry_count().unwrap(), 1);
    }

    #[test]
    fn pruning_one_copy_of_a_shared_story_keeps_the_story() {
        let (_dir, store, a) = store();
        let now = Utc::now();
        let spec = |url: &str| FeedSpec {
            url: url.into(),
            title: None,
            interval: Duration::from_secs(600),
            tags: vec![],
            fixed_interval: false,
        };
        store
            .sync_feeds(
                &[spec("http://a.example/feed"), spec("http://b.example/feed")],
                now,
            )
            .unwrap();
        let b = store.active_feeds().unwrap()[1].id;
        // The same article (same link) in both feeds; A's copy is old.
        let mut old_copy = entry("a-1", 1);
        old_copy.published = Some(now - chrono::Duration::days(10));
        save(&store, a, now, vec![old_copy, entry("a-2", 2)]);
        save(&store, b, now, vec![entry("b-1", 1)]);
        assert_eq!(store.story_count().unwrap(), 2);
        let policy = crate::store::RetentionPolicy {
            max_age: Some(Duration::from_secs(5 * 86400)),
            max_entries: None,
            keep_tombstones: Duration::from_secs(90 * 86400),
        };
        assert_eq!(store.prune(policy, now).unwrap().entries, 1);
        // B's copy still carries the story.
        assert_eq!(store.story_count().unwrap(), 2);
        assert_eq!(store.entry_count().unwrap(), 2);
    }

    #[test]
    fn look_alike_items_of_one_feed_stay_separate_stories() {
        let (_dir, store, id) = store();
        let now = Utc::now();
        let briefing = "<p>Good morning. Here is your daily briefing with the stories that matter today, the weather for the region and the latest from the markets. Read the full briefing on our site.</p>";
        let day = |n: u32| ParsedEntry {
            summary: Some(briefing.into()),
            ..entry(&format!("day-{n}"), n)
        };
        save(&store, id, now, vec![day(1), day(2)]);
        assert_eq!(store.story_count().unwrap(), 2);
        assert_eq!(store.stories(10).unwrap().len(), 2);
    }

    #[test]
    fn restamping_every_item_with_the_poll_time_changes_nothing() {
        let (_dir, store, id) = store();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
        let stamped = |at: DateTime<Utc>| ParsedEntry {
            published: Some(at),
            ..entry("a", 1)
        };
        save(&store, id, t0, vec![stamped(t0)]);
        let first = store.stories(1).unwrap().remove(0);
        for minutes in [30, 60, 90] {
            let at = t0 + chrono::Duration::minutes(minutes);
            assert_eq!(
                save(&store, id, at, vec![stamped(at)]),
                SaveCounts::default()
            );
        }
        let later = store.stories(1).unwrap().remove(0);
        assert_eq!(
            (later.published, later.updated),
            (first.published, first.updated)
        );
    }

    #[test]
    fn hashes_stored_before_xxh3_are_compared_in_their_format_once() {
        let (_dir, store, id) = store();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
        // As an older version stored them: SHA-256, 64 hex digits.
        let store_legacy = |e: &ParsedEntry| {
            let canonical = identity::canonical_link(e);
            let (hash, churn) = identity::legacy_hashes(e, canonical.as_deref());
            store
                .lock_writer()
                .execute(
                    "UPDATE entries SET hash = ?1, churn_hash = ?2 WHERE key = ?3",
                    params![hash, churn, identity::entry_key(e)],
                )
                .unwrap();
        };
        let stored_hash = |key: &str| -> String {
            lock(&store.reader)
                .query_row("SELECT hash FROM entries WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .unwrap()
        };
        let (a, b) = (entry("a", 1), entry("b", 2));
        save(&store, id, t0, vec![a.clone(), b.clone()]);
        store_legacy(&a);
        store_legacy(&b);
        // Across the upgrade, `a` is unchanged and `b` was edited.
        let t1 = t0 + chrono::Duration::hours(1);
        let edited = ParsedEntry {
            summary: Some("<p>A different text altogether.</p>".into()),
            ..b.clone()
        };
        let counts = save(&store, id, t1, vec![a.clone(), edited.clone()]);
        assert_eq!(counts.updated, 1, "the edit made across the upgrade counts");
        assert!(identity::is_current_hash(&stored_hash("guid:a")));
        assert!(identity::is_current_hash(&stored_hash("guid:b")));
        // From then on the new hashes are compared: nothing changed.
        let t2 = t1 + chrono::Duration::hours(1);
        assert_eq!(save(&store, id, t2, vec![a, edited]), SaveCounts::default());
    }

    #[test]
    fn an_entry_that_vanishes_and_returns_is_not_new() {
        let (_dir, store, id) = store();
        let now = Utc::now();
        save(&store, id, now, vec![entry("a", 1), entry("b", 2)]);
        save(&store, id, now, vec![entry("b", 2)]);
        let back = save(&store, id, now, vec![entry("a", 1), entry("b", 2)]);
        assert_eq!(back, SaveCounts::default());
        assert_eq!(store.entry_count().unwrap(), 2);
    }

    #[test]
    fn future_and_ancient_dates_are_clamped_for_ordering() {
        let (_dir, store, id) = store();
        let now = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
        let mut future = entry("future", 1);
        future.published = Some(now + chrono::Duration::days(365));
        let mut ancient = entry("ancient", 2);
        ancient.published = Some(Utc.with_ymd_and_hms(1970, 1, 2, 0, 0, 0).unwrap());
        let mut normal = entry("normal", 3);
        normal.published = Some(now - chrono::Duration::hours(2));
        save(&store, id, now, vec![future, ancient, normal]);
        let sort_times: Vec<(String, i64)> = {
            let conn = lock(&store.reader);
            let mut stmt = conn
                .prepare("SELECT title, sort_time FROM entries ORDER BY title")
                .unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(
            sort_times,
            vec![
                ("Story 1".to_string(), ts(now)),
                ("Story 2".to_string(), ts(now - chrono::Duration::days(30))),
                ("Story 3".to_string(), ts(now - chrono::Duration::hours(2))),
            ]
        );
        // The published date itself is kept as the source gave it.
        let stories = store.stories(10).unwrap();
        assert_eq!(stories[0].title, "Story 1");
        assert!(stories[0].published.unwrap() > now);
    }
}
