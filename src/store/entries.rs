//! Entries: saving a poll's results atomically, new and changed entries.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};

use super::{SaveCounts, Store, StoreError, lock, ts};
use crate::identity::fingerprint::Fingerprint;
use crate::identity::{self, DedupSettings, Rung};
use crate::model::{FeedId, IdentifiedEntry, ParsedEntry, SourceMeta, Validators};

impl Store {
    /// Stores one successful poll atomically: the source's metadata, its
    /// validators, new and changed entries, and the next poll time.
    #[allow(clippy::too_many_arguments)]
    pub fn save_poll(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        status: u16,
        meta: &SourceMeta,
        validators: &Validators,
        entries: &[IdentifiedEntry],
        next_poll: DateTime<Utc>,
    ) -> Result<SaveCounts, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE feeds SET source_id = ?2, title = ?3, site_url = ?4, rights = ?5, author = ?6,
                source_updated = ?7, etag = ?8, last_modified = ?9, state = 'ok', last_status = ?10,
                last_error = NULL, failures = 0, last_polled_at = ?11, last_success_at = ?11,
                next_poll_at = ?12
             WHERE id = ?1",
            params![
                id,
                meta.id,
                meta.title,
                meta.site_url,
                meta.rights,
                meta.author,
                meta.updated.map(ts),
                validators.etag,
                validators.last_modified,
                status,
                ts(now),
                ts(next_poll)
            ],
        )?;
        let settings = self.dedup_settings();
        let counts = save_entries(&tx, id, now, entries, &settings)?;
        tx.commit()?;
        Ok(counts)
    }

    /// Number of stored entries.
    pub fn entry_count(&self) -> Result<u64, StoreError> {
        let count: i64 =
            lock(&self.reader).query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))?;
        Ok(count.max(0) as u64)
    }
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

/// The text a fingerprint is taken of: the fuller of content and summary.
pub(crate) fn body_of(e: &ParsedEntry) -> &str {
    e.content.as_deref().or(e.summary.as_deref()).unwrap_or("")
}

fn save_entries(
    tx: &Transaction<'_>,
    feed_id: FeedId,
    now: DateTime<Utc>,
    entries: &[IdentifiedEntry],
    settings: &DedupSettings,
) -> Result<SaveCounts, StoreError> {
    let (feed_uid, feed_url, stored_rung): (String, String, String) = tx.query_row(
        "SELECT uid, url, identity_rung FROM feeds WHERE id = ?1",
        [feed_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let stored_rung = Rung::parse(&stored_rung);
    // Keys are decided here, at the feed's own rung of the ladder, which only
    // ever moves down: a feed that once had unreliable guids is not trusted
    // with them again.
    let parsed: Vec<ParsedEntry> = entries.iter().map(|i| i.entry.clone()).collect();
    let total = parsed.len();
    let (mut rung, items) = identity::identify_at(parsed, stored_rung, settings.guid_tolerance);

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
    let mut buried = tx.prepare_cached(
        "SELECT 1 FROM tombstones
         WHERE feed_id = ?1 AND (key = ?2 OR (?3 IS NOT NULL AND canonical_link = ?3))",
    )?;
    let mut counts = SaveCounts::default();
    let mut matched = HashSet::new();
    let (mut unstable, mut buried_count) = (0usize, 0usize);
    // First every item that its key finds, so that a lookup by link in the
    // second pass never takes a row another item of this document owns.
    let mut resolved = Vec::with_capacity(items.len());
    for item in &items {
        let e = &item.entry;
        let canonical = e.link.as_deref().map(identity::canonical_url);
        let mut key = item.key.clone();
        let mut found = by_key
            .query_row(params![feed_id, key], existing)
            .optional()?;
        if let Some(old) = &found
            && key.starts_with("guid:")
            && canonical.is_some()
            && old.canonical_link.is_some()
            && old.canonical_link != canonical
            && old.title != e.title
        {
            // A guid reused for another item (a feed numbering its slots):
            // this item is new, keyed one rung down.
            unstable += 1;
            key = format!("link:{}", canonical.as_deref().unwrap_or_default());
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
            && let Some(link) = &canonical
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
                if update_entry(tx, &old, item, canonical.as_deref(), now, settings)? {
                    counts.updated += 1;
                }
            }
            None => {
                if buried.exists(params![feed_id, key, canonical])? {
                    buried_count += 1;
                    continue;
                }
                let uid = identity::entry_uid(&feed_uid, &key);
                let id = insert_entry(
                    tx,
                    feed_id,
                    &key,
                    &uid,
                    item,
                    canonical.as_deref(),
                    now,
                    settings,
                )?;
                matched.insert(id);
                counts.new += 1;
            }
        }
    }
    if buried_count > 0 {
        tracing::debug!(feed = %feed_url, entries = buried_count, "removed entries shown again by the source stay removed");
    }
    if rung == Rung::Guid
        && unstable > 0
        && unstable as f64 > total as f64 * settings.guid_tolerance
    {
        rung = Rung::Link;
        tracing::warn!(feed = %feed_url, unstable, total, "this feed's guids change or are reused between polls; its entries are keyed by link from now on");
    }
    if rung != stored_rung {
        if rung != Rung::Link || unstable == 0 {
            tracing::warn!(feed = %feed_url, from = stored_rung.as_str(), to = rung.as_str(), "this feed's entry ids are missing or repeated; it moves down the identity ladder");
        }
        tx.execute(
            "UPDATE feeds SET identity_rung = ?2 WHERE id = ?1",
            params![feed_id, rung.as_str()],
        )?;
    }
    Ok(counts)
}

#[allow(clippy::too_many_arguments)]
fn insert_entry(
    tx: &Transaction<'_>,
    feed_id: FeedId,
    key: &str,
    uid: &str,
    item: &IdentifiedEntry,
    canonical: Option<&str>,
    now: DateTime<Utc>,
    settings: &DedupSettings,
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
    let fingerprint = Fingerprint::of(&e.title, body_of(e));
    tx.prepare_cached(
        "INSERT INTO entries (feed_id, key, uid, title, link, author, summary, content, rights,
            published, updated, first_seen, changed_at, sort_time, hash, canonical_link,
            fingerprint, churn_hash, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14, ?15, ?16, ?17, ?12)",
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
        fingerprint.as_ref().map(Fingerprint::to_bytes),
        identity::churn_hash(e),
    ])?;
    let id = tx.last_insert_rowid();
    super::stories::assign_story(
        tx,
        id,
        feed_id,
        uid,
        canonical,
        fingerprint.as_ref(),
        sort_time,
        now,
        &settings.matching,
    )?;
    Ok(id)
}

/// Stores what changed in a known entry. Returns whether it counts as updated:
/// a change in words counts at once; a change in digits alone (a timestamp
/// baked into the item) at most once per churn cooldown; anything else
/// (markup, dates, a first poll after the upgrade that introduced churn
/// hashes) is stored silently.
fn update_entry(
    tx: &Transaction<'_>,
    old: &Existing,
    item: &IdentifiedEntry,
    canonical: Option<&str>,
    now: DateTime<Utc>,
    settings: &DedupSettings,
) -> Result<bool, StoreError> {
    let now_ts = ts(now);
    let e = &item.entry;
    let churn = identity::churn_hash(e);
    let counts = match &old.churn_hash {
        _ if old.hash == item.hash => false,
        None => false,
        Some(previous) if *previous != churn => true,
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
    let fingerprint = Fingerprint::of(&e.title, body_of(e));
    tx.prepare_cached(
        "UPDATE entries SET title = ?2, link = ?3, author = ?4, summary = ?5, content = ?6,
            rights = ?7, published = ?8, updated = ?9, changed_at = ?10, hash = ?11,
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
        fingerprint.as_ref().map(Fingerprint::to_bytes),
        churn,
        now_ts,
    ])?;
    Ok(counts)
}
