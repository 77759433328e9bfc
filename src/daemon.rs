//! Wiring: the pieces a running daemon is made of, started and stopped together.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin;
use crate::config::{Config, RetentionConfig};
use crate::reload::{self, Live, LiveFetcher, Reloader};
use crate::scheduler::{self, Clock, Policy, PollReport, Poller};
use crate::server::{self, AppState};
use crate::store::RetentionPolicy;
use crate::store::{FeedRank, FeedSpec, Store};
use crate::telemetry::{self, Health};
use crate::websub;

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
            fixed_interval: f.interval.is_some(),
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
    let storage = config.storage.clone();
    let store = tokio::task::spawn_blocking(move || Store::open_configured(&storage))
        .await?
        .with_context(|| format!("cannot open the database {}", config.storage.describe()))?;
    let specs = feed_specs(config);
    let now = clock.now();
    store.call(move |s| s.sync_feeds(&specs, now)).await?;
    store.set_dedup_settings(config.dedup.settings());
    let ranks = feed_ranks(config);
    store.call(move |s| s.set_feed_ranks(&ranks)).await?;
    Ok(store)
}

/// Polls every configured feed once (for `poll --once` and cron users).
pub async fn poll_once(config: &Config) -> anyhow::Result<Vec<PollReport>> {
    let (_keep, never) = watch::channel(false);
    poll_once_with(config, &NoProgress, never).await
}

/// Told about a one-off poll as it goes (the CLI draws a progress bar).
pub trait PollProgress: Sync {
    fn start(&self, _feeds: usize) {}
    fn done(&self, _report: &PollReport) {}
}

/// Progress nobody watches.
#[derive(Debug)]
pub struct NoProgress;
impl PollProgress for NoProgress {}

/// `poll_once`, reporting each feed as it is done; then prunes by
/// `[retention]`, as the daemon would in the background. Once `stop` turns
/// true (a signal), no further poll starts, those under way finish and
/// everything polled so far is stored (see `scheduler::poll_all_with`).
pub async fn poll_once_with(
    config: &Config,
    progress: &dyn PollProgress,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<PollReport>> {
    let clock = Clock::new();
    // The HTTP client (rustls loads the system's CA certificates) is built
    // while the database opens on a blocking thread.
    let (store, fetcher) = tokio::join!(open_store(config, &clock), async {
        LiveFetcher::new(config)
    });
    let store = store?;
    let poller = Arc::new(Poller {
        store: store.clone(),
        fetcher: fetcher?,
        clock,
        policy: Policy::from(&config.fetch),
        filters: Arc::new(crate::filter::Filters::from_config(config)),
        parsing: scheduler::ParseThreads::per_core().context("cannot start the parse threads")?,
    });
    // The same path as the daemon's: global and per-host limits apply.
    let reports = scheduler::poll_all_with(
        poller,
        config.fetch.concurrency.get(),
        stop,
        |feeds| progress.start(feeds),
        |r| progress.done(r),
    )
    .await?;
    prune(&store, &clock, &config.retention).await;
    checkpoint(&store).await;
    Ok(reports)
}

/// One pruning pass; failures are logged, never fatal.
async fn prune(store: &Store, clock: &Clock, retention: &RetentionConfig) {
    let policy = RetentionPolicy::from(retention);
    let now = clock.now();
    match store.call(move |s| s.prune(policy, now)).await {
        Ok(counts) => {
            telemetry::record_pruned(counts.entries);
            if counts.entries > 0 || counts.tombstones_forgotten > 0 {
                tracing::info!(
                    pruned = counts.entries,
                    tombstones_forgotten = counts.tombstones_forgotten,
                    "retention: pruned old entries"
                );
            }
        }
        Err(e) => tracing::error!(error = %e, "retention: pruning failed"),
    }
}

/// Merges the search index's segments (see `Store::compact_search_index`);
/// failures are logged, never fatal.
async fn compact_search_index(store: &Store) {
    let started = std::time::Instant::now();
    match store.call(|s| s.compact_search_index()).await {
        Ok(true) => tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            "search: index merged into one segment"
        ),
        Ok(false) => {}
        Err(e) => tracing::error!(error = %e, "search: merging the index failed"),
    }
}

/// Prunes every `[retention].prune_every` (as it is after any reload) until `stop`.
async fn prune_in_background(
    store: Store,
    clock: Clock,
    retention: Arc<RwLock<RetentionConfig>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let current = retention.read().unwrap_or_else(|p| p.into_inner()).clone();
        prune(&store, &clock, &current).await;
        compact_search_index(&store).await;
        tokio::select! {
            () = tokio::time::sleep(current.prune_every.0) => {}
            () = reload::stopped(&mut stop) => break,
        }
    }
}

/// Runs the daemon: the scheduler polls feeds as they fall due and the server
/// answers on `listener`, until `shutdown` completes. Then the server stops
/// taking requests, polls in flight finish their writes, and this returns.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with(config, None, listener, shutdown).await
}

/// `run`, for a configuration loaded from `config_path`: then it is reloaded
/// on SIGHUP, on `POST /admin/reload` and when the file changes.
pub async fn run_with(
    config: Config,
    config_path: Option<PathBuf>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let clock = Clock::new();
    // The HTTP client (rustls loads the system's CA certificates) is built
    // while the database opens on a blocking thread.
    let (store, live) = tokio::join!(open_store(&config, &clock), async { Live::new(&config) });
    let store = store?;
    let live = live?;
    let river_id = store.call(|s| s.river_id()).await?;
    let poller = Arc::new(Poller {
        store: store.clone(),
        fetcher: live.fetcher.clone(),
        clock,
        policy: Policy::from(&config.fetch),
        filters: live.filters.clone(),
        parsing: scheduler::ParseThreads::per_core().context("cannot start the parse threads")?,
    });
    let hooks = scheduler::Hooks {
        wake: live.wake.clone(),
        ..Default::default()
    };
    hooks.heartbeat.store(
        clock.now().timestamp(),
        std::sync::atomic::Ordering::Relaxed,
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let scheduler = tokio::spawn(scheduler::run_with(
        poller.clone(),
        config.fetch.concurrency.get(),
        stop_rx.clone(),
        hooks.clone(),
    ));
    tokio::spawn(reload::watch_agreement(
        live.agreement.clone(),
        store.clone(),
        stop_rx.clone(),
    ));
    tokio::spawn(prune_in_background(
        store.clone(),
        clock,
        live.retention.clone(),
        stop_rx.clone(),
    ));
    let local = listener
        .local_addr()
        .context("the listener has no address")?;
    let callbacks = start_websub(&config, &store, clock, poller.clone(), local, &stop_rx)?;
    let reloader = config_path.map(|path| {
        Arc::new(Reloader::new(
            path,
            config.clone(),
            store.clone(),
            clock,
            &live,
        ))
    });
    if let Some(reloader) = &reloader {
        if let Err(e) = reload::watch_file(reloader.clone(), stop_rx.clone()) {
            tracing::warn!(error = %e, "cannot watch the configuration file; reload with SIGHUP instead");
        }
        #[cfg(unix)]
        if let Err(e) = reload::on_sighup(reloader.clone(), stop_rx.clone()) {
            tracing::warn!(error = %e, "cannot listen for SIGHUP");
        }
        tracing::info!(
            config = %reloader.path().display(),
            "the configuration reloads on change, on SIGHUP and on POST /admin/reload"
        );
    }
    let ops = admin::Ops {
        health: Health {
            store: store.clone(),
            clock,
            heartbeat: hooks.heartbeat.clone(),
            stall_after: config.fetch.timeout.0 + std::time::Duration::from_secs(60),
        },
        metrics: telemetry::install(),
        reloader,
        title: config.output.title.clone(),
    };
    let on_signal = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
        on_signal.send_replace(true);
    });

    let state_store = store.clone();
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
        cache: Default::default(),
        searches: live.searches.clone(),
        hub: config.websub_hub(),
        agreement: live.agreement.clone(),
    };
    let mut server_stop = stop_rx;
    // Tell systemd (Type=notify) we are up; a no-op elsewhere.
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let served = server::serve_with(
        listener,
        state,
        admin::router(ops).merge(server::websub::router(callbacks)),
        live.access.clone(),
        async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        },
    )
    .await;
    // Whatever ended the server, the scheduler is told and waited for, so no
    // poll is cut off halfway through its transaction.
    stop_tx.send_replace(true);
    scheduler.await.context("the scheduler task failed")?;
    checkpoint(&state_store).await;
    served.context("the HTTP server failed")?;
    Ok(())
}

/// WebSub: the subscriber (with `[websub] subscribe`) and the publisher
/// (with `[websub] hub`) on tasks of their own, until `stop`; and the
/// callback routes' state.
fn start_websub(
    config: &Config,
    store: &Store,
    clock: Clock,
    sink: Arc<dyn scheduler::PushSink>,
    local: std::net::SocketAddr,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Arc<server::websub::Callbacks>> {
    let base_url = config.output.base_url.as_ref().map(|u| u.0.to_string());
    let hub_client = || {
        websub::HttpHub::new(&config.fetch.user_agent, config.fetch.timeout.0)
            .map_err(anyhow::Error::msg)
    };
    if let (true, Some(base_url)) = (config.websub_subscribe(), &base_url) {
        tokio::spawn(websub::run_subscriber(
            store.clone(),
            clock,
            hub_client()?,
            websub::SubscriberSettings::new(base_url),
            stop.clone(),
        ));
        tracing::info!("websub: subscribing to the hubs feeds advertise");
    }
    let mut callbacks =
        server::websub::Callbacks::new(store.clone(), clock, sink, config.fetch.max_body_bytes.0);
    if let (true, Some(base_url)) = (config.websub_serve_hub(), &base_url) {
        let settings = websub::hub::HubSettings {
            base_url: base_url.clone(),
            local,
            read_token: config.access.read_token.clone(),
            max_subscribers: config.websub.max_subscribers.0,
            timeout: config.websub.delivery_timeout.0,
            user_agent: config.fetch.user_agent.clone(),
        };
        let hub =
            websub::BuiltInHub::new(store.clone(), clock, settings).map_err(anyhow::Error::msg)?;
        tokio::spawn(websub::run_publisher(
            store.clone(),
            clock,
            hub.clone(),
            websub::PublisherSettings::new(&hub.url(), base_url),
            stop.clone(),
        ));
        tracing::info!(hub = %hub.url(), "websub: serving a hub for the river's feeds");
        callbacks = callbacks.with_hub(hub);
    } else if let (Some(hub), Some(base_url)) = (config.websub_hub(), &base_url) {
        tokio::spawn(websub::run_publisher(
            store.clone(),
            clock,
            hub_client()?,
            websub::PublisherSettings::new(&hub, base_url),
            stop.clone(),
        ));
        tracing::info!(%hub, "websub: announcing the river's feeds on a hub");
    }
    Ok(Arc::new(callbacks))
}

/// Empties the WAL into the database file before the process ends, so the
/// next start does not read it back (a WAL grown during a large ingest can be
/// tens of MiB). Failures are logged: the WAL is still valid as it is.
async fn checkpoint(store: &Store) {
    match store.call(|s| s.checkpoint()).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!("the WAL stayed busy; the next start reads it back"),
        Err(e) => {
            tracing::warn!(error = %e, "final checkpoint failed; the next start reads the WAL back")
        }
    }
}
