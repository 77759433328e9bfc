//! The PostgreSQL backend: for a river that outgrows one machine, several
//! daemons with the same TOML sharing one database.
//!
//! The store's interface is synchronous (the daemon calls it from blocking
//! threads, the CLI and tests from anywhere), while tokio-postgres is
//! asynchronous. So the backend owns a small runtime of its own ("newsriver-pg",
//! two workers) holding the connection pool (deadpool-postgres); each method
//! sends its query as a future to that runtime and waits on a plain channel.
//! That works from any thread, inside another runtime or not, where blocking
//! on a future would panic.
//!
//! Migrations: versioned folders in `migrations/postgres/NN-name/up.sql`,
//! applied at start-up in order, each in its own transaction, while holding
//! a session advisory lock, so daemons starting together migrate once (the
//! others wait, then find nothing to do). refinery would do the bookkeeping,
//! but its tokio-postgres driver brings native-tls (OpenSSL) into a tree
//! that speaks rustls everywhere else; the runner here is a loop over
//! `include_dir` under that lock.
//!
//! Secrets: the URL's password reaches tokio-postgres's config and nothing
//! else; every error here names the server as host:port.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::pin::Pin;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use include_dir::{Dir, include_dir};
use tokio_postgres::Row;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::types::FromSql;

use super::StoreError;

mod entries;
mod feeds;
mod ops;
mod publishing;
mod search;
mod status;
mod websub;

/// A transaction of the pool's.
pub(crate) type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// The statements a poll runs, prepared once per connection (deadpool's
/// statement cache) rather than at every call: one round trip a statement
/// instead of two. For SQL whose text is fixed; statements whose text
/// varies with what a reader asks (searches, filters) are not kept.
pub(super) mod cached {
    use tokio_postgres::types::ToSql;
    use tokio_postgres::{Error, Row};

    use super::Tx;

    type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

    pub(crate) async fn execute(tx: &Tx<'_>, sql: &str, params: Params<'_>) -> Result<u64, Error> {
        let statement = tx.prepare_cached(sql).await?;
        tx.execute(&statement, params).await
    }

    pub(crate) async fn query(
        tx: &Tx<'_>,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, Error> {
        let statement = tx.prepare_cached(sql).await?;
        tx.query(&statement, params).await
    }

    pub(crate) async fn query_one(
        tx: &Tx<'_>,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Row, Error> {
        let statement = tx.prepare_cached(sql).await?;
        tx.query_one(&statement, params).await
    }

    pub(crate) async fn query_opt(
        tx: &Tx<'_>,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, Error> {
        let statement = tx.prepare_cached(sql).await?;
        tx.query_opt(&statement, params).await
    }
}
/// A connection of the pool's.
pub(super) type Conn = deadpool_postgres::Client;
/// The queries of one store method, borrowing the transaction or connection.
pub(super) type Work<'a, R> = Pin<Box<dyn Future<Output = Result<R, StoreError>> + Send + 'a>>;

/// Column `i` of a row, as `T`; a column of another type is an error, not
/// a panic.
pub(crate) fn get<'r, T: FromSql<'r>>(r: &'r Row, i: usize) -> Result<T, StoreError> {
    Ok(r.try_get(i)?)
}

static MIGRATIONS_DIR: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/migrations/postgres");

/// The advisory lock key held while migrating ("newsrivr" in ASCII).
const MIGRATION_LOCK: i64 = 0x6e65_7773_7269_7672;

/// How long a query waits for a free connection of the pool.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// The backend's runtime, shut down without blocking when the store goes
/// (dropping a runtime inside another one's task would panic).
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The PostgreSQL database.
pub(crate) struct Postgres {
    pool: Pool,
    runtime: Arc<OwnRuntime>,
    /// host:port, for messages.
    server: String,
    /// This process's committed writes (see `Maintenance::local_writes`).
    writes: Arc<AtomicU64>,
    /// Names this daemon in its claims on due feeds.
    daemon: String,
    /// How entries are told apart and merged into stories.
    dedup: Arc<std::sync::RwLock<crate::identity::DedupSettings>>,
    /// Per-host politeness all daemons keep together: (requests at once, gap).
    politeness: Arc<std::sync::RwLock<(usize, Duration)>>,
    /// Recent stories by LSH band, for near-duplicate matching.
    story_cache: Arc<std::sync::Mutex<entries::StoryCache>>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("server", &self.server)
            .field("daemon", &self.daemon)
            .finish()
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The message and the server's detail; never the connection string.
        let detail = match (e.as_db_error(), std::error::Error::source(&e)) {
            (Some(db), _) => format!("{}: {}", db.severity(), db.message()),
            (None, Some(cause)) => format!("{e}: {cause}"),
            (None, None) => e.to_string(),
        };
        StoreError::Postgres(detail)
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => StoreError::Postgres(format!("connection pool: {other}")),
        }
    }
}

/// The connection settings of a `postgres://` URL: what tokio-postgres
/// takes, and host:port for messages.
fn settings(
    url: &str,
    connect_timeout: Duration,
) -> Result<(tokio_postgres::Config, String, bool), StoreError> {
    let bad = |why: String| StoreError::Postgres(format!("the database URL {why}"));
    let mut parsed = url::Url::parse(url).map_err(|e| bad(format!("is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(bad(format!(
            "must start with postgres:// or postgresql://, not {}://",
            parsed.scheme()
        )));
    }
    let host = parsed.host_str().unwrap_or("localhost").to_string();
    let server = format!("{host}:{}", parsed.port().unwrap_or(5432));
    // tokio-postgres knows disable/prefer/require; verify-ca and verify-full
    // are require with the certificate checked (see `tls`), as libpq does.
    let mut ssl = None;
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "sslmode" {
                ssl = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    parsed.set_query(None);
    if !pairs.is_empty() {
        parsed.query_pairs_mut().extend_pairs(pairs);
    }
    let mut config = tokio_postgres::Config::from_str(parsed.as_str())
        .map_err(|e| bad(format!("cannot be read ({e})")))?;
    let (mode, verify) = match ssl.as_deref() {
        None | Some("prefer") | Some("allow") => (SslMode::Prefer, false),
        Some("disable") => (SslMode::Disable, false),
        Some("require") => (SslMode::Require, false),
        Some("verify-ca") | Some("verify-full") => (SslMode::Require, true),
        Some(other) => return Err(bad(format!("has an unknown sslmode {other:?}"))),
    };
    config
        .ssl_mode(mode)
        .connect_timeout(connect_timeout)
        .application_name("newsriver");
    if config.get_hosts().is_empty() {
        config.host("localhost");
    }
    Ok((config, server, verify))
}

/// TLS by rustls. With `verify` (sslmode verify-ca/verify-full) the
/// server's certificate is checked by the platform's verifier (the system's
/// roots); otherwise (prefer, require) the link is encrypted and the
/// certificate taken as it is, as libpq does: Debian's own servers present
/// a self-signed one.
fn tls(verify: bool) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls_platform_verifier::ConfigVerifierExt;
    let failed = |e: rustls::Error| StoreError::Postgres(format!("cannot set up TLS: {e}"));
    let config = if verify {
        rustls::ClientConfig::with_platform_verifier().map_err(failed)?
    } else {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(failed)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
            .with_no_client_auth()
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Takes any server certificate (sslmode prefer and require), still
/// checking that the handshake is signed by it.
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl Postgres {
    /// Connects to the database at `url`, failing within `connect_timeout`
    /// if the server does not answer (the error names host and port), and
    /// applies pending migrations.
    pub(crate) fn connect(
        url: &str,
        connect_timeout: Duration,
        pool_size: usize,
    ) -> Result<Self, StoreError> {
        let (config, server, verify) = settings(url, connect_timeout)?;
        let unix_socket = config
            .get_hosts()
            .iter()
            .any(|h| matches!(h, Host::Unix(_)));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("newsriver-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Task(format!("cannot start the PostgreSQL runtime: {e}")))?;
        let manager = Manager::from_config(
            config,
            tls(verify)?,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(connect_timeout))
            .build()
            .map_err(|e| StoreError::Postgres(format!("cannot build the connection pool: {e}")))?;
        let store = Self {
            pool,
            runtime: Arc::new(OwnRuntime(Some(runtime))),
            server: if unix_socket {
                format!("{server} (Unix socket)")
            } else {
                server
            },
            writes: Arc::default(),
            daemon: daemon_name(),
            dedup: Arc::default(),
            politeness: Arc::new(std::sync::RwLock::new((1, Duration::ZERO))),
            story_cache: Arc::default(),
        };
        let pool = store.pool();
        let server = store.server.clone();
        store.run(async move {
            let mut client = pool.get().await.map_err(|e| {
                StoreError::Postgres(format!(
                    "cannot connect to PostgreSQL at {server}: {}",
                    StoreError::from(e)
                ))
            })?;
            migrate(&mut client).await?;
            release_dead_neighbours(&client).await
        })?;
        Ok(store)
    }

    /// The pool, to take into a query's future.
    pub(crate) fn pool(&self) -> Pool {
        self.pool.clone()
    }

    /// Runs `fut` on the backend's runtime and waits for it: callable from
    /// any thread.
    pub(crate) fn run<R, F>(&self, fut: F) -> Result<R, StoreError>
    where
        F: Future<Output = Result<R, StoreError>> + Send + 'static,
        R: Send + 'static,
    {
        let runtime = self
            .runtime
            .0
            .as_ref()
            .ok_or_else(|| StoreError::Task("the PostgreSQL runtime has stopped".into()))?;
        let (done, result) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = done.send(fut.await);
        });
        result
            .recv()
            .map_err(|_| StoreError::Task("a PostgreSQL query was abandoned".into()))?
    }

    /// Runs `f` in a transaction of its own and commits it; the river's
    /// version moves with it (see `river_version` in the schema): every
    /// daemon's render cache reads it at least once a second
    /// (`server::documents::EXTERNAL_CHECK`) and so follows the others' writes.
    pub(crate) fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: for<'t> FnOnce(&'t Tx<'t>) -> Work<'t, R> + Send + 'static,
        R: Send + 'static,
    {
        self.transaction(true, f)
    }

    /// Like [`Postgres::write`], for a write that changes nothing any page
    /// shows (a claim on due feeds): the river's version stays.
    pub(crate) fn write_unseen<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: for<'t> FnOnce(&'t Tx<'t>) -> Work<'t, R> + Send + 'static,
        R: Send + 'static,
    {
        self.transaction(false, f)
    }

    fn transaction<R, F>(&self, seen: bool, f: F) -> Result<R, StoreError>
    where
        F: for<'t> FnOnce(&'t Tx<'t>) -> Work<'t, R> + Send + 'static,
        R: Send + 'static,
    {
        let pool = self.pool();
        let value = self.run(async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let value = f(&tx).await?;
            if seen {
                // Last, so the row is locked for the commit alone.
                cached::execute(&tx, "UPDATE river_version SET version = version + 1", &[]).await?;
            }
            tx.commit().await?;
            Ok(value)
        })?;
        if seen {
            self.wrote();
        }
        Ok(value)
    }

    /// Runs `f`'s queries on a pooled connection, outside any transaction.
    pub(crate) fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: for<'c> FnOnce(&'c Conn) -> Work<'c, R> + Send + 'static,
        R: Send + 'static,
    {
        let pool = self.pool();
        self.run(async move {
            let client = pool.get().await?;
            f(&client).await
        })
    }

    /// The one number `sql` (a `SELECT COUNT(*)`) reads.
    pub(crate) fn count(&self, sql: &'static str) -> Result<u64, StoreError> {
        self.read(move |client| {
            Box::pin(async move {
                let row = client.query_one(sql, &[]).await?;
                Ok(get::<i64>(&row, 0)?.max(0) as u64)
            })
        })
    }

    /// Counts one committed write of this process.
    pub(crate) fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::Release);
    }

    pub(crate) fn local_write_count(&self) -> u64 {
        self.writes.load(Ordering::Acquire)
    }

    /// (requests to one host at once, least gap between their starts).
    pub(crate) fn politeness(&self) -> (usize, Duration) {
        *self.politeness.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_politeness_to(&self, per_host: usize, gap: Duration) {
        *self.politeness.write().unwrap_or_else(|p| p.into_inner()) = (per_host.max(1), gap);
    }

    /// This daemon's name in its claims.
    pub(crate) fn daemon(&self) -> &str {
        &self.daemon
    }

    /// The number of migrations applied.
    pub(crate) fn applied_migrations(&self) -> Result<i64, StoreError> {
        let pool = self.pool();
        self.run(async move {
            let client = pool.get().await?;
            let row = client
                .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
                .await?;
            Ok(row.get(0))
        })
    }
}

/// Lets go of the claims of daemons that ran on this machine and are gone
/// (their process no longer exists): a daemon restarted after a crash polls
/// its feeds at once instead of after the lease. Claims of other machines'
/// daemons wait for their lease.
pub(super) async fn release_dead_neighbours(
    client: &impl deadpool_postgres::GenericClient,
) -> Result<(), StoreError> {
    let host = crate::store::feeds::hostname();
    let rows = client
        .query(
            // Claimed rows only, through the partial index `feeds_claimed`.
            "SELECT DISTINCT claimed_by FROM feeds
             WHERE claim_until IS NOT NULL AND claimed_by LIKE $1",
            &[&format!(
                "{}:%",
                host.replace('%', "\\%").replace('_', "\\_")
            )],
        )
        .await?;
    for r in &rows {
        let name: String = get(r, 0)?;
        let pid = name.rsplit(':').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            // Rows locked in id order, as every multi-row write of feeds does.
            let released = client
                .execute(
                    &format!(
                        "UPDATE feeds SET claimed_by = NULL, claim_until = NULL WHERE {}",
                        feeds::CLAIMED_BY_IN_ORDER
                    ),
                    &[&name],
                )
                .await?;
            tracing::info!(daemon = %name, feeds = released, "took back the claims of a daemon of this machine that is gone");
        }
    }
    Ok(())
}

/// host, process id and a random part: unique among daemons, readable in
/// `feeds.claimed_by`.
fn daemon_name() -> String {
    format!(
        "{}:{:08x}",
        crate::store::feeds::this_process(),
        rand::random::<u32>()
    )
}

/// Every migration folder, in order: (version, name, SQL).
fn migrations() -> Result<Vec<(i64, &'static str, &'static str)>, StoreError> {
    let mut list = Vec::new();
    for dir in MIGRATIONS_DIR.dirs() {
        let name = dir
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let version = name
            .split('-')
            .next()
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| StoreError::Migration(format!("{name}: no NN- version prefix")))?;
        let sql = dir
            .get_file(dir.path().join("up.sql"))
            .and_then(|f| f.contents_utf8())
            .ok_or_else(|| StoreError::Migration(format!("{name}: no up.sql")))?;
        list.push((version, name, sql));
    }
    list.sort_by_key(|m| m.0);
    Ok(list)
}

/// Applies pending migrations under the advisory lock.
async fn migrate(client: &mut deadpool_postgres::Client) -> Result<(), StoreError> {
    let list = migrations()?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let outcome = apply(client, &list).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    outcome?;
    unlocked?;
    Ok(())
}

async fn apply(
    client: &mut deadpool_postgres::Client,
    list: &[(i64, &'static str, &'static str)],
) -> Result<(), StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version    BIGINT PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at BIGINT NOT NULL
             )",
        )
        .await?;
    let applied: Vec<i64> = client
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if let Some(newest) = applied.iter().max()
        && list.iter().all(|m| m.0 < *newest)
    {
        return Err(StoreError::Migration(format!(
            "the database is at schema version {newest}, newer than this newsriver knows; \
             run the newer version"
        )));
    }
    for (version, name, sql) in list {
        if applied.contains(version) {
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(sql)
            .await
            .map_err(|e| StoreError::Migration(format!("{name}: {}", StoreError::from(e))))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at)
             VALUES ($1, $2, EXTRACT(EPOCH FROM now())::BIGINT)",
            &[version, name],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(migration = name, "applied a PostgreSQL migration");
    }
    Ok(())
}

/// A fresh, empty database on the test server (`scripts/test.sh` starts one
/// and names it in `NEWSRIVER_TEST_DATABASE_URL`): its URL. Panics (the test
/// fails, never skips) when there is no server.
#[cfg(test)]
pub(crate) fn test_database() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let admin = std::env::var("NEWSRIVER_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "PostgreSQL tests need NEWSRIVER_TEST_DATABASE_URL: run ./scripts/test.sh, \
             which starts a throw-away server"
        )
    });
    let name = format!(
        "nr_unit_{}_{}_{:06x}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>() & 0xff_ffff
    );
    let create = format!("CREATE DATABASE {name}");
    let url = admin.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("the test server answers");
            tokio::spawn(conn);
            client
                .batch_execute(&create)
                .await
                .expect("CREATE DATABASE");
        })
    })
    .join()
    .expect("creating a test database");
    let mut url = url::Url::parse(&admin).expect("the admin URL");
    url.set_path(&name);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(url: &str) -> Postgres {
        Postgres::connect(url, Duration::from_secs(10), 4).unwrap()
    }

    #[test]
    fn migrations_apply_once_even_when_daemons_start_together() {
        let url = test_database();
        let both: Vec<_> = (0..2)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || open(&url).applied_migrations().unwrap())
            })
            .collect();
        let expected = migrations().unwrap().len() as i64;
        for started in both {
            assert_eq!(started.join().unwrap(), expected);
        }
        // And again: nothing to do.
        assert_eq!(open(&url).applied_migrations().unwrap(), expected);
    }

    #[tokio::test]
    async fn queries_run_from_inside_another_runtime_and_from_plain_threads() {
        let store = open(&test_database());
        let pool = store.pool();
        let two: i32 = store
            .run(async move {
                let client = pool.get().await?;
                Ok(client.query_one("SELECT 1 + 1", &[]).await?.get(0))
            })
            .unwrap();
        assert_eq!(two, 2);
        let store = Arc::new(store);
        let on_thread = store.clone();
        let count = std::thread::spawn(move || on_thread.applied_migrations().unwrap())
            .join()
            .unwrap();
        assert!(count > 0);
        // Dropped inside a runtime without a panic.
        drop(store);
    }

    #[test]
    fn an_unreachable_server_is_a_quick_error_naming_it_and_not_the_password() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let started = std::time::Instant::now();
        let e = Postgres::connect(
            &format!("postgres://river:s3cret@127.0.0.1:{port}/news"),
            Duration::from_secs(2),
            2,
        )
        .unwrap_err()
        .to_string();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn the_servers_own_refusal_is_shown_without_the_password() {
        // The test server trusts every local user, so ask for a database
        // that does not exist instead: an error from the server itself.
        let mut url = url::Url::parse(&test_database()).unwrap();
        url.set_path("no_such_database");
        url.set_password(Some("s3cret")).unwrap();
        let e = Postgres::connect(url.as_str(), Duration::from_secs(5), 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no_such_database"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn urls_are_read_without_their_sslmode_reaching_tokio_postgres() {
        let (config, server, verify) = settings(
            "postgres://river:s3cret@db.example:6543/news?sslmode=verify-full&application_name=x",
            Duration::from_secs(3),
        )
        .unwrap();
        assert_eq!(server, "db.example:6543");
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
        assert!(verify);
        assert_eq!(config.get_dbname(), Some("news"));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(3)));
        let (config, server, verify) =
            settings("postgresql://db.example/news", Duration::from_secs(3)).unwrap();
        assert_eq!(server, "db.example:5432");
        assert_eq!((config.get_ssl_mode(), verify), (SslMode::Prefer, false));
    }

    #[test]
    fn bad_urls_are_clear_errors_that_never_show_the_password() {
        for (url, says) in [
            ("mysql://u:s3cret@h/db", "postgres://"),
            (
                "postgres://u:s3cret@h/db?sslmode=sometimes",
                "unknown sslmode",
            ),
            ("not a url s3cret", "is not a URL"),
        ] {
            let e = settings(url, Duration::from_secs(1))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("s3cret"), "{url}: {e}");
        }
    }

    /// Whether this store's connections are encrypted, as the server sees it.
    fn encrypted(store: &Postgres) -> bool {
        let pool = store.pool();
        store
            .run(async move {
                let client = pool.get().await?;
                let row = client
                    .query_one(
                        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                        &[],
                    )
                    .await?;
                get::<bool>(&row, 0)
            })
            .unwrap()
    }

    /// The test server speaks TLS with a self-signed certificate
    /// (scripts/pg-test-server.sh): prefer and require encrypt without
    /// checking it, disable does not encrypt, verify-full refuses it.
    #[test]
    fn tls_follows_the_sslmode_and_verify_full_checks_the_certificate() {
        let url = test_database();
        let with = |mode: &str| {
            Postgres::connect(&format!("{url}?sslmode={mode}"), Duration::from_secs(10), 1)
        };
        assert!(encrypted(&with("require").unwrap()));
        assert!(encrypted(&with("prefer").unwrap()));
        assert!(!encrypted(&with("disable").unwrap()));
        for mode in ["verify-full", "verify-ca"] {
            let refused = with(mode).unwrap_err().to_string();
            assert!(
                refused.to_lowercase().contains("certificate"),
                "{mode}: {refused}"
            );
            assert!(refused.contains("127.0.0.1"), "{mode}: {refused}");
        }
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        let list = migrations().unwrap();
        assert!(!list.is_empty());
        for (i, (version, _, _)) in list.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1);
        }
    }
}
