//! Entries and stories on PostgreSQL: saving a poll's results in one
//! transaction, new and changed entries, and the story each new entry joins.
//!
//! Several daemons: story matching reads what is in the database (entries'
//! canonical links; for near-duplicates, each daemon's story index brought
//! up to date from the stories table first, see `StoryCache`), never one
//! process's memory alone, and the step from "which story?" to "insert it" holds a
//! transaction-level advisory lock, so the same wire story arriving through
//! two daemons at once still becomes one story. The lock is taken only by a
//! poll that stores a new entry, and held until its commit.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::cached;
use super::{Postgres, Tx, get};
use crate::identity::fingerprint::{Candidate, Fingerprint, same_story};
use crate::identity::{self, DedupSettings, Rung};
use crate::model::{FeedId, IdentifiedEntry, SourceMeta, Validators};
use crate::store::entries::{Entries, PolledDocument};
use crate::store::search::body_text;
use crate::store::story_index::{LOAD_LIMIT, StoryIndex};
use crate::store::{
    FeedRank, PageStart, PollRecord, Publishing, SaveCounts, StoreError, Stories, StoryFilter,
    from_ts, ts,
};

/// The advisory lock key serialising story assignment ("stories!").
pub(super) const STORY_LOCK: i64 = 0x7374_6f72_6965_7321;

/// Records what the source said about itself, its validators and a
/// successful poll.
async fn update_source(
    tx: &Tx<'_>,
    id: FeedId,
    now: DateTime<Utc>,
    doc: &PolledDocument,
    next_poll: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (meta, validators) = (&doc.meta, &doc.validators);
    let warnings = (!doc.parse_warnings.is_empty()).then(|| doc.parse_warnings.join("\n"));
    // One trip: the update says whether the outlet's name changed (its
    // entries are then indexed again under the new one).
    let renamed = cached::query_opt(
        tx,
        "UPDATE feeds f SET source_id = $2, title = $3, site_url = $4, rights = $5,
                author = $6, source_updated = $7, etag = $8, last_modified = $9, state = 'ok',
                last_status = $10, last_error = NULL, failures = 0, last_polled_at = $11,
                last_success_at = $11, next_poll_at = $12, parse_warnings = $13,
                claimed_by = NULL, claim_until = NULL
             FROM (SELECT id, title AS old_title FROM feeds WHERE id = $1) old
             WHERE f.id = old.id
             RETURNING f.config_title IS NULL AND old.old_title IS DISTINCT FROM $3
                AND EXISTS (SELECT 1 FROM entries WHERE feed_id = $1)",
        &[
            &id,
            &meta.id,
            &meta.title,
            &meta.site_url,
            &meta.rights,
            &meta.author,
            &meta.updated.map(ts),
            &validators.etag,
            &validators.last_modified,
            &i64::from(doc.status),
            &ts(now),
            &ts(next_poll),
            &warnings,
        ],
    )
    .await?
    .map(|r| get::<bool>(&r, 0))
    .transpose()?
    .unwrap_or(false);
    if renamed {
        super::search::reindex_feed(tx, id).await?;
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

fn existing(r: &Row) -> Result<Existing, StoreError> {
    Ok(Existing {
        id: get(r, 0)?,
        hash: get(r, 1)?,
        churn_hash: get(r, 2)?,
        canonical_link: get(r, 3)?,
        title: get(r, 4)?,
        updated: get(r, 5)?,
        changed_at: get(r, 6)?,
    })
}

const EXISTING_COLUMNS: &str = "id, hash, churn_hash, canonical_link, title, updated, changed_at";

async fn by_key(tx: &Tx<'_>, feed_id: FeedId, key: &str) -> Result<Option<Existing>, StoreError> {
    tx.query_opt(
        &format!("SELECT {EXISTING_COLUMNS} FROM entries WHERE feed_id = $1 AND key = $2"),
        &[&feed_id, &key],
    )
    .await?
    .as_ref()
    .map(existing)
    .transpose()
}

async fn save_entries(
    tx: &Tx<'_>,
    feed_id: FeedId,
    now: DateTime<Utc>,
    entries: Vec<IdentifiedEntry>,
    settings: &DedupSettings,
) -> Result<(SaveCounts, Vec<Unassigned>), StoreError> {
    // The feed, and whether it has entries and tombstones yet, in one trip.
    let row = cached::query_one(
        tx,
        "SELECT uid, url, identity_rung,
                EXISTS (SELECT 1 FROM entries WHERE feed_id = $1),
                EXISTS (SELECT 1 FROM entry_tombstones WHERE feed_id = $1)
             FROM feeds WHERE id = $1",
        &[&feed_id],
    )
    .await?;
    let (feed_uid, feed_url): (String, String) = (get(&row, 0)?, get(&row, 1)?);
    let stored_rung = Rung::parse(&get::<String>(&row, 2)?);
    let (has_entries, has_tombstones): (bool, bool) = (get(&row, 3)?, get(&row, 4)?);
    let total = entries.len();
    let (rung, items) = identity::rekey_at(entries, stored_rung, settings.guid_tolerance);
    let mut counts = SaveCounts::default();
    let mut matched = HashSet::new();
    let (mut unstable, mut buried_count) = (0usize, 0usize);
    let mut resolved = Vec::with_capacity(items.len());
    let mut taken: HashSet<String> = if has_entries {
        items.iter().map(|i| i.key.clone()).collect()
    } else {
        HashSet::new()
    };
    // The stored entries under this document's keys, in one query.
    let mut stored: HashMap<String, Existing> = HashMap::new();
    if has_entries {
        let keys: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
        for r in tx
            .query(
                &format!(
                    "SELECT {EXISTING_COLUMNS}, key FROM entries WHERE feed_id = $1 AND key = ANY($2)"
                ),
                &[&feed_id, &keys],
            )
            .await?
        {
            stored.insert(get(&r, 7)?, existing(&r)?);
        }
    }
    for item in &items {
        let e = &item.entry;
        let canonical = item.canonical.as_deref();
        let mut key = Cow::Borrowed(item.key.as_str());
        if !has_entries {
            resolved.push((item, key, canonical, None));
            continue;
        }
        let mut found = stored.remove(key.as_ref());
        if let Some(old) = &found
            && key.starts_with("guid:")
            && canonical.is_some()
            && old.canonical_link.is_some()
            && old.canonical_link.as_deref() != canonical
            && old.title != e.title
        {
            unstable += 1;
            key = Cow::Owned(format!("link:{}", canonical.unwrap_or_default()));
            if !taken.insert(key.to_string()) {
                key = Cow::Owned(identity::hash_key(e));
                taken.insert(key.to_string());
            }
            found = by_key(tx, feed_id, &key).await?;
        }
        if let Some(old) = &found {
            matched.insert(old.id);
        }
        resolved.push((item, key, canonical, found));
    }
    let mut fresh: Vec<New<'_>> = Vec::new();
    let mut seen: Vec<i64> = Vec::new();
    for (item, key, canonical, mut found) in resolved {
        let e = &item.entry;
        if found.is_none()
            && has_entries
            && let Some(link) = canonical
        {
            let raw = e.link.as_deref().unwrap_or_default();
            let rows = tx
                .query(
                    &format!(
                        "SELECT {EXISTING_COLUMNS} FROM entries
                         WHERE feed_id = $1 AND title = $3
                           AND (canonical_link = $2 OR (canonical_link IS NULL AND link = $4))
                         ORDER BY id"
                    ),
                    &[&feed_id, &link, &e.title, &raw],
                )
                .await?;
            for row in &rows {
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
            // Unchanged: only seen again (all of them in one statement below).
            Some(old) if old.hash == item.hash && old.churn_hash.is_some() => seen.push(old.id),
            Some(old) => {
                if update_entry(tx, &old, item, canonical, now, settings).await? {
                    counts.updated += 1;
                }
            }
            None => {
                if has_tombstones && is_tombstoned(tx, feed_id, &key, canonical, now).await? {
                    buried_count += 1;
                    continue;
                }
                let uid = identity::new_entry_uid(&feed_uid, &key, now);
                fresh.push(New {
                    item,
                    key: key.into_owned(),
                    canonical,
                    uid,
                });
            }
        }
    }
    if !seen.is_empty() {
        cached::execute(
            tx,
            "UPDATE entries SET last_seen = $2 WHERE id = ANY($1)",
            &[&seen, &ts(now)],
        )
        .await?;
    }
    counts.new = fresh.len();
    let unassigned = insert_new(tx, feed_id, now, fresh, settings).await?;
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
        cached::execute(
            tx,
            "UPDATE feeds SET identity_rung = $2 WHERE id = $1",
            &[&feed_id, &rung.as_str()],
        )
        .await?;
    }
    Ok((counts, unassigned))
}

/// Whether this item was pruned from this feed, by its key or (under another
/// guid) by its canonical link; if so, notes that the feed still carries it.
async fn is_tombstoned(
    tx: &Tx<'_>,
    feed_id: FeedId,
    key: &str,
    canonical_link: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let touched = cached::execute(
        tx,
        "UPDATE entry_tombstones SET last_seen = $4
             WHERE feed_id = $1 AND (key = $2 OR ($3::TEXT IS NOT NULL AND canonical_link = $3))",
        &[&feed_id, &key, &canonical_link, &ts(now)],
    )
    .await?;
    Ok(touched > 0)
}

/// Stores what changed in a known entry (see the SQLite backend's
/// `update_entry` for the rules, which are the same).
async fn update_entry(
    tx: &Tx<'_>,
    old: &Existing,
    item: &IdentifiedEntry,
    canonical: Option<&str>,
    now: DateTime<Utc>,
    settings: &DedupSettings,
) -> Result<bool, StoreError> {
    let now_ts = ts(now);
    let e = &item.entry;
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
        cached::execute(
            tx,
            "UPDATE entries SET last_seen = $2 WHERE id = $1",
            &[&old.id, &now_ts],
        )
        .await?;
        return Ok(false);
    }
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
    cached::execute(
        tx,
        "UPDATE entries SET title = $2, link = $3, author = $4, summary = $5, content = $6,
            rights = $7, published = COALESCE(published, $8), updated = $9, changed_at = $10,
            hash = $11, canonical_link = $12, fingerprint = $13, churn_hash = $14, last_seen = $15
         WHERE id = $1",
        &[
            &old.id,
            &e.title,
            &e.link,
            &e.author,
            &e.summary,
            &e.content,
            &e.rights,
            &e.published.map(ts),
            &updated,
            &changed_at,
            &item.hash,
            &canonical,
            &item.fingerprint.as_ref().map(Fingerprint::to_bytes),
            &item.churn,
            &now_ts,
        ],
    )
    .await?;
    let feed_id: i64 = get(
        &cached::query_one(tx, "SELECT feed_id FROM entries WHERE id = $1", &[&old.id]).await?,
        0,
    )?;
    super::search::index_entry(
        tx,
        old.id,
        feed_id,
        &e.title,
        e.author.as_deref(),
        &body_text(e.summary.as_deref(), e.content.as_deref()),
    )
    .await?;
    Ok(counts)
}

/// This daemon's index of recent stories by LSH band (`store::story_index`),
/// and the newest story id it has read: a cache of the `stories` table that
/// each poll storing new entries brings up to date under the story lock (the
/// stories other daemons created since), so matching never depends on what
/// one process saw alone.
#[derive(Debug, Default)]
pub(crate) struct StoryCache {
    index: StoryIndex,
    synced: i64,
}

fn lock(cache: &Mutex<StoryCache>) -> std::sync::MutexGuard<'_, StoryCache> {
    cache.lock().unwrap_or_else(|p| p.into_inner())
}

/// Brings `cache` up to date with the stories table, holding the story lock
/// (so no story is being created meanwhile): a full load of the stories from
/// `since` on when it does not cover them yet, else the stories created
/// after the newest one it has read.
async fn sync_cache(tx: &Tx<'_>, cache: &Mutex<StoryCache>, since: i64) -> Result<(), StoreError> {
    let (covered, synced) = {
        let mut c = lock(cache);
        (c.index.covers(since), c.synced)
    };
    // A full load reads the window, then where the table ends (the stories
    // created from then on are caught up as above).
    let (rows, newest) = if covered {
        let rows = cached::query(
            tx,
            "SELECT s.id, s.sort_time, e.fingerprint FROM stories s
             LEFT JOIN entries e ON e.uid = s.uid
             WHERE s.id > $1 ORDER BY s.id",
            &[&synced],
        )
        .await?;
        (rows, None)
    } else {
        lock(cache).index.start_load();
        let rows = cached::query(
            tx,
            "SELECT s.id, s.sort_time, e.fingerprint
             FROM stories s JOIN entries e ON e.uid = s.uid
             WHERE s.sort_time >= $1 AND e.fingerprint IS NOT NULL
             ORDER BY s.sort_time DESC, s.id DESC LIMIT $2",
            &[&since, &(LOAD_LIMIT as i64)],
        )
        .await?;
        let end = cached::query_one(tx, "SELECT COALESCE(MAX(id), 0) FROM stories", &[]).await?;
        (rows, Some(get::<i64>(&end, 0)?))
    };
    let mut c = lock(cache);
    for r in &rows {
        let (id, sort_time): (i64, i64) = (get(r, 0)?, get(r, 1)?);
        if let Some(fingerprint) = get::<Option<Vec<u8>>>(r, 2)?
            .as_deref()
            .and_then(Fingerprint::from_bytes)
        {
            c.index.add(id, sort_time, &fingerprint);
        }
        c.synced = c.synced.max(id);
    }
    if let Some(newest) = newest {
        c.synced = newest;
        c.index.loaded(since);
    }
    Ok(())
}

/// A new entry of this document, keyed and with its permanent id.
struct New<'a> {
    item: &'a IdentifiedEntry,
    key: String,
    canonical: Option<&'a str>,
    uid: String,
}

/// A stored story a new entry may repeat: its first entry's fingerprint.
struct Known {
    fingerprint: Fingerprint,
    sort_time: i64,
    title: String,
}

/// Stores a document's new entries and their search vectors, without their
/// stories yet: [`assign_stories`] puts them in stories as the transaction's
/// last step, so the story lock is held for that step and the commit alone.
async fn insert_new(
    tx: &Tx<'_>,
    feed_id: FeedId,
    now: DateTime<Utc>,
    fresh: Vec<New<'_>>,
    settings: &DedupSettings,
) -> Result<Vec<Unassigned>, StoreError> {
    if fresh.is_empty() {
        return Ok(Vec::new());
    }
    let now_ts = ts(now);
    let floor = ts(now - settings.max_date_skew);
    let sort_times: Vec<i64> = fresh
        .iter()
        .map(|n| {
            let e = &n.item.entry;
            e.published
                .or(e.updated)
                .map_or(now_ts, |d| ts(d).clamp(floor, now_ts))
        })
        .collect();
    // The entries, in one statement, and their search vectors.
    let text = |f: &dyn Fn(&New<'_>) -> Option<String>| -> Vec<Option<String>> {
        fresh.iter().map(f).collect()
    };
    let keys: Vec<&str> = fresh.iter().map(|n| n.key.as_str()).collect();
    let uids: Vec<&str> = fresh.iter().map(|n| n.uid.as_str()).collect();
    let titles: Vec<&str> = fresh.iter().map(|n| n.item.entry.title.as_str()).collect();
    let links = text(&|n| n.item.entry.link.clone());
    let authors = text(&|n| n.item.entry.author.clone());
    let summaries = text(&|n| n.item.entry.summary.clone());
    let contents = text(&|n| n.item.entry.content.clone());
    let rights = text(&|n| n.item.entry.rights.clone());
    let published: Vec<Option<i64>> = fresh
        .iter()
        .map(|n| n.item.entry.published.map(ts))
        .collect();
    let updated: Vec<Option<i64>> = fresh.iter().map(|n| n.item.entry.updated.map(ts)).collect();
    let hashes: Vec<&str> = fresh.iter().map(|n| n.item.hash.as_str()).collect();
    let canonicals: Vec<Option<&str>> = fresh.iter().map(|n| n.canonical).collect();
    let fingerprints: Vec<Option<Vec<u8>>> = fresh
        .iter()
        .map(|n| n.item.fingerprint.as_ref().map(Fingerprint::to_bytes))
        .collect();
    let churns: Vec<&str> = fresh.iter().map(|n| n.item.churn.as_str()).collect();
    let rows = cached::query(
        tx,
        "INSERT INTO entries (feed_id, key, uid, title, link, author, summary, content, rights,
                published, updated, first_seen, changed_at, sort_time, hash, canonical_link,
                fingerprint, churn_hash, last_seen)
             SELECT $1, k, u, ti, l, a, su, co, r, p, up, $2, $2, st, h, cl, fp, ch, $2
             FROM unnest($3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[],
                         $9::TEXT[], $10::TEXT[], $11::BIGINT[], $12::BIGINT[], $13::BIGINT[],
                         $14::TEXT[], $15::TEXT[], $16::BYTEA[], $17::TEXT[])
                AS v(k, u, ti, l, a, su, co, r, p, up, st, h, cl, fp, ch)
             RETURNING id, uid",
        &[
            &feed_id,
            &now_ts,
            &keys,
            &uids,
            &titles,
            &links,
            &authors,
            &summaries,
            &contents,
            &rights,
            &published,
            &updated,
            &sort_times,
            &hashes,
            &canonicals,
            &fingerprints,
            &churns,
        ],
    )
    .await?;
    let mut ids: HashMap<String, i64> = HashMap::new();
    for r in &rows {
        ids.insert(get(r, 1)?, get(r, 0)?);
    }
    let entry_ids = fresh
        .iter()
        .map(|n| {
            ids.get(&n.uid)
                .copied()
                .ok_or_else(|| StoreError::Postgres(format!("entry {} was not stored", n.uid)))
        })
        .collect::<Result<Vec<i64>, _>>()?;
    let bodies: Vec<String> = fresh
        .iter()
        .map(|n| {
            body_text(
                n.item.entry.summary.as_deref(),
                n.item.entry.content.as_deref(),
            )
        })
        .collect();
    let search_authors: Vec<&str> = fresh
        .iter()
        .map(|n| n.item.entry.author.as_deref().unwrap_or_default())
        .collect();
    super::search::index_entries(tx, feed_id, &entry_ids, &titles, &bodies, &search_authors)
        .await?;
    let entries = fresh
        .iter()
        .zip(entry_ids)
        .zip(sort_times)
        .map(|((n, id), sort_time)| Unassigned {
            id,
            uid: n.uid.clone(),
            article_link: n
                .canonical
                .filter(|_| n.item.article_link)
                .map(str::to_owned),
            fingerprint: n.item.fingerprint.clone(),
            title: n.item.entry.title.clone(),
            sort_time,
        })
        .collect();
    Ok(entries)
}

/// A new entry stored without its story yet.
pub(super) struct Unassigned {
    id: i64,
    uid: String,
    /// Its canonical link, when that names the article itself.
    article_link: Option<String>,
    fingerprint: Option<Fingerprint>,
    title: String,
    sort_time: i64,
}

/// Puts a document's new entries into stories (the rules of the SQLite
/// backend's `assign_story`: another feed's entry with the same article
/// link, else the most similar story of another feed within the window,
/// else a story of its own), in a handful of statements for the whole
/// document. Holds the story lock from the first lookup to the commit, so
/// call it last: two daemons storing copies of one report take turns, and
/// the second finds the first's story.
pub(super) async fn assign_stories(
    tx: &Tx<'_>,
    feed_id: FeedId,
    now: DateTime<Utc>,
    fresh: Vec<Unassigned>,
    settings: &DedupSettings,
    cache: &Mutex<StoryCache>,
) -> Result<(), StoreError> {
    if fresh.is_empty() {
        return Ok(());
    }
    let now_ts = ts(now);
    let floor = ts(now - settings.max_date_skew);
    let sort_times: Vec<i64> = fresh.iter().map(|n| n.sort_time).collect();
    cached::execute(tx, "SELECT pg_advisory_xact_lock($1)", &[&STORY_LOCK]).await?;
    let matching = &settings.matching;
    if matching.enabled {
        sync_cache(tx, cache, floor - matching.window.num_seconds()).await?;
    }
    // Article links another feed's entries carry: their first entry's story.
    let links: Vec<&str> = fresh
        .iter()
        .filter_map(|n| n.article_link.as_deref())
        .collect();
    let mut by_link: HashMap<String, i64> = HashMap::new();
    if !links.is_empty() {
        for r in cached::query(
            tx,
            "SELECT DISTINCT ON (canonical_link) canonical_link, story_id FROM entries
                 WHERE canonical_link = ANY($1) AND feed_id != $2 AND story_id IS NOT NULL
                 ORDER BY canonical_link, first_seen, id",
            &[&links, &feed_id],
        )
        .await?
        {
            by_link.insert(get(&r, 0)?, get(&r, 1)?);
        }
    }
    let mut stories: Vec<Option<i64>> = fresh
        .iter()
        .map(|n| {
            n.article_link
                .as_deref()
                .and_then(|l| by_link.get(l).copied())
        })
        .collect();
    // Near duplicates: the stories sharing an LSH band with the entries
    // still without one, read in one query.
    let window = matching.window.num_seconds();
    let wanted: Vec<usize> = (0..fresh.len())
        .filter(|&i| {
            stories[i].is_none()
                && matching.enabled
                && fresh[i]
                    .fingerprint
                    .as_ref()
                    .is_some_and(|f| f.shingles >= matching.min_shingles)
        })
        .collect();
    if !wanted.is_empty() {
        let proposed: Vec<Vec<i64>> = {
            let cache = lock(cache);
            wanted
                .iter()
                .map(|&i| {
                    fresh[i]
                        .fingerprint
                        .as_ref()
                        .map(|f| cache.index.candidates(f))
                        .unwrap_or_default()
                })
                .collect()
        };
        let ids: Vec<i64> = {
            let mut all: Vec<i64> = proposed.iter().flatten().copied().collect();
            all.sort_unstable();
            all.dedup();
            all
        };
        let rows = if ids.is_empty() {
            Vec::new()
        } else {
            cached::query(
                tx,
                "SELECT s.id, e.fingerprint, s.sort_time, e.title
                 FROM stories s JOIN entries e ON e.uid = s.uid
                 WHERE s.id = ANY($1) AND e.fingerprint IS NOT NULL AND e.feed_id != $2",
                &[&ids, &feed_id],
            )
            .await?
        };
        let mut known: HashMap<i64, Known> = HashMap::new();
        for r in &rows {
            if let Some(fingerprint) = Fingerprint::from_bytes(&get::<Vec<u8>>(r, 1)?) {
                known.insert(
                    get(r, 0)?,
                    Known {
                        fingerprint,
                        sort_time: get(r, 2)?,
                        title: get(r, 3)?,
                    },
                );
            }
        }
        for (&i, candidates) in wanted.iter().zip(&proposed) {
            let Some(fingerprint) = fresh[i].fingerprint.as_ref() else {
                continue;
            };
            let me = Candidate {
                fingerprint: fingerprint.clone(),
                time: from_ts(sort_times[i]),
                title: fresh[i].title.clone(),
            };
            let mut best: Option<(f64, i64)> = None;
            for &story in candidates {
                let Some(other) = known.get(&story) else {
                    continue;
                };
                if (other.sort_time - sort_times[i]).abs() > window {
                    continue;
                }
                let other = Candidate {
                    fingerprint: other.fingerprint.clone(),
                    time: from_ts(other.sort_time),
                    title: other.title.clone(),
                };
                if same_story(&me, &other, matching) {
                    let score = me.fingerprint.containment(&other.fingerprint);
                    if best.is_none_or(|(b, _)| score > b) {
                        best = Some((score, story));
                    }
                }
            }
            stories[i] = best.map(|(_, id)| id);
        }
    }
    // Stories joined move to the earliest time of their copies.
    let (joined, joined_at): (Vec<i64>, Vec<i64>) = stories
        .iter()
        .zip(&sort_times)
        .filter_map(|(s, t)| s.map(|s| (s, *t)))
        .unzip();
    if !joined.is_empty() {
        cached::execute(
            tx,
            "UPDATE stories s SET sort_time = LEAST(s.sort_time, v.t)
             FROM unnest($1::BIGINT[], $2::BIGINT[]) AS v(id, t) WHERE s.id = v.id",
            &[&joined, &joined_at],
        )
        .await?;
    }
    // Stories of their own for the others, with their band keys.
    let alone: Vec<usize> = (0..fresh.len()).filter(|&i| stories[i].is_none()).collect();
    if !alone.is_empty() {
        let uids: Vec<&str> = alone.iter().map(|&i| fresh[i].uid.as_str()).collect();
        let times: Vec<i64> = alone.iter().map(|&i| sort_times[i]).collect();
        // Inserted, and any already there (a story id is never taken twice),
        // in one trip.
        let mut ids: HashMap<String, i64> = HashMap::new();
        for r in cached::query(
            tx,
            "WITH made AS (
                    INSERT INTO stories (uid, first_seen, sort_time)
                    SELECT u, $2, t FROM unnest($1::TEXT[], $3::BIGINT[]) AS v(u, t)
                    ON CONFLICT (uid) DO NOTHING
                    RETURNING uid, id)
                 SELECT uid, id FROM made
                 UNION ALL
                 SELECT uid, id FROM stories
                 WHERE uid = ANY($1) AND uid NOT IN (SELECT uid FROM made)",
            &[&uids, &now_ts, &times],
        )
        .await?
        {
            ids.insert(get(&r, 0)?, get(&r, 1)?);
        }
        for &i in &alone {
            let id = ids.get(&fresh[i].uid).copied().ok_or_else(|| {
                StoreError::Postgres(format!("story {} was not stored", fresh[i].uid))
            })?;
            stories[i] = Some(id);
        }
        if matching.enabled {
            let mut cache = lock(cache);
            for &i in &alone {
                if let (Some(id), Some(fingerprint)) = (stories[i], &fresh[i].fingerprint) {
                    cache.index.add(id, sort_times[i], fingerprint);
                    cache.synced = cache.synced.max(id);
                }
            }
        }
    }
    // The entries join their stories.
    let ids: Vec<i64> = fresh.iter().map(|n| n.id).collect();
    cached::execute(
        tx,
        "UPDATE entries e SET story_id = v.s
         FROM unnest($1::BIGINT[], $2::BIGINT[]) AS v(id, s) WHERE e.id = v.id",
        &[&ids, &stories],
    )
    .await?;
    Ok(())
}

impl Entries for Postgres {
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
        let cache = self.story_cache.clone();
        self.write(move |tx| {
            Box::pin(async move {
                update_source(tx, id, now, &doc, next_poll).await?;
                let (counts, fresh) = save_entries(tx, id, now, doc.entries, &settings).await?;
                assign_stories(tx, id, now, fresh, &settings, &cache).await?;
                Ok(counts)
            })
        })
    }

    fn save_document(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        doc: PolledDocument,
        record: PollRecord,
    ) -> Result<SaveCounts, StoreError> {
        let settings = self.dedup_settings();
        let cache = self.story_cache.clone();
        self.write(move |tx| {
            Box::pin(async move {
                update_source(tx, id, now, &doc, record.next_poll).await?;
                let (counts, fresh) = save_entries(tx, id, now, doc.entries, &settings).await?;
                super::feeds::apply_record(tx, id, now, &record, counts).await?;
                // Last: it holds the story lock until the commit.
                assign_stories(tx, id, now, fresh, &settings, &cache).await?;
                Ok(counts)
            })
        })
    }

    fn entry_count(&self) -> Result<u64, StoreError> {
        self.count("SELECT COUNT(*) FROM entries")
    }
}

impl Stories for Postgres {
    fn set_dedup_settings(&self, settings: DedupSettings) {
        *self.dedup.write().unwrap_or_else(|p| p.into_inner()) = settings;
    }

    fn dedup_settings(&self) -> DedupSettings {
        *self.dedup.read().unwrap_or_else(|p| p.into_inner())
    }

    fn set_feed_ranks(&self, ranks: &[FeedRank]) -> Result<(), StoreError> {
        let ranks = ranks.to_vec();
        self.write(move |tx| {
            Box::pin(async move {
                cached::execute(
                    tx,
                    "SELECT pg_advisory_xact_lock($1)",
                    &[&super::feeds::FEED_LIST_LOCK],
                )
                .await?;
                let mut stored: HashMap<String, (FeedId, i64, bool)> = HashMap::new();
                for r in
                    cached::query(tx, "SELECT url, id, priority, original FROM feeds", &[]).await?
                {
                    stored.insert(
                        get(&r, 0)?,
                        (get(&r, 1)?, get(&r, 2)?, get::<i64>(&r, 3)? != 0),
                    );
                }
                let changed: Vec<(FeedId, &FeedRank)> = ranks
                    .iter()
                    .filter_map(|rank| {
                        let &(id, priority, original) = stored.get(&rank.url)?;
                        ((priority, original) != (rank.priority, rank.original))
                            .then_some((id, rank))
                    })
                    .collect();
                let mut ids: Vec<FeedId> = changed.iter().map(|(id, _)| *id).collect();
                ids.sort_unstable();
                super::feeds::lock_feeds(tx, &ids).await?;
                for (id, rank) in changed {
                    cached::execute(
                        tx,
                        "UPDATE feeds SET priority = $2, original = $3 WHERE id = $1",
                        &[&id, &rank.priority, &i64::from(rank.original)],
                    )
                    .await?;
                }
                Ok(())
            })
        })
    }

    fn stories(&self, limit: usize) -> Result<Vec<crate::model::Story>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        Ok(self
            .story_page(&StoryFilter::All, PageStart::Newest, limit)?
            .stories)
    }

    fn feed_rank_of(&self, url: &str) -> Result<Option<(i64, bool)>, StoreError> {
        let url = url.to_string();
        self.read(move |client| {
            Box::pin(async move {
                client
                    .query_opt(
                        "SELECT priority, original FROM feeds WHERE url = $1",
                        &[&url],
                    )
                    .await?
                    .map(|r| Ok((get(&r, 0)?, get::<i64>(&r, 1)? != 0)))
                    .transpose()
            })
        })
    }

    fn story_count(&self) -> Result<u64, StoreError> {
        self.count("SELECT COUNT(*) FROM stories")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::ParsedEntry;
    use crate::store::{FeedSpec, Feeds};

    const TEXT: &str = "the harbour authority said the strike ended on wednesday after a nine day \
        stoppage that stranded forty ships at anchor off the coast while talks went on";

    fn item(guid: &str, link: &str, title: &str, body: &str) -> IdentifiedEntry {
        let entry = ParsedEntry {
            guid: Some(guid.into()),
            link: Some(link.into()),
            title: title.into(),
            summary: Some(body.into()),
            ..Default::default()
        };
        IdentifiedEntry::new(identity::entry_key(&entry), entry)
    }

    fn save(store: &Postgres, feed: FeedId, entries: &[IdentifiedEntry]) {
        let now = Utc::now();
        store
            .save_poll(
                feed,
                now,
                200,
                &SourceMeta::default(),
                &Validators::default(),
                entries,
                now + chrono::Duration::hours(1),
            )
            .unwrap();
    }

    /// Two daemons: each has its own story index, and a near duplicate that
    /// one stores finds the story the other created after its index was
    /// loaded (caught up from the database under the story lock).
    #[test]
    fn a_near_duplicate_joins_a_story_another_daemon_created() {
        let url = super::super::test_database();
        let open = || Postgres::connect(&url, Duration::from_secs(10), 2).unwrap();
        let (a, b) = (open(), open());
        let spec = |url: &str| FeedSpec {
            url: url.into(),
            title: None,
            interval: Duration::from_secs(600),
            tags: vec![],
            fixed_interval: false,
        };
        a.sync_feeds(
            &[
                spec("http://one.example/feed"),
                spec("http://two.example/feed"),
            ],
            Utc::now(),
        )
        .unwrap();
        let feeds = a.active_feeds().unwrap();
        let (one, two) = (feeds[0].id, feeds[1].id);
        // b loads its index first, with an unrelated story.
        save(
            &b,
            two,
            &[item(
                "b-1",
                "http://two.example/budget",
                "Council budget",
                "the council approved a budget for new bike lanes along the river and a \
                 library extension next spring with a small rise in fees for parking",
            )],
        );
        // a stores the report; b, storing its copy under another link, must
        // find a's story though its index never saw it created.
        save(
            &a,
            one,
            &[item(
                "a-1",
                "http://one.example/strike",
                "Port strike ends",
                TEXT,
            )],
        );
        save(
            &b,
            two,
            &[item(
                "b-2",
                "http://two.example/strike",
                "Port strike ends",
                &format!("{TEXT} reporting by our staff"),
            )],
        );
        assert_eq!(a.story_count().unwrap(), 2);
        let stories = b.stories(10).unwrap();
        let strike = stories
            .iter()
            .find(|s| s.title == "Port strike ends")
            .unwrap();
        assert_eq!(strike.also.len(), 1, "{stories:?}");
    }
}
