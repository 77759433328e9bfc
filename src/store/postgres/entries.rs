//! Entries and stories on PostgreSQL: saving a poll's results in one
//! transaction, new and changed entries, and the story each new entry joins.
//!
//! Several daemons: story matching reads what is in the database (entries'
//! canonical links, `story_bands` for near-duplicates), never one process's
//! memory, and the step from "which story?" to "insert it" holds a
//! transaction-level advisory lock, so the same wire story arriving through
//! two daemons at once still becomes one story. The lock is taken only by a
//! poll that stores a new entry, and held until its commit.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{Postgres, Tx, get};
use crate::identity::fingerprint::{BANDS, Candidate, Fingerprint, MatchSettings, same_story};
use crate::identity::{self, DedupSettings, Rung};
use crate::model::{FeedId, IdentifiedEntry, SourceMeta, Validators};
use crate::store::entries::{Entries, PolledDocument};
use crate::store::search::body_text;
use crate::store::{
    FeedRank, PageStart, PollRecord, Publishing, SaveCounts, StoreError, Stories, StoryFilter,
    from_ts, ts,
};

/// The advisory lock key serialising story assignment ("stories!").
const STORY_LOCK: i64 = 0x7374_6f72_6965_7321;

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
    let renamed = tx
        .query_opt(
            "SELECT config_title IS NULL AND title IS DISTINCT FROM $2
                AND EXISTS (SELECT 1 FROM entries WHERE feed_id = $1)
             FROM feeds WHERE id = $1",
            &[&id, &meta.title],
        )
        .await?
        .map(|r| get::<bool>(&r, 0))
        .transpose()?
        .unwrap_or(false);
    let warnings = (!doc.parse_warnings.is_empty()).then(|| doc.parse_warnings.join("\n"));
    tx.execute(
        "UPDATE feeds SET source_id = $2, title = $3, site_url = $4, rights = $5, author = $6,
            source_updated = $7, etag = $8, last_modified = $9, state = 'ok', last_status = $10,
            last_error = NULL, failures = 0, last_polled_at = $11, last_success_at = $11,
            next_poll_at = $12, parse_warnings = $13, claimed_by = NULL, claim_until = NULL
         WHERE id = $1",
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
    .await?;
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
) -> Result<SaveCounts, StoreError> {
    let row = tx
        .query_one(
            "SELECT uid, url, identity_rung FROM feeds WHERE id = $1",
            &[&feed_id],
        )
        .await?;
    let (feed_uid, feed_url): (String, String) = (get(&row, 0)?, get(&row, 1)?);
    let stored_rung = Rung::parse(&get::<String>(&row, 2)?);
    let total = entries.len();
    let (mut rung, items) = identity::rekey_at(entries, stored_rung, settings.guid_tolerance);
    let exists = |sql: &'static str| async move {
        let row = tx.query_one(sql, &[&feed_id]).await?;
        get::<bool>(&row, 0)
    };
    let has_entries = exists("SELECT EXISTS (SELECT 1 FROM entries WHERE feed_id = $1)").await?;
    let has_tombstones =
        exists("SELECT EXISTS (SELECT 1 FROM entry_tombstones WHERE feed_id = $1)").await?;
    let mut counts = SaveCounts::default();
    let mut matched = HashSet::new();
    let (mut unstable, mut buried_count) = (0usize, 0usize);
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
        let mut found = by_key(tx, feed_id, &key).await?;
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
    let mut locked = false;
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
                if !locked {
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&STORY_LOCK])
                        .await?;
                    locked = true;
                }
                let uid = identity::new_entry_uid(&feed_uid, &key, now);
                let id =
                    insert_entry(tx, feed_id, &key, &uid, item, canonical, now, settings).await?;
                matched.insert(id);
                counts.new += 1;
            }
        }
    }
    if buried_count > 0 {
        tracing::debug!(feed = %feed_url, entries = buried_count, "removed entries shown again by the source stay removed");
    }
    let unstable_guids = rung == Rung::Guid
        && unstable > 0
        && unstable as f64 > total as f64 * settings.guid_tolerance;
    if unstable_guids {
        rung = Rung::Link;
    }
    if rung != stored_rung {
        let reason = if unstable_guids {
            "its guids change or are reused between polls"
        } else {
            "its entries' ids are missing or repeated"
        };
        tracing::warn!(feed = %feed_url, from = stored_rung.as_str(), to = rung.as_str(), unstable, total, "{reason}: the feed moves down the identity ladder and its entries are keyed by {} from now on", rung.as_str());
        tx.execute(
            "UPDATE feeds SET identity_rung = $2 WHERE id = $1",
            &[&feed_id, &rung.as_str()],
        )
        .await?;
    }
    Ok(counts)
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
    let touched = tx
        .execute(
            "UPDATE entry_tombstones SET last_seen = $4
             WHERE feed_id = $1 AND (key = $2 OR ($3::TEXT IS NOT NULL AND canonical_link = $3))",
            &[&feed_id, &key, &canonical_link, &ts(now)],
        )
        .await?;
    Ok(touched > 0)
}

#[allow(clippy::too_many_arguments)]
async fn insert_entry(
    tx: &Tx<'_>,
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
    let floor = ts(now - settings.max_date_skew);
    let sort_time = e
        .published
        .or(e.updated)
        .map_or(now_ts, |d| ts(d).clamp(floor, now_ts));
    let story = assign_story(
        tx,
        feed_id,
        uid,
        &e.title,
        canonical.filter(|_| item.article_link),
        item.fingerprint.as_ref(),
        sort_time,
        now,
        &settings.matching,
    )
    .await?;
    let row = tx
        .query_one(
            "INSERT INTO entries (feed_id, key, uid, title, link, author, summary, content, rights,
                published, updated, first_seen, changed_at, sort_time, hash, canonical_link,
                fingerprint, churn_hash, last_seen, story_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15, $16,
                $17, $12, $18)
             RETURNING id",
            &[
                &feed_id,
                &key,
                &uid,
                &e.title,
                &e.link,
                &e.author,
                &e.summary,
                &e.content,
                &e.rights,
                &e.published.map(ts),
                &e.updated.map(ts),
                &now_ts,
                &sort_time,
                &item.hash,
                &canonical,
                &item.fingerprint.as_ref().map(Fingerprint::to_bytes),
                &item.churn,
                &story,
            ],
        )
        .await?;
    let id: i64 = get(&row, 0)?;
    super::search::index_entry(
        tx,
        id,
        feed_id,
        &e.title,
        e.author.as_deref(),
        &body_text(e.summary.as_deref(), e.content.as_deref()),
    )
    .await?;
    Ok(id)
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
        tx.execute(
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
    tx.execute(
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
        &tx.query_one("SELECT feed_id FROM entries WHERE id = $1", &[&old.id])
            .await?,
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

/// A fingerprint's LSH band keys as stored (`story_bands.band_key`).
fn band_keys(fingerprint: &Fingerprint) -> Vec<i64> {
    fingerprint
        .band_keys()
        .into_iter()
        .take(BANDS)
        .map(|k| k as i64)
        .collect()
}

/// Puts a newly stored entry into a story, by the same rules as the SQLite
/// backend's `assign_story`, reading candidates from the database.
#[allow(clippy::too_many_arguments)]
async fn assign_story(
    tx: &Tx<'_>,
    feed_id: i64,
    uid: &str,
    title: &str,
    article_link: Option<&str>,
    fingerprint: Option<&Fingerprint>,
    sort_time: i64,
    now: DateTime<Utc>,
    settings: &MatchSettings,
) -> Result<i64, StoreError> {
    let mut story: Option<i64> = None;
    if let Some(link) = article_link {
        story = tx
            .query_opt(
                "SELECT story_id FROM entries
                 WHERE canonical_link = $1 AND feed_id != $2 AND story_id IS NOT NULL
                 ORDER BY first_seen, id LIMIT 1",
                &[&link, &feed_id],
            )
            .await?
            .map(|r| get(&r, 0))
            .transpose()?;
    }
    if story.is_none()
        && settings.enabled
        && let Some(fingerprint) = fingerprint.filter(|f| f.shingles >= settings.min_shingles)
    {
        let window = settings.window.num_seconds();
        let rows = tx
            .query(
                "SELECT DISTINCT s.id, e.fingerprint, s.sort_time, e.title, e.feed_id
                 FROM story_bands b
                 JOIN stories s ON s.id = b.story_id
                 JOIN entries e ON e.uid = s.uid
                 WHERE b.band_key = ANY($1) AND b.sort_time BETWEEN $2 AND $3
                   AND e.fingerprint IS NOT NULL AND e.feed_id != $4",
                &[
                    &band_keys(fingerprint),
                    &(sort_time - window),
                    &(sort_time + window),
                    &feed_id,
                ],
            )
            .await?;
        let me = Candidate {
            fingerprint: fingerprint.clone(),
            time: from_ts(sort_time),
            title: title.to_string(),
        };
        let mut best: Option<(f64, i64)> = None;
        for r in &rows {
            let candidate: i64 = get(r, 0)?;
            let other_time: i64 = get(r, 2)?;
            if (other_time - sort_time).abs() > window {
                continue;
            }
            let Some(other) = Fingerprint::from_bytes(&get::<Vec<u8>>(r, 1)?) else {
                continue;
            };
            let other = Candidate {
                fingerprint: other,
                time: from_ts(other_time),
                title: get(r, 3)?,
            };
            if same_story(&me, &other, settings) {
                let score = me.fingerprint.containment(&other.fingerprint);
                if best.is_none_or(|(b, id)| score > b || (score == b && candidate < id)) {
                    best = Some((score, candidate));
                }
            }
        }
        story = best.map(|(_, id)| id);
    }
    match story {
        Some(id) => {
            tx.execute(
                "UPDATE stories SET sort_time = LEAST(sort_time, $2) WHERE id = $1",
                &[&id, &sort_time],
            )
            .await?;
            Ok(id)
        }
        None => {
            let inserted = tx
                .query_opt(
                    "INSERT INTO stories (uid, first_seen, sort_time) VALUES ($1, $2, $3)
                     ON CONFLICT (uid) DO NOTHING RETURNING id",
                    &[&uid, &ts(now), &sort_time],
                )
                .await?;
            let id: i64 = match inserted {
                Some(r) => get(&r, 0)?,
                None => get(
                    &tx.query_one("SELECT id FROM stories WHERE uid = $1", &[&uid])
                        .await?,
                    0,
                )?,
            };
            if let Some(fingerprint) = fingerprint {
                tx.execute(
                    "INSERT INTO story_bands (band_key, story_id, sort_time)
                     SELECT DISTINCT k, $2::BIGINT, $3::BIGINT FROM unnest($1::BIGINT[]) AS k
                     ON CONFLICT DO NOTHING",
                    &[&band_keys(fingerprint), &id, &sort_time],
                )
                .await?;
            }
            Ok(id)
        }
    }
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
        let doc = PolledDocument {
            status,
            meta: meta.clone(),
            validators: validators.clone(),
            entries: entries.to_vec(),
            parse_warnings: Vec::new(),
        };
        self.write(move |tx| {
            Box::pin(async move {
                update_source(tx, id, now, &doc, next_poll).await?;
                save_entries(tx, id, now, doc.entries, &settings).await
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
        self.write(move |tx| {
            Box::pin(async move {
                update_source(tx, id, now, &doc, record.next_poll).await?;
                let counts = save_entries(tx, id, now, doc.entries, &settings).await?;
                super::feeds::apply_record(tx, id, now, &record, counts).await?;
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
                let mut stored: HashMap<String, (i64, bool)> = HashMap::new();
                for r in tx
                    .query("SELECT url, priority, original FROM feeds", &[])
                    .await?
                {
                    stored.insert(get(&r, 0)?, (get(&r, 1)?, get::<i64>(&r, 2)? != 0));
                }
                for rank in &ranks {
                    if stored.get(&rank.url) != Some(&(rank.priority, rank.original)) {
                        tx.execute(
                            "UPDATE feeds SET priority = $2, original = $3 WHERE url = $1",
                            &[&rank.url, &rank.priority, &i64::from(rank.original)],
                        )
                        .await?;
                    }
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
