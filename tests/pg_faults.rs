//! PostgreSQL going away under a running daemon, and not being there at
//! start. Runs a PostgreSQL server of its own (the suite's shared one must
//! stay up for the other tests): initdb and pg_ctl from the binaries
//! `scripts/pg-test-server.sh` names in NEWSRIVER_TEST_PG_BIN.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{FixtureServer, Route};

/// A PostgreSQL server for one test, stopped and removed when dropped.
struct Server {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

fn as_server(bin: &Path, tool: &str) -> Command {
    // PostgreSQL refuses to run as root: run it as the package's user then.
    if rustix::process::geteuid().is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        command
    } else {
        Command::new(bin.join(tool))
    }
}

impl Server {
    fn start() -> Self {
        let bin = PathBuf::from(std::env::var("NEWSRIVER_TEST_PG_BIN").unwrap_or_else(|_| {
            panic!("PostgreSQL tests need NEWSRIVER_TEST_PG_BIN: run ./scripts/test.sh")
        }));
        let dir = tempfile::Builder::new()
            .prefix("nr-pg-fault")
            .tempdir_in("/tmp")
            .unwrap();
        Command::new("chmod")
            .arg("777")
            .arg(dir.path())
            .status()
            .unwrap();
        let data = dir.path().join("data");
        let ok = as_server(&bin, "initdb")
            .args(["-U", "postgres", "-A", "trust", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "initdb");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Self { bin, dir, port };
        server.up();
        server
    }

    fn ctl(&self, args: &[&str]) {
        let ok = as_server(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "pg_ctl {args:?}");
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.ctl(&[
            "-w",
            "-l",
            &format!("{}/log", self.dir.path().display()),
            "-o",
            &options,
            "start",
        ]);
    }

    fn down(&self) {
        self.ctl(&["-w", "-m", "fast", "stop"]);
    }

    fn url(&self) -> String {
        format!(
            "postgres://postgres:s3cret@127.0.0.1:{}/postgres",
            self.port
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = as_server(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn rss(items: &[&str]) -> String {
    let items: String = items
        .iter()
        .map(|t| {
            format!(
                "<item><title>{t}</title><guid>{t}</guid><link>http://o.example/{t}</link></item>"
            )
        })
        .collect();
    format!(
        "<rss version=\"2.0\"><channel><title>Outlet</title><link>http://o.example/</link>{items}</channel></rss>"
    )
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    match reqwest::get(format!("http://{addr}{path}")).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

async fn wait_for(what: &str, secs: u64, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_rides_out_a_database_restart() {
    let db = Server::start();
    let farm = FixtureServer::start().await;
    farm.set(
        "/feed.xml",
        Route::feed(rss(&["first"]), "application/rss+xml"),
    );
    let dir = tempfile::tempdir().unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = dir.path().join("river.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"{addr}\"\n[storage]\nurl = \"{}\"\nconnect_timeout = \"2s\"\n\
             [fetch]\njitter = 0.0\n[[feed]]\nurl = \"{}\"\ninterval = \"1s\"\n",
            db.url(),
            farm.url("/feed.xml")
        ),
    )
    .unwrap();
    let mut daemon = common::process::newsriver()
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first entry served", 30, async || {
        get(addr, "/feed.atom").await.1.contains("first")
    })
    .await;
    let (status, health) = get(addr, "/healthz").await;
    assert_eq!(
        (status, health.contains("database: ok")),
        (200, true),
        "{health}"
    );
    let (_, river) = get(addr, "/feed.atom").await;

    db.down();
    // Still serving what it rendered; the health check says why not healthy.
    wait_for("/healthz reports the database down", 20, async || {
        let (status, text) = get(addr, "/healthz").await;
        status == 503 && !text.contains("database: ok")
    })
    .await;
    let (status, during) = get(addr, "/feed.atom").await;
    assert_eq!(status, 200);
    assert_eq!(during, river);
    assert!(!get(addr, "/healthz").await.1.contains("s3cret"));

    // Back: polls resume and store what the outlet published meanwhile.
    farm.set(
        "/feed.xml",
        Route::feed(rss(&["first", "second"]), "application/rss+xml"),
    );
    db.up();
    wait_for("the entry published during the outage", 40, async || {
        get(addr, "/feed.atom").await.1.contains("second")
    })
    .await;
    wait_for("healthy again", 20, async || {
        get(addr, "/healthz").await.0 == 200
    })
    .await;
    common::process::kill("-TERM", &daemon);
    daemon.wait().unwrap();
    let store = newsriver::Store::open_postgres(&db.url(), Duration::from_secs(5), 1).unwrap();
    assert_eq!(store.entry_count().unwrap(), 2);
    assert_eq!(store.duplicate_entries().unwrap(), 0);
}

#[test]
fn an_unreachable_database_at_start_is_a_prompt_error_naming_it() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("river.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\nurl = \"postgres://river:s3cret@127.0.0.1:{port}/news\"\nconnect_timeout = \"2s\"\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let out = common::process::newsriver()
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
