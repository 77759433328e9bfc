//! Wiring: the pieces a running daemon is made of, started and stopped together.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::fetch::Fetcher;
use crate::scheduler::{self, Clock, Policy, PollReport, Poller};
use crate::server::{self, AppState};
use crate::store::{FeedRank, FeedSpec, Store};

/// The configured feeds as the store wants them.
pub fn feed_specs(config: &Config) -> Vec<FeedSpec> {
    config
        .feeds
        .iter()
        .map(|f| FeedSpec {
            url: f.url().to_string(),
            title: f.title.clone(),
            interval: config.interval_of(f),
            tags: f.tags.clone(),
        })
        .collect()
}

/// How the configuration ranks each feed as a source.
pub fn feed_ranks(config: &Config) -> Vec<FeedRank> {
    config
        .feeds
        .iter()
        .map(|f| FeedRank {
            url: f.url().to_string(),
            priority: f.priority,
            original: f.original,
        })
        .collect()
}

/// Opens the database and brings its feed list in line with the configuration.
pub async fn open_store(config: &Config, clock: &Clock) -> anyhow::Result<Store> {
    let path = config.storage.path.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&path))
        .await?
        .with_context(|| format!("cannot open the database {}", config.storage.path.display()))?;
    let specs = feed_specs(config);
    let now = clock.now();
    store.call(move |s| s.sync_feeds(&specs, now)).await?;
    store.set_dedup_settings(config.dedup.settings());
    let ranks = feed_ranks(config);
    store.call(move |s| s.set_feed_ranks(&ranks)).await?;
    Ok(store)
}

fn poller(config: &Config, store: Store, clock: Clock) -> anyhow::Result<Arc<Poller>> {
    Ok(Arc::new(Poller {
        store,
        fetcher: Fetcher::new(&config.fetch)?,
        clock,
        policy: Policy::from(&config.fetch),
    }))
}

/// Polls every configured feed once (for `poll --once` and cron users).
pub async fn poll_once(config: &Config) -> anyhow::Result<Vec<PollReport>> {
    let clock = Clock::new();
    let store = open_store(config, &clock).await?;
    let poller = poller(config, store, clock)?;
    Ok(scheduler::poll_all(poller, config.fetch.concurrency.get()).await?)
}

/// Runs the daemon: the scheduler polls feeds as they fall due and the server
/// answers on `listener`, until `shutdown` completes. Then the server stops
/// taking requests, polls in flight finish their writes, and this returns.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let clock = Clock::new();
    let store = open_store(&config, &clock).await?;
    let river_id = store.call(|s| s.river_id()).await?;
    let poller = poller(&config, store.clone(), clock)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let scheduler = tokio::spawn(scheduler::run(
        poller,
        config.fetch.concurrency.get(),
        stop_rx.clone(),
    ));
    let on_signal = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
        on_signal.send_replace(true);
    });

    let state = AppState {
        store,
        river_id,
        title: config.output.title.clone(),
        base_url: config.output.base_url.as_ref().map(|u| {
            let s = u.0.to_string();
            if s.ends_with('/') { s } else { format!("{s}/") }
        }),
        entries: config.output.entries.get(),
        attribution: config.output.attribution.as_ref().map(|t| t.0.clone()),
    };
    let mut server_stop = stop_rx;
    let served = server::serve(listener, state, async move {
        let _ = server_stop.wait_for(|stop| *stop).await;
    })
    .await;
    // Whatever ended the server, the scheduler is told and waited for, so no
    // poll is cut off halfway through its transaction.
    stop_tx.send_replace(true);
    scheduler.await.context("the scheduler task failed")?;
    served.context("the HTTP server failed")?;
    Ok(())
}
