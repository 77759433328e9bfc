//! The store backend the tests run on: `NEWSRIVER_TEST_BACKEND` is `sqlite`
//! (the default) or `postgres`. The same test sources run on either; with
//! `postgres`, each database file a test names becomes a fresh database on
//! the throw-away server `scripts/test.sh` starts (`NEWSRIVER_TEST_DATABASE_URL`),
//! the same one each time the test names the same file (a restart, a CLI run
//! then a look at the store).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use newsriver::Store;
use newsriver::store::StoreError;

/// The backends the tests can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backend this run of the tests is for.
pub fn backend() -> Backend {
    match std::env::var("NEWSRIVER_TEST_BACKEND").as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => Backend::Sqlite,
        Ok("postgres") => Backend::Postgres,
        Ok(other) => panic!("NEWSRIVER_TEST_BACKEND is sqlite or postgres, not {other:?}"),
    }
}

static DATABASES: LazyLock<Mutex<HashMap<PathBuf, String>>> = LazyLock::new(Mutex::default);

/// The PostgreSQL database standing for the file `path`: created on first use.
pub fn database_for(path: &Path) -> String {
    let mut known = DATABASES.lock().unwrap_or_else(|p| p.into_inner());
    known
        .entry(path.to_path_buf())
        .or_insert_with(fresh_database)
        .clone()
}

/// A new, empty database on the test server; its URL. Fails the test (never
/// skips it) when there is no server.
pub fn fresh_database() -> String {
    let admin = std::env::var("NEWSRIVER_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "PostgreSQL tests need NEWSRIVER_TEST_DATABASE_URL: run ./scripts/test.sh, \
             which starts a throw-away server"
        )
    });
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = format!(
        "nr_{}_{}_{:06x}",
        std::process::id(),
        COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
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
                .expect("the test PostgreSQL server answers");
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

/// Opens the store a test keeps in `path`, on this run's backend.
pub fn open_store(path: &Path) -> Result<Store, StoreError> {
    match backend() {
        Backend::Sqlite => Store::open(path),
        Backend::Postgres => Store::open_postgres(&database_for(path), Duration::from_secs(10), 4),
    }
}

/// The `[storage]` table of a configuration whose database is `path`.
pub fn storage_toml(path: &Path) -> String {
    match backend() {
        Backend::Sqlite => format!("[storage]\npath = {:?}\n", path),
        Backend::Postgres => format!("[storage]\nurl = {:?}\n", database_for(path)),
    }
}
