//! SQLite: open, migrate, and the narrow interface the rest of the daemon uses
//! (sync the configured feeds, claim due feeds, save a poll, query stories).
//! All SQL lives in this module so another backend can be added beside it.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use include_dir::{Dir, include_dir};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use rusqlite_migration::Migrations;

use crate::identity;
use crate::model::{
    FeedId, FeedState, FeedStatus, FeedToPoll, IdentifiedEntry, Source, SourceMeta, Story,
    Validators,
};

static MIGRATIONS_DIR: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/migrations");

static MIGRATIONS: LazyLock<Result<Migrations<'static>, String>> =
    LazyLock::new(|| Migrations::from_directory(&MIGRATIONS_DIR).map_err(|e| e.to_string()));

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The schema could not be brought up to date.
    #[error("database migration: {0}")]
    Migration(String),
    /// The blocking task running a query died.
    #[error("database task failed: {0}")]
    Task(String),
}

/// A feed as the configuration wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedSpec {
    pub url: String,
    pub title: Option<String>,
    pub interval: Duration,
    pub tags: Vec<String>,
}

/// What one poll added and changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaveCounts {
    pub new: usize,
    pub updated: usize,
}

/// The database. Cheap to clone; one writer connection and one reader
/// connection (WAL lets the reader run beside the writer).
#[derive(Clone, Debug)]
pub struct Store {
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock cannot leave SQLite inconsistent (the
    // transaction rolls back on drop), so a poisoned lock is still usable.
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|e| {
                StoreError::Migration(format!("cannot create {}: {e}", folder.display()))
            })?;
        }
        let mut writer = Connection::open(path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        configure(&writer)?;
        let migrations = MIGRATIONS
            .as_ref()
            .map_err(|e| StoreError::Migration(e.clone()))?;
        migrations
            .to_latest(&mut writer)
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        let reader = Connection::open(path)?;
        configure(&reader)?;
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// Runs blocking store work off the async runtime.
    pub async fn call<F, R>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// The schema version (number of applied migrations).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(lock(&self.reader).pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// The merged feed's permanent id, created on first use.
    pub fn river_id(&self) -> Result<String, StoreError> {
        let conn = lock(&self.writer);
        let existing: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'river_id'", [], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(id) = existing {
            return Ok(id);
        }
        let id = identity::feed_uid(&format!(
            "river:{}",
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('river_id', ?1)",
            [&id],
        )?;
        Ok(id)
    }

    /// Makes the stored feed list match the configuration: new feeds are added
    /// and due at once, changed settings are applied, feeds no longer configured
    /// are deactivated (their entries stay).
    pub fn sync_feeds(&self, feeds: &[FeedSpec], now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction()?;
        tx.execute("UPDATE feeds SET active = 0", [])?;
        for feed in feeds {
            let interval = feed.interval.as_secs() as i64;
            tx.execute(
                "INSERT INTO feeds (url, uid, config_title, interval_secs, next_poll_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (url) DO UPDATE SET
                    active = 1,
                    config_title = excluded.config_title,
                    interval_secs = excluded.interval_secs,
                    -- a shorter interval takes effect now, not after the old one
                    next_poll_at = MIN(next_poll_at, ?5 + excluded.interval_secs)",
                params![feed.url, identity::feed_uid(&feed.url), feed.title, interval, ts(now)],
            )?;
            let id: FeedId =
                tx.query_row("SELECT id FROM feeds WHERE url = ?1", [&feed.url], |r| {
                    r.get(0)
                })?;
            tx.execute("DELETE FROM feed_tags WHERE feed_id = ?1", [id])?;
            for tag in &feed.tags {
                tx.execute(
                    "INSERT OR IGNORE INTO feed_tags (feed_id, tag) VALUES (?1, ?2)",
                    params![id, tag],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Active feeds due at `now`, earliest first, skipping those in `busy`.
    pub fn due_feeds(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        busy: &HashSet<FeedId>,
    ) -> Result<Vec<FeedToPoll>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT id, url, etag, last_modified, interval_secs, failures FROM feeds
             WHERE active = 1 AND next_poll_at <= ?1 ORDER BY next_poll_at, id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![ts(now), (limit + busy.len()) as i64], feed_to_poll)?;
        let mut due = Vec::new();
        for row in rows {
            let feed = row?;
            if !busy.contains(&feed.id) && due.len() < limit {
                due.push(feed);
            }
        }
        Ok(due)
    }

    /// Every active feed, for a one-off poll of everything.
    pub fn active_feeds(&self) -> Result<Vec<FeedToPoll>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT id, url, etag, last_modified, interval_secs, failures FROM feeds
             WHERE active = 1 ORDER BY id",
        )?;
        let rows = stmt.query_map([], feed_to_poll)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the next feed (not in `busy`) falls due.
    pub fn next_due(&self, busy: &HashSet<FeedId>) -> Result<Option<DateTime<Utc>>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT id, next_poll_at FROM feeds WHERE active = 1 ORDER BY next_poll_at LIMIT ?1",
        )?;
        let rows = stmt.query_map([(busy.len() + 1) as i64], |r| {
            Ok((r.get::<_, FeedId>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (id, at) = row?;
            if !busy.contains(&id) {
                return Ok(Some(from_ts(at)));
            }
        }
        Ok(None)
    }

    /// A 304: only the schedule moves.
    pub fn record_not_modified(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        next_poll: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        lock(&self.writer).execute(
            "UPDATE feeds SET state = 'ok', last_status = 304, last_error = NULL, failures = 0,
                last_polled_at = ?2, last_success_at = ?2, next_poll_at = ?3 WHERE id = ?1",
            params![id, ts(now), ts(next_poll)],
        )?;
        Ok(())
    }

    /// A failed poll: the error is kept on the feed with the next attempt.
    pub fn record_failure(
        &self,
        id: FeedId,
        now: DateTime<Utc>,
        status: Option<u16>,
        error: &str,
        next_poll: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        lock(&self.writer).execute(
            "UPDATE feeds SET state = 'failing', last_status = ?2, last_error = ?3,
                failures = failures + 1, last_polled_at = ?4, next_poll_at = ?5 WHERE id = ?1",
            params![id, status, error, ts(now), ts(next_poll)],
        )?;
        Ok(())
    }

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
        let counts = save_entries(&tx, id, now, entries)?;
        tx.commit()?;
        Ok(counts)
    }

    /// The newest `limit` entries across all feeds, newest first, with their sources.
    pub fn stories(&self, limit: usize) -> Result<Vec<Story>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT e.uid, e.title, e.link, e.author, e.summary, e.content, e.rights,
                    e.published, e.updated, e.first_seen,
                    f.source_id, f.url, COALESCE(f.config_title, f.title, f.url), f.site_url,
                    f.rights, f.author, COALESCE(f.source_updated, f.last_success_at, e.first_seen)
             FROM entries e JOIN feeds f ON f.id = e.feed_id
             WHERE f.active = 1
             ORDER BY e.sort_time DESC, e.id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            let source_title: String = r.get(12)?;
            let feed_author: Option<String> = r.get(15)?;
            let published: Option<i64> = r.get(7)?;
            let updated: Option<i64> = r.get(8)?;
            let first_seen: i64 = r.get(9)?;
            let feed_url: String = r.get(11)?;
            let source = Source {
                id: r
                    .get::<_, Option<String>>(10)?
                    .unwrap_or_else(|| feed_url.clone()),
                title: source_title.clone(),
                feed_url,
                site_url: r.get(13)?,
                rights: r.get(14)?,
                updated: from_ts(r.get(16)?),
            };
            Ok(Story {
                uid: r.get(0)?,
                title: r.get(1)?,
                link: r.get(2)?,
                author: r
                    .get::<_, Option<String>>(3)?
                    .or(feed_author)
                    .unwrap_or(source_title),
                summary: r.get(4)?,
                content: r.get(5)?,
                rights: r
                    .get::<_, Option<String>>(6)?
                    .or_else(|| source.rights.clone()),
                published: published.map(from_ts),
                updated: from_ts(updated.or(published).unwrap_or(first_seen)),
                source,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every feed with its state, for status displays.
    pub fn feed_statuses(&self) -> Result<Vec<FeedStatus>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT f.id, f.url, COALESCE(f.config_title, f.title), f.active, f.state, f.last_status,
                    f.last_error, f.failures, f.last_polled_at, f.last_success_at, f.next_poll_at,
                    (SELECT COUNT(*) FROM entries e WHERE e.feed_id = f.id), f.etag, f.last_modified
             FROM feeds f ORDER BY f.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(FeedStatus {
                id: r.get(0)?,
                url: r.get(1)?,
                title: r.get(2)?,
                active: r.get(3)?,
                state: FeedState::parse(&r.get::<_, String>(4)?),
                last_status: r.get(5)?,
                last_error: r.get(6)?,
                failures: r.get(7)?,
                last_polled_at: r.get::<_, Option<i64>>(8)?.map(from_ts),
                last_success_at: r.get::<_, Option<i64>>(9)?.map(from_ts),
                next_poll_at: from_ts(r.get(10)?),
                entries: r.get::<_, i64>(11)?.max(0) as u64,
                validators: Validators {
                    etag: r.get(12)?,
                    last_modified: r.get(13)?,
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Number of stored entries.
    pub fn entry_count(&self) -> Result<u64, StoreError> {
        let count: i64 =
            lock(&self.reader).query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))?;
        Ok(count.max(0) as u64)
    }

    /// `PRAGMA integrity_check`, "ok" when healthy.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        Ok(lock(&self.reader).query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

fn feed_to_poll(r: &rusqlite::Row<'_>) -> rusqlite::Result<FeedToPoll> {
    Ok(FeedToPoll {
        id: r.get(0)?,
        url: r.get(1)?,
        validators: Validators {
            etag: r.get(2)?,
            last_modified: r.get(3)?,
        },
        interval: Duration::from_secs(r.get::<_, i64>(4)?.max(1) as u64),
        failures: r.get(5)?,
    })
}

fn save_entries(
    tx: &Transaction<'_>,
    feed_id: FeedId,
    now: DateTime<Utc>,
    entries: &[IdentifiedEntry],
) -> Result<SaveCounts, StoreError> {
    let feed_uid: String = tx.query_row("SELECT uid FROM feeds WHERE id = ?1", [feed_id], |r| {
        r.get(0)
    })?;
    let mut find =
        tx.prepare_cached("SELECT id, hash FROM entries WHERE feed_id = ?1 AND key = ?2")?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO entries (feed_id, key, uid, title, link, author, summary, content, rights,
            published, updated, first_seen, changed_at, sort_time, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14)",
    )?;
    let mut update = tx.prepare_cached(
        "UPDATE entries SET title = ?2, link = ?3, author = ?4, summary = ?5, content = ?6,
            rights = ?7, published = ?8, updated = ?9, changed_at = ?10, hash = ?11
         WHERE id = ?1",
    )?;
    let mut counts = SaveCounts::default();
    let now_ts = ts(now);
    for item in entries {
        let e = &item.entry;
        let existing: Option<(i64, String)> = find
            .query_row(params![feed_id, item.key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match existing {
            None => {
                // A source may not date an entry after we first saw it: that
                // would let it pin its items to the top of the river.
                let sort_time = e
                    .published
                    .or(e.updated)
                    .map_or(now_ts, |d| ts(d).min(now_ts));
                insert.execute(params![
                    feed_id,
                    item.key,
                    identity::entry_uid(&feed_uid, &item.key),
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
                    item.hash
                ])?;
                counts.new += 1;
            }
            Some((row, hash)) if hash != item.hash => {
                // The entry changed: its updated time advances even when the
                // source does not say so.
                let updated = e.updated.map_or(now_ts, |d| ts(d).min(now_ts));
                update.execute(params![
                    row,
                    e.title,
                    e.link,
                    e.author,
                    e.summary,
                    e.content,
                    e.rights,
                    e.published.map(ts),
                    updated,
                    now_ts,
                    item.hash
                ])?;
                counts.updated += 1;
            }
            Some(_) => {}
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ParsedEntry;

    fn spec(url: &str) -> FeedSpec {
        FeedSpec {
            url: url.into(),
            title: None,
            interval: Duration::from_secs(600),
            tags: vec!["world".into()],
        }
    }

    fn item(guid: &str, title: &str) -> IdentifiedEntry {
        let entry = ParsedEntry {
            guid: Some(guid.into()),
            title: title.into(),
            ..Default::default()
        };
        IdentifiedEntry {
            key: identity::entry_key(&entry),
            hash: identity::change_hash(&entry),
            entry,
        }
    }

    #[test]
    fn migrations_are_valid() {
        MIGRATIONS.as_ref().unwrap().validate().unwrap();
    }

    #[test]
    fn reopening_applies_nothing_and_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let now = Utc::now();
        {
            let store = Store::open(&path).unwrap();
            store.sync_feeds(&[spec("http://a.example/")], now).unwrap();
            let feed = store.active_feeds().unwrap().remove(0);
            store
                .save_poll(
                    feed.id,
                    now,
                    200,
                    &SourceMeta::default(),
                    &Validators::default(),
                    &[item("1", "one")],
                    now,
                )
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            MIGRATIONS_DIR.dirs().count() as i64
        );
        assert_eq!(store.entry_count().unwrap(), 1);
        assert_eq!(store.active_feeds().unwrap().len(), 1);
    }

    #[test]
    fn save_poll_inserts_then_updates_without_duplicating() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.db")).unwrap();
        let now = Utc::now();
        store.sync_feeds(&[spec("http://a.example/")], now).unwrap();
        let id = store.active_feeds().unwrap()[0].id;
        let meta = SourceMeta::default();
        let v = Validators::default();
        let first = store
            .save_poll(
                id,
                now,
                200,
                &meta,
                &v,
                &[item("1", "one"), item("2", "two")],
                now,
            )
            .unwrap();
        assert_eq!(first, SaveCounts { new: 2, updated: 0 });
        let again = store
            .save_poll(
                id,
                now,
                200,
                &meta,
                &v,
                &[item("1", "one"), item("2", "two")],
                now,
            )
            .unwrap();
        assert_eq!(again, SaveCounts::default());
        let edited = store
            .save_poll(
                id,
                now,
                200,
                &meta,
                &v,
                &[item("1", "one, edited"), item("3", "three")],
                now,
            )
            .unwrap();
        assert_eq!(edited, SaveCounts { new: 1, updated: 1 });
        assert_eq!(store.entry_count().unwrap(), 3);
        let titles: Vec<String> = store
            .stories(10)
            .unwrap()
            .into_iter()
            .map(|s| s.title)
            .collect();
        assert!(titles.contains(&"one, edited".to_string()));
    }

    #[test]
    fn removed_feeds_are_deactivated_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.db")).unwrap();
        let now = Utc::now();
        store
            .sync_feeds(&[spec("http://a.example/"), spec("http://b.example/")], now)
            .unwrap();
        store.sync_feeds(&[spec("http://b.example/")], now).unwrap();
        let statuses = store.feed_statuses().unwrap();
        assert_eq!(statuses.len(), 2);
        assert!(!statuses[0].active && statuses[1].active);
        assert_eq!(store.active_feeds().unwrap().len(), 1);
    }
}
