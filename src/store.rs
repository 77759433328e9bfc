//! The store: the narrow interface the rest of the daemon uses (sync the
//! configured feeds, claim due feeds, save a poll, query stories), and the
//! backends that implement it, each a folder of its own below this one. Only
//! the backends hold SQL; nothing outside `store` knows which one runs.

use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

mod entries;
mod feeds;
mod fetch_state;
mod ops;
pub(crate) mod postgres;
mod publishing;
mod retention;
mod search;
mod sqlite;
mod status;
mod stories;
pub(crate) mod story_index;
pub mod transfer;
mod websub;

pub use entries::{Entries, PolledDocument};
pub(crate) use feeds::distinct_feeds;
pub use feeds::{AppliedFeedSet, Feeds, feed_set_digest};
pub use fetch_state::{Failures, FetchState, Moved, PollRecord};
pub use ops::{Ops, OpsSnapshot, Subscription};
pub use publishing::{Cursor, FeedView, PageStart, Publishing, SearchView, StoryFilter, StoryPage};
pub use retention::{PruneCounts, Retention, RetentionPolicy};
pub use search::Search;
pub use status::{HISTORY_PER_FEED, Status};
pub use stories::{FeedRank, Stories};
pub use websub::{HubSubscriber, PushTarget, WebSub, WebSubStatus, WebSubTask, WebSubWork};

/// Every part of the interface, for code that calls a backend directly.
#[allow(unused_imports)]
pub(crate) mod prelude {
    pub use super::{
        Entries, Feeds, FetchState, Maintenance, Ops, Publishing, Retention, Search, Status,
        Stories, WebSub,
    };
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL said no, or could not be reached (never with the password).
    #[error("database: {0}")]
    Postgres(String),
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
    /// The `[[feed]]` sets its own interval: poll at it, not at the adaptive one.
    pub fixed_interval: bool,
}

/// How long a daemon's claim on a due feed lasts (on a backend several
/// daemons share) unless renewed: a daemon that dies loses its feeds to the
/// others this long after its last renewal at the latest (a daemon starting
/// on the same machine takes them at once). Schedulers renew the claims of
/// the feeds they still hold five times per lease.
pub const CLAIM_LEASE: Duration = Duration::from_secs(60);

/// What one poll added and changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaveCounts {
    pub new: usize,
    pub updated: usize,
}

/// The database as a whole: identity, schema, health.
pub trait Maintenance {
    /// How many writes this process has committed so far. Unchanged means
    /// nothing here wrote since; other processes' writes show only in
    /// `data_version`.
    fn local_writes(&self) -> u64;

    /// Blocks until every write queued so far is committed (or has failed).
    fn flush_writes(&self) -> Result<(), StoreError>;

    /// The schema version (number of applied migrations).
    fn schema_version(&self) -> Result<i64, StoreError>;

    /// The merged feed's permanent id, created on first use.
    fn river_id(&self) -> Result<String, StoreError>;

    /// Makes the database's files compact and durable on their own (SQLite:
    /// copies the whole WAL into the database file). Returns false if that
    /// could not be done now; the database is then still valid as it is.
    fn checkpoint(&self) -> Result<bool, StoreError>;

    /// The backend's own consistency check, "ok" when healthy.
    fn integrity_check(&self) -> Result<String, StoreError>;

    /// Whether several daemons may share this database (and so claim due
    /// feeds from one another): a scheduler then takes only what it can
    /// start soon, leaving the rest to the others.
    fn is_shared(&self) -> bool;
}

/// One storage backend: every part of the interface.
pub trait Backend:
    Maintenance
    + Entries
    + Feeds
    + FetchState
    + Ops
    + Publishing
    + Retention
    + Search
    + Status
    + Stories
    + WebSub
    + Send
    + Sync
    + Debug
{
}

impl<T> Backend for T where
    T: Maintenance
        + Entries
        + Feeds
        + FetchState
        + Ops
        + Publishing
        + Retention
        + Search
        + Status
        + Stories
        + WebSub
        + Send
        + Sync
        + Debug
{
}

/// The database, whichever backend holds it. Cheap to clone; every method
/// of the interface is called on it directly (it dereferences to the
/// backend). The methods block: from async code, go through [`Store::call`].
#[derive(Clone, Debug)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl std::ops::Deref for Store {
    type Target = dyn Backend;
    fn deref(&self) -> &(dyn Backend + 'static) {
        &*self.backend
    }
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and applies
    /// pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            backend: Arc::new(sqlite::Sqlite::open(path)?),
        })
    }

    /// Connects to the PostgreSQL database at `url` (failing within
    /// `connect_timeout`, naming host and port, never the password) and
    /// applies pending migrations.
    pub fn open_postgres(
        url: &str,
        connect_timeout: Duration,
        pool_size: usize,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            backend: Arc::new(postgres::Postgres::connect(
                url,
                connect_timeout,
                pool_size,
            )?),
        })
    }

    /// Opens the database a configuration names.
    pub fn open_configured(storage: &crate::config::StorageConfig) -> Result<Self, StoreError> {
        match storage.database() {
            crate::config::Database::Sqlite(path) => Self::open(&path),
            crate::config::Database::Postgres {
                url,
                connect_timeout,
                pool_size,
            } => Self::open_postgres(url.expose(), connect_timeout, pool_size),
        }
    }

    /// Waits until every write queued so far is committed (or has failed).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.call(|s| s.flush_writes()).await
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
}

/// Times are stored as whole seconds since the epoch, by every backend.
pub(crate) fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

pub(crate) fn from_ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}
