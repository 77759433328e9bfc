//! The operator's commands, through the binary: `opml import/export`, `feeds`
//! (table and JSON), JSON logs, SIGHUP reload, and a configured secret that
//! must never show up in anything the program prints or serves.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::{kill, lines_of, newsriver};
use common::{FixtureServer, Route};

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn run(args: &[&str], config: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_newsriver"));
    cmd.args(args).arg("--config").arg(config);
    cmd.env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// (url, tags) of every feed in an OPML document.
fn opml_set(text: &str) -> BTreeSet<(String, Vec<String>)> {
    newsriver::opml::parse(text)
        .unwrap()
        .into_iter()
        .map(|s| (s.url, s.tags))
        .collect()
}

const SUBSCRIPTIONS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Reader export</title></head>
  <body>
    <outline text="News">
      <outline type="rss" text="Wire" xmlUrl="https://wire.example/rss"/>
      <outline type="rss" text="Ledger" xmlUrl="https://ledger.example/feed.xml" htmlUrl="https://ledger.example/"/>
    </outline>
    <outline text="Tech">
      <outline type="rss" text="Gadgets &amp; Gizmos" xmlUrl="https://gadgets.example/atom"/>
    </outline>
    <outline type="rss" text="Loose" xmlUrl="https://loose.example/index.xml"/>
    <outline type="rss" text="Already here" xmlUrl="https://example.org/feed.xml"/>
  </body>
</opml>
"#;

#[tokio::test]
async fn opml_import_keeps_comments_and_export_gives_back_the_same_set() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("newsriver.toml");
    let original = "# My river — hand-written notes stay.\n\n[fetch]\ninterval = \"15m\"  # hourly is too slow\n\n[[feed]]\n# the one I started with\nurl = \"https://example.org/feed.xml\"\ntags = [\"News\"]\n";
    std::fs::write(&config, original).unwrap();
    let opml = dir.path().join("subscriptions.opml");
    std::fs::write(&opml, SUBSCRIPTIONS).unwrap();

    let out = run(&["opml", "import", opml.to_str().unwrap()], &config, &[]).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stdout.contains("added 4 feeds, skipped 1"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("skipped  https://example.org/feed.xml (already configured)"),
        "{}",
        out.stdout
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.starts_with(original),
        "comments and layout kept:\n{text}"
    );
    assert!(text.contains("# Imported from subscriptions.opml on "));
    assert!(run(&["check"], &config, &[]).await.ok);

    // Importing again adds nothing and leaves the file alone.
    let out = run(&["opml", "import", opml.to_str().unwrap()], &config, &[]).await;
    assert!(
        out.stdout.contains("added 0 feeds, skipped 5"),
        "{}",
        out.stdout
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);

    let out = run(&["opml", "export"], &config, &[]).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stdout.contains("<opml version=\"2.0\">"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("text=\"Gadgets &amp; Gizmos\""),
        "{}",
        out.stdout
    );
    let mut expected = opml_set(SUBSCRIPTIONS);
    expected.remove(&("https://example.org/feed.xml".to_string(), vec![]));
    expected.insert(("https://example.org/feed.xml".into(), vec!["News".into()]));
    assert_eq!(opml_set(&out.stdout), expected);
}

#[tokio::test]
async fn feeds_prints_a_table_and_json_of_every_feed() {
    let server = FixtureServer::start().await;
    server.set("/rss2.xml", Route::fixture("rss2.xml"));
    server.set("/gone.xml", Route::Status(503));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    // A fixed 30-minute interval (not the adaptive one), for the NEXT POLL column.
    let body = format!(
        "[fetch]\nadaptive = false\n[[feed]]\nurl = \"{}\"\n[[feed]]\nurl = \"{}\"\ntitle = \"Gone Gazette\"\n",
        server.url("/rss2.xml"),
        server.url("/gone.xml")
    );
    std::fs::write(&config, &body).unwrap();

    let out = run(&["feeds"], &config, &[]).await;
    assert!(!out.ok);
    assert!(out.stderr.contains("no database yet"), "{}", out.stderr);

    assert!(run(&["poll", "--once"], &config, &[]).await.ok);
    let out = run(&["feeds"], &config, &[]).await;
    assert!(out.ok, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(
        lines[0].starts_with("FEED")
            && lines[0].contains("LAST ERROR")
            && lines[0].ends_with("NEXT POLL"),
        "{}",
        out.stdout
    );
    let ledger = lines
        .iter()
        .find(|l| l.starts_with("Northfield Ledger"))
        .unwrap();
    assert!(
        ledger.contains(" ok ") && ledger.contains(" 4 "),
        "{ledger}"
    );
    assert!(
        ledger.contains(" now ") || ledger.contains("s ago"),
        "{ledger}"
    );
    assert!(
        ledger.contains("in 2") || ledger.contains("in 3"),
        "next poll in ~30m: {ledger}"
    );
    let gone = lines
        .iter()
        .find(|l| l.starts_with("Gone Gazette"))
        .unwrap();
    assert!(
        gone.contains("failing") && gone.contains("never") && gone.contains("HTTP 503"),
        "{gone}"
    );

    let out = run(&["feeds", "--json"], &config, &[]).await;
    assert!(out.ok, "{}", out.stderr);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let ledger = rows.iter().find(|r| r["state"] == "ok").unwrap();
    assert_eq!(ledger["title"], "Northfield Ledger");
    assert_eq!(ledger["entries"], 4);
    assert_eq!(ledger["last_status"], 200);
    assert!(ledger["last_success_at"].is_string() && ledger["next_poll_at"].is_string());
    let gone = rows.iter().find(|r| r["state"] == "failing").unwrap();
    assert_eq!(gone["title"], "Gone Gazette");
    assert_eq!(gone["last_error"], "HTTP 503");
    assert_eq!(gone["failures"], 1);
    assert!(gone["last_success_at"].is_null());

    // A feed taken out of the configuration shows as removed, entries kept.
    std::fs::write(
        &config,
        format!("[[feed]]\nurl = \"{}\"\n", server.url("/gone.xml")),
    )
    .unwrap();
    assert!(run(&["poll", "--once"], &config, &[]).await.ok);
    let out = run(&["feeds", "--json"], &config, &[]).await;
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let ledger = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["title"] == "Northfield Ledger")
        .unwrap();
    assert_eq!(ledger["state"], "removed");
    assert_eq!(ledger["entries"], 4);
    assert!(ledger["next_poll_at"].is_null());
}

#[tokio::test]
async fn json_logs_carry_a_span_per_feed_poll() {
    let server = FixtureServer::start().await;
    server.set("/rss2.xml", Route::fixture("rss2.xml"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!("[[feed]]\nurl = \"{}\"\n", server.url("/rss2.xml")),
    )
    .unwrap();
    let out = run(
        &["--log-format", "json", "poll", "--once"],
        &config,
        &[("RUST_LOG", "info")],
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    let polls: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"))
        })
        .filter(|v| v["fields"]["message"] == "poll: stored")
        .collect();
    assert_eq!(polls.len(), 1, "{}", out.stderr);
    assert_eq!(polls[0]["level"], "INFO");
    assert_eq!(polls[0]["fields"]["new"], 4);
    assert_eq!(polls[0]["span"]["name"], "poll");
    assert_eq!(polls[0]["span"]["feed"], server.url("/rss2.xml"));
}

/// Lines of a child's stderr, read on a thread.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    lines_of(child.stderr.take().unwrap())
}

fn wait_for(
    rx: &std::sync::mpsc::Receiver<String>,
    needle: &str,
    seen: &mut Vec<String>,
) -> String {
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no line with {needle:?} in:\n{}", seen.join("\n")));
        seen.push(line.clone());
        if line.contains(needle) {
            return line;
        }
    }
}

#[test]
fn sighup_reloads_and_a_broken_file_is_logged_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let mut child = newsriver()
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stderr_lines(&mut child);
    let mut seen = Vec::new();
    // Once this is logged, the SIGHUP handler is in place.
    wait_for(&rx, "the configuration reloads on change", &mut seen);

    kill("-HUP", &child);
    wait_for(&rx, "SIGHUP: reloading the configuration", &mut seen);
    wait_for(
        &rx,
        "configuration reloaded: 0 feed(s) added, 0 removed",
        &mut seen,
    );

    // Broken by an edit: the watcher notices and names file, line and column.
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\n[fetch]\nintervall = \"5m\"\n",
    )
    .unwrap();
    let line = wait_for(&rx, "configuration not reloaded", &mut seen);
    assert!(
        line.contains(&format!(
            "{}:4:1: unknown field `intervall`",
            config.display()
        )),
        "{line}"
    );
    // Still serving, and it stops cleanly.
    kill("-TERM", &child);
    let status = child.wait().unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn a_configured_secret_never_appears_in_any_output() {
    const PASSWORD: &str = "pw-Zq81-never-print-me";
    const HEADER: &str = "hdr-Kx42-never-print-me";
    const ADMIN: &str = "adm-Vb77-never-print-me";
    let server = FixtureServer::start().await;
    server.set("/private.xml", Route::fixture("rss2.xml"));
    server.set("/denied.xml", Route::Status(401));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\
         [access]\nadmin_token = {{ env = \"TEST_NEWSRIVER_ADMIN\" }}\n\
         [[feed]]\nurl = \"{}\"\nauth = {{ username = \"reader\", password = {{ env = \"TEST_FEED_PASSWORD\" }} }}\n\
         headers = {{ X-Api-Key = \"{HEADER}\" }}\n\
         [[feed]]\nurl = \"{}\"\nauth = {{ username = \"reader\", password = \"{PASSWORD}\" }}\n",
        server.url("/private.xml"),
        server.url("/denied.xml")
    );
    std::fs::write(&config, &toml).unwrap();
    let env = [
        ("TEST_NEWSRIVER_ADMIN", ADMIN),
        ("TEST_FEED_PASSWORD", PASSWORD),
        ("RUST_LOG", "trace"),
    ];
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut record = |what: &str, out: &Output| {
        outputs.push((format!("{what} stdout"), out.stdout.clone()));
        outputs.push((format!("{what} stderr"), out.stderr.clone()));
    };

    let out = run(&["check"], &config, &env).await;
    assert!(out.ok, "{}", out.stderr);
    record("check", &out);
    for format in ["human", "json"] {
        let out = run(&["--log-format", format, "poll", "--once"], &config, &env).await;
        // The second poll finds the same body: unchanged, counted as not modified.
        assert!(
            out.stdout.contains("1 ok, 0 not modified, 1 failed")
                || out.stdout.contains("0 ok, 1 not modified, 1 failed"),
            "{}",
            out.stdout
        );
        record(&format!("poll ({format} logs)"), &out);
    }
    // The credentials did reach the feed server.
    let sent = &server.seen("/private.xml")[0].headers;
    assert_eq!(sent["x-api-key"], HEADER);
    assert!(
        sent["authorization"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );

    record("feeds", &run(&["feeds"], &config, &env).await);
    record(
        "feeds --json",
        &run(&["feeds", "--json"], &config, &env).await,
    );
    record(
        "opml export",
        &run(&["opml", "export"], &config, &env).await,
    );
    // A bad header value is reported without its value.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "[[feed]]\nurl = \"https://a.example/\"\nheaders = {{ X-Api-Key = \"{HEADER}\\n\" }}\n"
        ),
    )
    .unwrap();
    let out = run(&["check"], &bad, &env).await;
    assert!(
        !out.ok && out.stderr.contains("header value"),
        "{}",
        out.stderr
    );
    record("check (bad header)", &out);

    // The daemon: its log, and everything it serves (to a holder of the token).
    let mut child = Command::new(env!("CARGO_BIN_EXE_newsriver"))
        .args(["run", "--config"])
        .arg(&config)
        .envs(env)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stderr_lines(&mut child);
    let mut log = Vec::new();
    let line = wait_for(&rx, "/feed.atom", &mut log);
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .trim_end_matches("feed.atom")
        .to_string();
    let client = reqwest::Client::new();
    for path in [
        "feed.atom",
        "",
        "feeds.opml",
        "metrics",
        "healthz",
        "status",
    ] {
        let body = client
            .get(format!("{base}{path}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        outputs.push((format!("GET /{path}"), body));
    }
    let reload = client
        .post(format!("{base}admin/reload"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), 200);
    outputs.push(("POST /admin/reload".into(), reload.text().await.unwrap()));
    kill("-TERM", &child);
    assert!(child.wait().unwrap().success());
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        log.push(line);
    }
    outputs.push(("run stderr".into(), log.join("\n")));

    let everything: usize = outputs.iter().map(|(_, text)| text.len()).sum();
    assert!(
        everything > 10_000,
        "outputs were captured ({everything} bytes)"
    );
    for (what, text) in &outputs {
        for secret in [PASSWORD, HEADER, ADMIN] {
            assert!(!text.contains(secret), "{what} shows a secret:\n{text}");
        }
        // Nor its base64 form inside a logged Authorization header.
        assert!(
            !text.contains("cmVhZGVyOnB3LVpxODEtbmV2ZXItcHJpbnQtbWU"),
            "{what} shows basic auth"
        );
    }
}

#[cfg(unix)]
#[test]
fn run_tells_systemd_when_it_is_ready_and_when_it_stops() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let mut child = newsriver()
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).unwrap();
    assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), "READY=1\n");
    kill("-TERM", &child);
    let n = socket.recv(&mut buf).unwrap();
    assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), "STOPPING=1\n");
    assert!(child.wait().unwrap().success());
}
