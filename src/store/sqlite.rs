//! The SQLite backend: one file, one writer connection with group commit,
//! readers beside it (WAL), and in-memory indexes for story matching.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use chrono::Utc;
use include_dir::{Dir, include_dir};
use rusqlite::{Connection, OptionalExtension};
use rusqlite_migration::Migrations;

use crate::identity;

pub(crate) use super::*;

mod entries;
mod feeds;
mod fetch_state;
mod link_filter;
mod ops;
mod publishing;
mod retention;
mod search;
mod status;
mod stories;
mod story_index;
mod websub;

static MIGRATIONS_DIR: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/migrations/sqlite");

pub(crate) static MIGRATIONS: LazyLock<Result<Migrations<'static>, String>> =
    LazyLock::new(|| Migrations::from_directory(&MIGRATIONS_DIR).map_err(|e| e.to_string()));

/// The database. Cheap to clone; one writer connection and one reader
/// connection (WAL lets the reader run beside the writer).
#[derive(Clone, Debug)]
pub struct Sqlite {
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
    /// How entries are told apart and merged into stories.
    dedup: Arc<std::sync::RwLock<identity::DedupSettings>>,
    /// Recent stories by LSH band, for near-duplicate matching.
    matching: Arc<Mutex<Matching>>,
    /// Poll results go through the group-commit writer thread.
    queue: mpsc::Sender<Job>,
    /// Writes nobody waits for, gathered for one queued job (see
    /// `write_detached`).
    detached: Arc<Mutex<Vec<Detached>>>,
    /// Counts this process's committed writes, so readers can tell cheaply
    /// that nothing changed (see `local_writes`).
    writes: Arc<AtomicU64>,
    /// Taken by the background checkpointer for each pass (see `checkpoint`).
    checkpoint_turn: Arc<Mutex<()>>,
}

/// The writer connection, locked; counts a write when released.
pub(crate) struct WriterGuard<'a> {
    conn: MutexGuard<'a, Connection>,
    writes: &'a AtomicU64,
}

impl std::ops::Deref for WriterGuard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for WriterGuard<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        // Counted after the work is done (committed, or rolled back), never
        // before: a reader that sees the new count also sees the data.
        self.writes.fetch_add(1, Ordering::Release);
    }
}

/// What the writer keeps in memory to put new entries into stories.
#[derive(Debug, Default)]
pub(crate) struct Matching {
    /// Stories' fingerprints, by LSH band.
    pub(crate) stories: crate::store::story_index::StoryIndex,
    /// Which canonical links may be stored.
    pub(crate) links: link_filter::LinkFilter,
}

/// Tells a queued write whether the transaction it ran in was committed.
type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A write waiting for the writer thread.
type WriteJob = Box<dyn FnOnce(&mut Connection) -> Finish + Send>;

/// A write that runs in a savepoint of the writer's transaction.
type SavepointWrite = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

/// A write nobody waits for, and what it stores (for the log if it fails).
struct Detached {
    what: String,
    write: SavepointWrite,
}

impl std::fmt::Debug for Detached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detached")
            .field("what", &self.what)
            .finish()
    }
}

/// A queued write, and whether a caller is waiting for its commit.
struct Job {
    write: WriteJob,
    awaited: bool,
}

/// How long the writer waits, before it begins a transaction of writes
/// nobody waits for (`Sqlite::write_detached`), for more of them to join
/// (to the queue, or to the list a queued job takes when it runs): `poll
/// --once` queues a record per feed, and committing each handful on its own
/// rewrote the same pages of `feeds` into the WAL again and again (7–21 MB
/// of WAL for 2,000 304s). A write someone waits for ends the wait.
const GATHER: Duration = Duration::from_millis(20);

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 256;

/// Group commit: the polls that finish while a transaction is being written
/// queue up, and the next transaction carries all of them. Each write runs in
/// its own savepoint, so one failing poll does not undo the others; each
/// caller learns its result only once the transaction is committed.
fn writer_thread(
    writer: Arc<Mutex<Connection>>,
    writes: Arc<AtomicU64>,
    queue: mpsc::Receiver<Job>,
    checkpoint: mpsc::SyncSender<()>,
) {
    while let Ok(first) = queue.recv() {
        let mut awaited = first.awaited;
        let mut batch = vec![first.write];
        let mut gather_until = None;
        while batch.len() < MAX_BATCH {
            let next = match queue.try_recv() {
                Ok(job) => Some(job),
                Err(mpsc::TryRecvError::Disconnected) => None,
                // Nothing more queued: commit now if anyone is waiting, else
                // give more writes nobody waits for a moment to join.
                Err(mpsc::TryRecvError::Empty) if awaited => None,
                Err(mpsc::TryRecvError::Empty) => {
                    let until = *gather_until.get_or_insert_with(|| Instant::now() + GATHER);
                    queue
                        .recv_timeout(until.saturating_duration_since(Instant::now()))
                        .ok()
                }
            };
            let Some(job) = next else { break };
            awaited |= job.awaited;
            batch.push(job.write);
        }
        let mut conn = lock(&writer);
        // If BEGIN fails, each savepoint below is a transaction of its own.
        let began = conn.execute_batch("BEGIN IMMEDIATE").is_ok();
        let finishes: Vec<Finish> = batch.into_iter().map(|job| job(&mut conn)).collect();
        // The entries these writes stored or changed enter the search index
        // together, outside the writes' savepoints (see `search`).
        if let Err(e) = search::flush_pending(&mut conn) {
            tracing::error!(error = %e, "cannot update the search index; it is tried again with the next write");
        }
        let committed = if began {
            conn.execute_batch("COMMIT").map_err(|e| e.to_string())
        } else {
            Ok(())
        };
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        drop(conn);
        writes.fetch_add(1, Ordering::Release);
        // Full: a pass is already due, and it will see this commit too.
        let _ = checkpoint.try_send(());
        for finish in finishes {
            finish(committed.clone());
        }
    }
}

/// Least time between two background checkpoint passes.
const CHECKPOINT_GAP: Duration = Duration::from_millis(100);
/// WAL pages after which the writer checkpoints by itself: only when the
/// background passes fall behind (SQLite's default is 1,000).
const WRITER_AUTOCHECKPOINT: i64 = 10_000;

/// Copies committed pages from the WAL into the database file on its own
/// connection (a PASSIVE checkpoint, which never blocks the writer), so the
/// writer thread, the one serial stage of ingest, does not: at 500,000
/// entries its own checkpoints had become a quarter of its time, as each
/// copies pages to random places in a large file. Woken after each commit,
/// at most once per `CHECKPOINT_GAP`; ends with the writer.
fn checkpoint_thread(conn: Connection, wake: mpsc::Receiver<()>, turn: Arc<Mutex<()>>) {
    while wake.recv().is_ok() {
        while wake.try_recv().is_ok() {}
        {
            // Held while checkpointing, so `Sqlite::checkpoint` never finds
            // this process's own pass in its way.
            let _turn = turn.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "background checkpoint failed; the writer will checkpoint instead");
            }
        }
        std::thread::sleep(CHECKPOINT_GAP);
    }
}

/// Runs one queued write in a savepoint of the writer's transaction; a
/// failure or a panic undoes that write alone.
fn in_savepoint<R>(
    conn: &mut Connection,
    f: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let savepoint = conn.savepoint()?;
        let value = f(&savepoint)?;
        savepoint.commit()?;
        Ok(value)
    }))
    .unwrap_or_else(|_| Err(StoreError::Task("a database write panicked".into())))
}

fn writer_stopped() -> StoreError {
    StoreError::Task("the database writer has stopped".into())
}

pub(crate) fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
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

impl Sqlite {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|e| {
                StoreError::Migration(format!("cannot create {}: {e}", folder.display()))
            })?;
        }
        let mut writer = Connection::open(path)?;
        // Like auto_vacuum, only takes effect on a new, empty database. An
        // entry row is about 2.3 kB, so a 4 kB page holds one and leaves 40 %
        // of the file empty; an 8 kB page holds three.
        writer.pragma_update(None, "page_size", 8192)?;
        // Takes effect only on a new, empty database (before the first table):
        // pruning then hands freed pages back bit by bit (see README, retention).
        writer.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        configure(&writer)?;
        // 16 MiB of page cache for the writer (the default is 2 MiB): index
        // pages of a large database stay in memory between polls. The reader
        // walks indexes newest-first and keeps the default.
        writer.pragma_update(None, "cache_size", -16 * 1024)?;
        // The poll path alone uses about 18 cached statements (the default
        // cache keeps 16, so some would be prepared again on every poll).
        writer.set_prepared_statement_cache_capacity(64);
        writer.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT)?;
        // Each poll's savepoint journals the pages it first touches; past
        // 64 KiB that journal would spill to a temporary file.
        writer.pragma_update(None, "temp_store", "MEMORY")?;
        // A WAL that grew during a long ingest is cut back to this when reused.
        writer.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        let migrations = MIGRATIONS
            .as_ref()
            .map_err(|e| StoreError::Migration(e.clone()))?;
        migrations
            .to_latest(&mut writer)
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        let refingerprinted = story_index::upgrade_fingerprints(&mut writer)?;
        if refingerprinted > 0 {
            tracing::info!(
                entries = refingerprinted,
                "worked out stored entries' fingerprints in the new format"
            );
        }
        search::build_pending(&mut writer)?;
        // Marks left by a transaction whose index update failed.
        search::flush_pending(&mut writer)?;
        let reader = Connection::open(path)?;
        configure(&reader)?;
        let checkpointer = Connection::open(path)?;
        configure(&checkpointer)?;
        let (checkpoint, wake) = mpsc::sync_channel(1);
        let checkpoint_turn = Arc::new(Mutex::new(()));
        let turn = checkpoint_turn.clone();
        std::thread::Builder::new()
            .name("newsriver-checkpoint".into())
            .spawn(move || checkpoint_thread(checkpointer, wake, turn))
            .map_err(|e| StoreError::Task(format!("cannot start the checkpointer: {e}")))?;
        let writer = Arc::new(Mutex::new(writer));
        let (queue, jobs) = mpsc::channel();
        let for_thread = writer.clone();
        let writes = Arc::new(AtomicU64::new(0));
        let writes_for_thread = writes.clone();
        std::thread::Builder::new()
            .name("newsriver-writer".into())
            .spawn(move || writer_thread(for_thread, writes_for_thread, jobs, checkpoint))
            .map_err(|e| StoreError::Task(format!("cannot start the database writer: {e}")))?;
        Ok(Self {
            writer,
            reader: Arc::new(Mutex::new(reader)),
            dedup: Arc::default(),
            matching: Arc::default(),
            queue,
            detached: Arc::default(),
            writes,
            checkpoint_turn,
        })
    }

    /// The writer connection, for writes outside the poll path.
    pub(crate) fn lock_writer(&self) -> WriterGuard<'_> {
        WriterGuard {
            conn: lock(&self.writer),
            writes: &self.writes,
        }
    }

    /// Rows the writer connection has inserted, updated or deleted since it
    /// opened (SQLite's `total_changes()`), for tests that check nothing is
    /// rewritten.
    #[cfg(test)]
    pub(crate) fn rows_changed(&self) -> i64 {
        self.lock_writer()
            .query_row("SELECT total_changes()", [], |r| r.get(0))
            .expect("total_changes()")
    }

    /// Runs `f` on the writer connection in a savepoint, committed together
    /// with the other writes queued at the same moment (group commit). Blocks
    /// until that transaction is committed; call it from blocking code.
    pub(crate) fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (done, result) = mpsc::sync_channel(1);
        let job: WriteJob = Box::new(move |conn: &mut Connection| {
            let outcome = in_savepoint(conn, f);
            Box::new(move |committed: Result<(), String>| {
                let _ = done.send(match committed {
                    Ok(()) => outcome,
                    Err(e) => Err(StoreError::Task(format!("commit failed: {e}"))),
                });
            })
        });
        self.queue
            .send(Job {
                write: job,
                awaited: true,
            })
            .map_err(|_| writer_stopped())?;
        result.recv().map_err(|_| writer_stopped())?
    }

    /// Queues `f` like [`Sqlite::write`] without waiting for it: a failure is
    /// logged by the writer thread. A write is applied no later than its
    /// place in the queue, so a later [`Sqlite::flush`] (or any later write)
    /// sees it; it may be applied earlier, with other detached writes.
    ///
    /// Detached writes gather in a list, and only the first of each list
    /// queues a job, which takes the whole list when the writer runs it: a
    /// queued job wakes the writer thread, and at one job per write those
    /// wake-ups were a fifth of a 2,000-feed `poll --once` answered by 304s.
    /// So a write that joins a list may be applied before a waited-for write
    /// queued between the list's first write and it; and a list is one job,
    /// however long (`MAX_BATCH` counts jobs).
    pub(crate) fn write_detached<F>(&self, what: String, f: F) -> Result<(), StoreError>
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        let mut pending = self.detached.lock().unwrap_or_else(|p| p.into_inner());
        pending.push(Detached {
            what,
            write: Box::new(f),
        });
        if pending.len() > 1 {
            // The job that takes this list is queued and has not run yet.
            return Ok(());
        }
        let list = self.detached.clone();
        let job: WriteJob = Box::new(move |conn: &mut Connection| {
            let writes = std::mem::take(&mut *list.lock().unwrap_or_else(|p| p.into_inner()));
            let outcomes: Vec<(String, Result<(), StoreError>)> = writes
                .into_iter()
                .map(|w| (w.what, in_savepoint(conn, w.write)))
                .collect();
            Box::new(move |committed: Result<(), String>| {
                for (what, outcome) in outcomes {
                    let failed = match (outcome, &committed) {
                        (Err(e), _) => Some(e.to_string()),
                        (Ok(()), Err(e)) => Some(format!("commit failed: {e}")),
                        (Ok(()), Ok(())) => None,
                    };
                    if let Some(error) = failed {
                        tracing::error!(%error, "cannot store {what}");
                    }
                }
            })
        });
        // Sent under the lock: no write joins this list unless its job is queued.
        let sent = self.queue.send(Job {
            write: job,
            awaited: false,
        });
        if sent.is_err() {
            pending.clear();
            return Err(writer_stopped());
        }
        Ok(())
    }
}

impl Maintenance for Sqlite {
    fn local_writes(&self) -> u64 {
        self.writes.load(Ordering::Acquire)
    }

    fn flush_writes(&self) -> Result<(), StoreError> {
        self.write(|_| Ok(()))
    }

    /// One daemon owns a SQLite file (a cron `poll --once` beside it polls
    /// all feeds on its own).
    fn is_shared(&self) -> bool {
        false
    }

    /// The schema version (number of applied migrations).
    fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(lock(&self.reader).pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// The merged feed's permanent id, created on first use.
    fn river_id(&self) -> Result<String, StoreError> {
        let conn = self.lock_writer();
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

    /// Copies the whole WAL into the database file and truncates it. Waits
    /// for the background checkpointer's pass to end, then for readers (up
    /// to the busy timeout). Returns false if the WAL stayed busy (another
    /// process checkpointing or reading); it is then still valid as it is.
    fn checkpoint(&self) -> Result<bool, StoreError> {
        let _turn = self
            .checkpoint_turn
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let conn = self.lock_writer();
        // (busy, WAL frames, frames checkpointed).
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        Ok(busy == 0)
    }

    /// `PRAGMA integrity_check`, "ok" when healthy.
    fn integrity_check(&self) -> Result<String, StoreError> {
        Ok(lock(&self.reader).query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IdentifiedEntry, ParsedEntry, SourceMeta, Validators};
    use crate::store::{Entries, Feeds, Maintenance, Stories};

    fn spec(url: &str) -> FeedSpec {
        FeedSpec {
            url: url.into(),
            title: None,
            interval: Duration::from_secs(600),
            tags: vec!["world".into()],
            fixed_interval: false,
        }
    }

    fn item(guid: &str, title: &str) -> IdentifiedEntry {
        let entry = ParsedEntry {
            guid: Some(guid.into()),
            title: title.into(),
            ..Default::default()
        };
        IdentifiedEntry::new(identity::entry_key(&entry), entry)
    }

    #[tokio::test]
    async fn queued_writes_apply_in_order_and_one_failing_spoils_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("q.db")).unwrap();
        let set = |key: &'static str, value: &'static str| {
            move |tx: &Connection| -> Result<(), StoreError> {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [key, value],
                )?;
                Ok(())
            }
        };
        store
            .write_detached("a test value".into(), set("q1", "first"))
            .unwrap();
        store
            .write_detached("a test value".into(), set("q2", "early"))
            .unwrap();
        store
            .write_detached("a broken write".into(), |tx| {
                tx.execute("INSERT INTO no_such_table VALUES (1)", [])?;
                Ok(())
            })
            .unwrap();
        store
            .write_detached("a test value".into(), set("q2", "late"))
            .unwrap();
        store.flush_writes().unwrap();
        let value = |key: &str| -> String {
            lock(&store.reader)
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .unwrap()
        };
        // The write before the broken one is kept; those on one key land in
        // the order they were queued.
        assert_eq!(value("q1"), "first");
        assert_eq!(value("q2"), "late");
    }

    /// Queues a write nobody waits for that stores `key` in `meta`.
    fn queue_key(store: &Sqlite, key: String) {
        store
            .write_detached("a test value".into(), move |tx| {
                tx.execute("INSERT INTO meta (key, value) VALUES (?1, 'x')", [key])?;
                Ok(())
            })
            .unwrap();
    }

    /// How many keys in `meta` start with `prefix`.
    fn keys_stored(store: &Sqlite, prefix: &str) -> i64 {
        lock(&store.reader)
            .query_row(
                "SELECT COUNT(*) FROM meta WHERE key LIKE ?1 || '%'",
                [prefix],
                |r| r.get(0),
            )
            .unwrap()
    }

    #[tokio::test]
    async fn writes_nobody_waits_for_share_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("g.db")).unwrap();
        let before = store.local_writes();
        // Trickling in, as a pass's records do: each would find the writer idle.
        for i in 0..40 {
            std::thread::sleep(Duration::from_micros(500));
            queue_key(&store, format!("k{i}"));
        }
        store.flush_writes().unwrap();
        let commits = store.local_writes() - before;
        // One transaction per write would be 40 (and 40 copies of the same
        // pages in the WAL); gathered, a handful.
        assert!(commits <= 10, "{commits} commits for 40 queued writes");
        assert_eq!(keys_stored(&store, "k"), 40);
    }

    #[tokio::test]
    async fn detached_writes_queued_while_the_writer_is_busy_go_in_one_job() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("b.db")).unwrap();
        // The writer is busy (here: its connection is held) while a pass's
        // records pile up; more of them than one transaction takes of
        // separate jobs (MAX_BATCH).
        let busy = store.lock_writer();
        let before = store.local_writes();
        for i in 0..3 * MAX_BATCH {
            queue_key(&store, format!("b{i}"));
        }
        drop(busy);
        store.flush_writes().unwrap();
        // The held connection counts one write when released.
        let commits = store.local_writes() - before - 1;
        // One job per write would take at least three transactions.
        assert!(
            commits <= 2,
            "{commits} transactions for one list of writes"
        );
        assert_eq!(keys_stored(&store, "b"), 3 * MAX_BATCH as i64);
    }

    #[test]
    fn the_checkpointer_copies_committed_pages_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE t (x BLOB);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
                 INSERT INTO t SELECT zeroblob(4000) FROM n;",
            )
            .unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        let (wake, woken) = mpsc::sync_channel(1);
        wake.send(()).unwrap();
        drop(wake);
        let checkpointer = Connection::open(&path).unwrap();
        let turn = Arc::new(Mutex::new(()));
        std::thread::spawn(move || checkpoint_thread(checkpointer, woken, turn))
            .join()
            .unwrap();
        // The writer is still open (closing it would checkpoint by itself).
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(after >= before + 800_000, "{before} -> {after}");
        drop(writer);
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
            let store = Sqlite::open(&path).unwrap();
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
        let store = Sqlite::open(&path).unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            MIGRATIONS_DIR.dirs().count() as i64
        );
        assert_eq!(store.entry_count().unwrap(), 1);
        assert_eq!(store.active_feeds().unwrap().len(), 1);
    }

    #[test]
    fn fingerprints_of_an_older_format_are_worked_out_again_once() {
        use crate::identity::fingerprint::{self, Fingerprint};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let now = Utc::now();
        let stored = |store: &Sqlite| -> Vec<u8> {
            lock(&store.reader)
                .query_row("SELECT fingerprint FROM entries", [], |r| r.get(0))
                .unwrap()
        };
        {
            let store = Sqlite::open(&path).unwrap();
            store.sync_feeds(&[spec("http://a.example/")], now).unwrap();
            let feed = store.active_feeds().unwrap().remove(0);
            let v = Validators::default();
            let m = SourceMeta::default();
            store
                .save_poll(
                    feed.id,
                    now,
                    200,
                    &m,
                    &v,
                    &[item("1", "Port strike ends")],
                    now,
                )
                .unwrap();
            assert_eq!(stored(&store)[0], fingerprint::FORMAT);
            // As an older version left it: another format, no record of it;
            // and long before any matching window (all are upgraded).
            let conn = store.lock_writer();
            conn.execute_batch(
                "UPDATE entries SET fingerprint = CAST(x'02' || substr(fingerprint, 2) AS BLOB),
                     sort_time = sort_time - 400 * 86400;
                 DELETE FROM meta WHERE key = 'fingerprint_format';",
            )
            .unwrap();
        }
        let store = Sqlite::open(&path).unwrap();
        let bytes = stored(&store);
        assert_eq!(
            Fingerprint::from_bytes(&bytes),
            Fingerprint::of("Port strike ends", "")
        );
        // Recorded: the next open leaves the entries alone.
        store
            .lock_writer()
            .execute("UPDATE entries SET fingerprint = x'02'", [])
            .unwrap();
        drop(store);
        let store = Sqlite::open(&path).unwrap();
        assert_eq!(stored(&store), vec![2u8]);
    }

    #[test]
    fn save_poll_inserts_then_updates_without_duplicating() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("r.db")).unwrap();
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
    fn syncing_the_feed_list_applies_each_change_and_rewrites_nothing_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("s.db")).unwrap();
        let now = Utc::now();
        let feed = |url: &str, title: Option<&str>, secs: u64, tags: &[&str]| FeedSpec {
            url: url.into(),
            title: title.map(str::to_string),
            interval: Duration::from_secs(secs),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            fixed_interval: false,
        };
        let rows = || -> Vec<(String, bool, Option<String>, i64, String)> {
            lock(&store.reader)
                .prepare(
                    "SELECT url, active = 1, config_title, interval_secs,
                        (SELECT IFNULL(GROUP_CONCAT(tag, ','), '') FROM
                            (SELECT tag FROM feed_tags WHERE feed_id = feeds.id ORDER BY tag))
                     FROM feeds ORDER BY url",
                )
                .unwrap()
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let row = |url: &str, active, title: Option<&str>, secs, tags: &str| {
            (
                url.to_string(),
                active,
                title.map(str::to_string),
                secs,
                tags.to_string(),
            )
        };

        let first = [
            feed("http://a.example/", None, 600, &["x", "y"]),
            feed("http://b.example/", Some("B"), 600, &[]),
        ];
        store.sync_feeds(&first, now).unwrap();
        assert_eq!(
            rows(),
            [
                row("http://a.example/", true, None, 600, "x,y"),
                row("http://b.example/", true, Some("B"), 600, ""),
            ]
        );
        // The same list again (a restart) writes nothing.
        let before = store.rows_changed();
        store.sync_feeds(&first, now).unwrap();
        assert_eq!(store.rows_changed(), before);

        let a = feed("http://a.example/", None, 600, &["y", "z"]);
        let c = feed("http://c.example/", None, 600, &["x"]);
        let steps = [
            // Changed tags, title and interval; a new feed.
            (
                vec![
                    a.clone(),
                    feed("http://b.example/", Some("B2"), 300, &[]),
                    c.clone(),
                ],
                [true, true, true],
            ),
            // Feeds left out are deactivated ...
            (vec![a.clone()], [true, false, false]),
            // ... and one listed again comes back, as it was.
            (vec![c.clone()], [false, false, true]),
        ];
        for (list, active) in steps {
            store.sync_feeds(&list, now).unwrap();
            assert_eq!(
                rows(),
                [
                    row("http://a.example/", active[0], None, 600, "y,z"),
                    row("http://b.example/", active[1], Some("B2"), 300, ""),
                    row("http://c.example/", active[2], None, 600, "x"),
                ]
            );
        }
    }

    #[test]
    fn removed_feeds_are_deactivated_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("r.db")).unwrap();
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
