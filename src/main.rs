//! The `newsriver` command: a thin shell over the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use newsriver::Config;
use newsriver::scheduler::Summary;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "newsriver",
    version,
    about = "Polls RSS, Atom and JSON feeds and republishes one merged feed that credits every source"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format: `human` (the default on a terminal and elsewhere) or `json` (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: poll the configured feeds on schedule and serve the merged feed, until SIGTERM or SIGINT.
    Run {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Poll every configured feed once, store the results, print a summary and exit.
    Poll {
        /// Required: poll each feed once, then exit (the daemon is `run`).
        #[arg(long)]
        once: bool,
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Copy the configured SQLite river into an empty PostgreSQL database, every id, story, validator and schedule kept; then set `[storage] url` to it.
    Migrate {
        /// The TOML configuration file (its `[storage] path` is the river copied).
        #[arg(long, short)]
        config: PathBuf,
        /// The PostgreSQL database to copy into: postgres://user:password@host:port/database (or set NEWSRIVER_MIGRATE_TO, which keeps the password out of the process list).
        #[arg(long, env = "NEWSRIVER_MIGRATE_TO", hide_env_values = true)]
        to: String,
    },
    /// Validate a configuration file without starting anything.
    Check {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Show every feed's state from the database: title, state, last success, last error, entries, next poll.
    Feeds {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Print JSON (an array of objects) for scripts.
        #[arg(long)]
        json: bool,
        /// Only feeds in this state: failing, ok, new, throttled or retired.
        #[arg(long)]
        state: Option<String>,
        /// Only feeds with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only feeds whose URL is on this host.
        #[arg(long)]
        host: Option<String>,
        /// Only feeds whose title or URL contains this (`?q=` of /status).
        #[arg(long = "contains")]
        q: Option<String>,
    },
    /// Print the stored stories matching a query (newest first): date, source, title, link.
    Search {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Most stories to print.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// The query: words, "phrases", OR, -excluded, title:, author:, source:.
        query: String,
    },
    /// Find the feeds a site offers (its page's <link rel="alternate">, else the usual paths) and print a [[feed]] table for each.
    Discover {
        /// The site's address (or any page of it).
        url: String,
        /// Append the first feed found to this configuration file (the rest of the file is kept byte for byte); its [fetch] settings are used.
        #[arg(long)]
        add: Option<PathBuf>,
    },
    /// Import or export subscriptions as OPML.
    Opml {
        #[command(subcommand)]
        command: OpmlCommand,
    },
    /// Offline demo: serve bundled sample feeds on loopback, aggregate them and serve the merged feed.
    Demo {
        /// Where to serve the merged feed (use 127.0.0.1:0 for any free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
}

#[derive(Subcommand)]
enum OpmlCommand {
    /// Add the feeds of an OPML file to the configuration (comments and layout kept; folders become tags).
    Import {
        /// The OPML file, as exported by a feed reader.
        file: PathBuf,
        /// The TOML configuration file to add the feeds to.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Write the configured feeds as OPML 2.0 to stdout.
    Export {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// The progress bar of `poll --once`, while one is drawn: log lines are
/// printed above it instead of through it.
static PROGRESS_BAR: std::sync::OnceLock<indicatif::ProgressBar> = std::sync::OnceLock::new();

/// Stderr that steps around the progress bar.
struct LogWriter(Vec<u8>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let write = || {
            let _ = std::io::Write::write_all(&mut std::io::stderr(), &self.0);
        };
        match PROGRESS_BAR.get() {
            Some(bar) if !bar.is_finished() => bar.suspend(write),
            _ => write(),
        }
    }
}

fn stderr_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter(Vec::new()));
    match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Human => builder.with_ansi(stderr_is_terminal()).init(),
    }
}

/// Draws a bar on a terminal; elsewhere the per-feed log lines say the same.
#[derive(Default)]
struct Progress {
    /// How many feeds the pass set out to poll.
    total: std::sync::atomic::AtomicUsize,
}

impl newsriver::daemon::PollProgress for Progress {
    fn start(&self, feeds: usize) {
        self.total
            .store(feeds, std::sync::atomic::Ordering::Relaxed);
        if !stderr_is_terminal() {
            return;
        }
        let bar = indicatif::ProgressBar::new(feeds as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{elapsed:>4} [{bar:40}] {pos}/{len} feeds  {wide_msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        let _ = PROGRESS_BAR.set(bar);
    }

    fn done(&self, report: &newsriver::scheduler::PollReport) {
        if let Some(bar) = PROGRESS_BAR.get() {
            bar.set_message(report.url.clone());
            bar.inc(1);
        }
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled, so a signal that arrives while
/// the daemon starts up (after it told systemd it is ready) is not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(term) => {}
                () = wait(interrupt) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // With a progress bar on the terminal, the bar shows what info lines would.
    let quiet_poll = matches!(cli.command, Command::Poll { .. }) && stderr_is_terminal();
    init_logging(cli.log_format, if quiet_poll { "warn" } else { "info" });
    let result = match cli.command {
        Command::Check { config } => {
            return match load(&config) {
                Ok(c) => {
                    println!("{}: ok: {}", config.display(), c.summary());
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            };
        }
        Command::Migrate { config, to } => {
            let Ok(config) = load(&config) else {
                return ExitCode::from(2);
            };
            return migrate(&config, &to).await;
        }
        Command::Run { config } => {
            let path = config;
            let config = match load(&path) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match TcpListener::bind(config.server.listen).await {
                Ok(listener) => {
                    tracing::info!(
                        feeds = config.feeds.len(),
                        "serving the merged feed at http://{}/feed.atom",
                        listener.local_addr().map_or(config.server.listen, |a| a)
                    );
                    newsriver::daemon::run_with(config, Some(path), listener, shutdown_signal())
                        .await
                }
                Err(e) => Err(anyhow::anyhow!(
                    "cannot listen on {}: {e}",
                    config.server.listen
                )),
            }
        }
        Command::Poll { once, config } => {
            if !once {
                eprintln!(
                    "error: `poll` needs --once (to poll on a schedule, use `newsriver run`)"
                );
                return ExitCode::from(2);
            }
            let config = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let started = std::time::Instant::now();
            // SIGTERM or SIGINT (a cron job's timeout, Ctrl-C): start no more
            // polls, finish and store those under way, then exit; a second
            // signal exits at once.
            let (stop, stopping) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                shutdown_signal().await;
                eprintln!(
                    "stopping: no more polls start; those under way finish and are stored (signal again to quit now)"
                );
                let _ = stop.send(true);
                shutdown_signal().await;
                std::process::exit(130);
            });
            let stopped = stopping.clone();
            let progress = Progress::default();
            let polled = newsriver::daemon::poll_once_with(&config, &progress, stopping).await;
            match polled {
                Ok(reports) => {
                    if let Some(bar) = PROGRESS_BAR.get() {
                        bar.finish_and_clear();
                    }
                    let s = Summary::of(&reports);
                    println!(
                        "polled {} feeds in {:.2}s: {} ok, {} not modified, {} failed; {} new entries, {} updated",
                        reports.len(),
                        started.elapsed().as_secs_f64(),
                        s.ok,
                        s.not_modified,
                        s.failed,
                        s.new,
                        s.updated
                    );
                    if *stopped.borrow() {
                        let total = progress.total.load(std::sync::atomic::Ordering::Relaxed);
                        println!(
                            "stopped by a signal: {} feeds not polled",
                            total.saturating_sub(reports.len())
                        );
                        return ExitCode::from(130);
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        Command::Feeds {
            config,
            json,
            state,
            tag,
            host,
            q,
        } => {
            let filter = match newsriver::status::FeedFilter::new(
                state.as_deref(),
                tag.as_deref(),
                host.as_deref(),
                q.as_deref(),
                None,
            ) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let config = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            return feeds(&config, &filter, json).await;
        }
        Command::Search {
            config,
            limit,
            query,
        } => {
            let config = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            return search(&config, &query, limit).await;
        }
        Command::Discover { url, add } => return discover(&url, add.as_deref()).await,
        Command::Opml {
            command: OpmlCommand::Import { file, config },
        } => opml_import(&file, &config),
        Command::Opml {
            command: OpmlCommand::Export { config },
        } => {
            let config = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            opml_export(&config).await
        }
        Command::Demo { listen } => {
            newsriver::demo::run(
                listen,
                |url| {
                    println!("newsriver demo: merged feed at {url}");
                    println!(
                        "(open it in a feed reader, or {} for the web page; Ctrl-C to stop)",
                        url.trim_end_matches("feed.atom")
                    );
                },
                shutdown_signal(),
            )
            .await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn search(config: &Config, text: &str, limit: usize) -> ExitCode {
    let query = match newsriver::search::Query::parse(text) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("error: bad query: {e}");
            return ExitCode::from(2);
        }
    };
    let storage = config.storage.clone();
    if !storage.exists() {
        eprintln!(
            "error: no database yet at {} (start `newsriver run` or `newsriver poll --once` first)",
            storage.describe()
        );
        return ExitCode::FAILURE;
    }
    let found = tokio::task::spawn_blocking(move || {
        newsriver::Store::open_configured(&storage).and_then(|s| s.search(&query, limit))
    })
    .await;
    match found {
        Ok(Ok(stories)) => {
            if stories.is_empty() {
                eprintln!("no stories match");
            }
            print!("{}", newsriver::search::lines(&stories));
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn feeds(config: &Config, filter: &newsriver::status::FeedFilter, json: bool) -> ExitCode {
    let storage = config.storage.clone();
    if !storage.exists() {
        eprintln!(
            "error: no database yet at {} (start `newsriver run` or `newsriver poll --once` first)",
            storage.describe()
        );
        return ExitCode::FAILURE;
    }
    let filter = filter.clone();
    let statuses = tokio::task::spawn_blocking(move || {
        let store = newsriver::Store::open_configured(&storage)?;
        Ok::<_, newsriver::store::StoreError>((
            store.feeds_filtered(&filter)?,
            store.websub_statuses(chrono::Utc::now())?,
        ))
    })
    .await;
    match statuses {
        Ok(Ok((statuses, websub))) => {
            let rows = newsriver::feed_list::rows(&statuses);
            if json {
                println!("{}", newsriver::feed_list::json(&rows));
            } else {
                print!("{}", newsriver::feed_list::table(&rows, chrono::Utc::now()));
                print!(
                    "{}",
                    newsriver::feed_list::websub_table(&websub, chrono::Utc::now())
                );
            }
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn discover(url: &str, add: Option<&std::path::Path>) -> ExitCode {
    let fetch = match add {
        Some(path) => match load(path) {
            Ok(c) => c.fetch,
            Err(code) => return code,
        },
        None => newsriver::config::FetchConfig::default(),
    };
    let fetcher = match newsriver::fetch::Fetcher::new(&fetch) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let found = match newsriver::discover::discover(&fetcher, url, fetch.host_gap.0).await {
        Ok(found) => found,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for r in &found.rejected {
        eprintln!("not a feed: {} ({})", r.url, r.why);
    }
    if found.feeds.is_empty() {
        eprintln!(
            "error: no feed found at {url}{}",
            if found.probed {
                " (the page advertises none, and none of the usual paths is a feed)"
            } else {
                ""
            }
        );
        return ExitCode::FAILURE;
    }
    for feed in &found.feeds {
        println!(
            "# {} ({}, {} entries{})",
            feed.title.as_deref().unwrap_or("untitled"),
            feed.format.label(),
            feed.entries,
            if found.probed {
                ", at a usual path"
            } else {
                ""
            }
        );
        println!("{}", newsriver::discover::feed_table(feed));
    }
    let Some(path) = add else {
        return ExitCode::SUCCESS;
    };
    let first = &found.feeds[0];
    match add_feed(path, first) {
        Ok(()) => {
            println!("{}: added {}", path.display(), first.url);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn add_feed(path: &std::path::Path, found: &newsriver::discover::Found) -> anyhow::Result<()> {
    use anyhow::Context;
    let toml =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = newsriver::discover::add_to_toml(&toml, path, found)?;
    replace_file(path, &text)
}

/// Writes beside `path` and renames, so a reader (or the daemon's file
/// watcher) never sees half a file.
fn replace_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(folder)
        .with_context(|| format!("cannot write in {}", folder.display()))?;
    std::io::Write::write_all(&mut temp, text.as_bytes())?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(temp.path(), meta.permissions());
    }
    temp.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

fn opml_import(file: &std::path::Path, config_path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let opml = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let subscriptions = newsriver::opml::parse(&String::from_utf8_lossy(&opml))
        .with_context(|| file.display().to_string())?;
    let toml = std::fs::read_to_string(config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let source = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (text, report) =
        newsriver::opml::import_into_toml(&toml, config_path, &subscriptions, &source)?;
    if !report.added.is_empty() {
        replace_file(config_path, &text)?;
    }
    println!(
        "{}: added {} feed{}, skipped {}",
        config_path.display(),
        report.added.len(),
        if report.added.len() == 1 { "" } else { "s" },
        report.skipped.len()
    );
    for url in &report.added {
        println!("  added    {url}");
    }
    for (url, why) in &report.skipped {
        println!("  skipped  {url} ({why})");
    }
    Ok(())
}

async fn migrate(config: &Config, to: &str) -> ExitCode {
    use newsriver::config::{Database, redacted_url};
    let Database::Sqlite(from) = config.storage.database() else {
        eprintln!(
            "error: this configuration's river is on PostgreSQL already ({}); migrate copies a SQLite river",
            config.storage.describe()
        );
        return ExitCode::from(2);
    };
    let target = redacted_url(to);
    let (from_text, to_owned) = (from.display().to_string(), to.to_string());
    let started = std::time::Instant::now();
    let copied = tokio::task::spawn_blocking(move || {
        newsriver::store::transfer::sqlite_to_postgres(
            &from,
            &to_owned,
            std::time::Duration::from_secs(10),
            |table, rows| eprintln!("  {table}: {rows} rows"),
        )
    })
    .await;
    match copied {
        Ok(Ok(copied)) => {
            let rows: u64 = copied.tables.iter().map(|(_, n)| n).sum();
            println!(
                "copied {from_text} into {target}: {rows} rows in {} tables, {:.1} s",
                copied.tables.len(),
                started.elapsed().as_secs_f64()
            );
            println!(
                "next: set [storage] url (it may be {{ env = \"NAME\" }}) instead of path, and start newsriver run"
            );
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("error: cannot copy {from_text} into {target}: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: the copy stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn opml_export(config: &Config) -> anyhow::Result<()> {
    let mut subscriptions = newsriver::opml::from_config(config);
    // Titles and site links the feeds gave themselves, if they were polled.
    let storage = config.storage.clone();
    if storage.exists() {
        let known = tokio::task::spawn_blocking(move || {
            newsriver::Store::open_configured(&storage).and_then(|s| s.subscriptions())
        })
        .await??;
        for s in &mut subscriptions {
            if let Some(k) = known.iter().find(|k| k.url == s.url) {
                s.title = s.title.take().or_else(|| k.title.clone());
                s.site_url = k.site_url.clone();
            }
        }
    }
    print!(
        "{}",
        newsriver::opml::write(&config.output.title, &subscriptions)
    );
    Ok(())
}
