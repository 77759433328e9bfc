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
    /// Validate a configuration file without starting anything.
    Check {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Offline demo: serve bundled sample feeds on loopback, aggregate them and serve the merged feed.
    Demo {
        /// Where to serve the merged feed (use 127.0.0.1:0 for any free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
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
    init_logging();
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
        Command::Run { config } => {
            let config = match load(&config) {
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
                    newsriver::run(config, listener, shutdown_signal()).await
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
            newsriver::poll_once(&config).await.map(|reports| {
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
            })
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
