//! Live reload: re-read the TOML on SIGHUP, on `POST /admin/reload`, or when
//! the file changes, and apply it to the running daemon. A new configuration
//! that does not validate is refused and the running one stays in force.
//!
//! What a reload applies: the feed list (added feeds are polled at once,
//! removed ones stop; their entries stay), per-feed titles, intervals, tags,
//! credentials and headers, each feed's `priority` and `original`, the
//! `[fetch]` client settings, `[access]` tokens, `[retention]`, `[filters]`,
//! `[dedup]` and the named searches (`[[search]]`). What needs a restart (logged when it changed):
//! `[server].listen`, `[storage].path`, `[output]`, and `[fetch]` concurrency,
//! jitter and max_backoff.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, Notify, mpsc, watch};

use crate::access::{AccessControl, Tokens};
use crate::config::{Config, ConfigError, RetentionConfig};
use crate::daemon::{feed_ranks, feed_specs};
use crate::fetch::{FetchError, FetchFeed, Fetched, Fetcher, RequestExtras};
use crate::filter::Filters;
use crate::model::Validators;
use crate::scheduler::Clock;
use crate::store::{FeedSpec, Store, StoreError};

/// A fetcher whose client and per-feed credentials a reload can swap.
/// Cheap to clone: clones share the same settings.
#[derive(Debug, Clone)]
pub struct LiveFetcher {
    client: Arc<RwLock<Arc<Fetcher>>>,
    extras: Arc<RwLock<Arc<HashMap<String, RequestExtras>>>>,
}

impl LiveFetcher {
    pub fn new(config: &Config) -> Result<Self, FetchError> {
        Ok(Self {
            client: Arc::new(RwLock::new(Arc::new(Fetcher::new(&config.fetch)?))),
            extras: Arc::new(RwLock::new(Arc::new(extras_of(config)))),
        })
    }

    fn apply(&self, config: &Config) -> Result<(), FetchError> {
        let client = Arc::new(Fetcher::new(&config.fetch)?);
        *self.client.write().unwrap_or_else(|p| p.into_inner()) = client;
        *self.extras.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(extras_of(config));
        Ok(())
    }
}

fn extras_of(config: &Config) -> HashMap<String, RequestExtras> {
    config
        .feeds
        .iter()
        .map(|f| (f.url().to_string(), RequestExtras::of(f)))
        .filter(|(_, e)| !e.is_empty())
        .collect()
}

impl FetchFeed for LiveFetcher {
    async fn fetch(&self, url: &str, validators: &Validators) -> Result<Fetched, FetchError> {
        self.fetch_feed(url, url, validators, None).await
    }

    /// Credentials are looked up by the configured URL, also when the feed is
    /// fetched from an adopted new address (they go only to their own origin).
    async fn fetch_feed(
        &self,
        feed_url: &str,
        fetch_url: &str,
        validators: &Validators,
        known_body: Option<&str>,
    ) -> Result<Fetched, FetchError> {
        let client = self
            .client
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let extras = self
            .extras
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let none = RequestExtras::default();
        client
            .fetch_with(
                fetch_url,
                validators,
                extras.get(feed_url).unwrap_or(&none),
                known_body,
            )
            .await
    }
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new configuration does not load; the running one stays.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The feed list could not be written to the database.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The HTTP client could not be built from the new `[fetch]`.
    #[error("{0}")]
    Fetch(#[from] FetchError),
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    /// Settings that changed but apply only after a restart.
    pub need_restart: Vec<&'static str>,
}

impl std::fmt::Display for ReloadSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} feed(s) added, {} removed, {} changed",
            self.added, self.removed, self.changed
        )?;
        if !self.need_restart.is_empty() {
            write!(f, "; restart to apply {}", self.need_restart.join(", "))?;
        }
        Ok(())
    }
}

/// Applies new configurations to a running daemon.
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    store: Store,
    clock: Clock,
    fetcher: LiveFetcher,
    access: Arc<AccessControl>,
    retention: Arc<RwLock<RetentionConfig>>,
    filters: Arc<Filters>,
    wake: Arc<Notify>,
    searches: Arc<crate::search::Searches>,
    agreement: Arc<Agreement>,
    /// The configuration in force, and a hash of the text it came from; the
    /// lock also keeps two reloads from interleaving.
    current: Mutex<(Config, Option<[u8; 32]>)>,
}

/// The reloadable parts a daemon shares with its reloader.
#[derive(Debug, Clone)]
pub struct Live {
    pub fetcher: LiveFetcher,
    pub access: Arc<AccessControl>,
    pub retention: Arc<RwLock<RetentionConfig>>,
    /// Include/exclude rules applied at ingest.
    pub filters: Arc<Filters>,
    /// Wakes the scheduler so it re-reads what is due.
    pub wake: Arc<Notify>,
    /// Named searches (`[[search]]`), served as feeds.
    pub searches: Arc<crate::search::Searches>,
    /// Whether the feed list in force is this daemon's own.
    pub agreement: Arc<Agreement>,
}

impl Live {
    pub fn new(config: &Config) -> Result<Self, FetchError> {
        Ok(Self {
            fetcher: LiveFetcher::new(config)?,
            access: AccessControl::new(tokens_of(config)),
            retention: Arc::new(RwLock::new(config.retention.clone())),
            filters: Arc::new(Filters::from_config(config)),
            wake: Arc::new(Notify::new()),
            searches: crate::search::Searches::new(config),
            agreement: Arc::new(Agreement::new(&feed_specs(config))),
        })
    }
}

pub fn tokens_of(config: &Config) -> Tokens {
    Tokens {
        admin: config.access.admin_token.clone(),
        read: config.access.read_token.clone(),
    }
}

fn text_hash(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path).ok().map(|b| Sha256::digest(&b).into())
}

impl Reloader {
    pub fn new(path: PathBuf, config: Config, store: Store, clock: Clock, live: &Live) -> Self {
        let hash = text_hash(&path);
        Self {
            path,
            store,
            clock,
            fetcher: live.fetcher.clone(),
            access: live.access.clone(),
            retention: live.retention.clone(),
            filters: live.filters.clone(),
            wake: live.wake.clone(),
            searches: live.searches.clone(),
            agreement: live.agreement.clone(),
            current: Mutex::new((config, hash)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-reads the file and applies it; on error the running configuration
    /// stays and the error (with file:line:column) is logged and returned.
    pub async fn reload(&self) -> Result<ReloadSummary, ReloadError> {
        let mut current = self.current.lock().await;
        let hash = text_hash(&self.path);
        let result = self.apply(&current.0).await;
        match result {
            Ok((config, summary)) => {
                *current = (config, hash);
                tracing::info!(config = %self.path.display(), "configuration reloaded: {summary}");
                if !summary.need_restart.is_empty() {
                    tracing::warn!(
                        "changed settings that apply only after a restart: {}",
                        summary.need_restart.join(", ")
                    );
                }
                Ok(summary)
            }
            Err(e) => {
                tracing::error!(error = %e, "configuration not reloaded; the running one stays in force");
                Err(e)
            }
        }
    }

    /// Reloads only if the file's bytes differ from those last loaded (for the
    /// file watcher: editors and `touch` send events without changes).
    pub async fn reload_if_changed(&self) -> Option<Result<ReloadSummary, ReloadError>> {
        let unchanged = {
            let current = self.current.lock().await;
            current.1.is_some() && current.1 == text_hash(&self.path)
        };
        if unchanged {
            return None;
        }
        Some(self.reload().await)
    }

    async fn apply(&self, old: &Config) -> Result<(Config, ReloadSummary), ReloadError> {
        let path = self.path.clone();
        let new = tokio::task::spawn_blocking(move || Config::load(&path))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        // Everything that can fail comes first, so a refused reload changes nothing.
        let client_changed = fetch_client_differs(old, &new);
        if client_changed {
            Fetcher::new(&new.fetch)?;
        }
        let specs = feed_specs(&new);
        let summary = summarise(&feed_specs(old), &specs, old, &new);
        let now = self.clock.now();
        let applied = specs.clone();
        self.store.call(move |s| s.sync_feeds(&specs, now)).await?;
        // The database follows this file now.
        self.agreement.set_own(&applied);
        let _ = self.agreement.check(&self.store).await;
        // Ranks decide which copy of a story is primary from the next page
        // rendered on; dedup settings apply from the next poll.
        let ranks = feed_ranks(&new);
        self.store.call(move |s| s.set_feed_ranks(&ranks)).await?;
        self.store.set_dedup_settings(new.dedup.settings());
        self.fetcher.apply(&new)?;
        self.access.set(tokens_of(&new));
        *self.retention.write().unwrap_or_else(|p| p.into_inner()) = new.retention.clone();
        self.filters.set(&new);
        self.searches.set(&new);
        // Unchanged bodies are skipped by hash; new filters may want them.
        self.store.call(|s| s.forget_body_hashes()).await?;
        self.wake.notify_one();
        Ok((new, summary))
    }
}

fn fetch_client_differs(a: &Config, b: &Config) -> bool {
    let (a, b) = (&a.fetch, &b.fetch);
    a.timeout != b.timeout
        || a.connect_timeout != b.connect_timeout
        || a.user_agent != b.user_agent
        || a.max_body_bytes != b.max_body_bytes
        || a.max_redirects != b.max_redirects
        || a.max_decompressed_bytes != b.max_decompressed_bytes
        || a.transfer_deadline != b.transfer_deadline
}

fn summarise(old: &[FeedSpec], new: &[FeedSpec], a: &Config, b: &Config) -> ReloadSummary {
    let old_by_url: HashMap<&str, &FeedSpec> = old.iter().map(|f| (f.url.as_str(), f)).collect();
    let new_by_url: HashMap<&str, &FeedSpec> = new.iter().map(|f| (f.url.as_str(), f)).collect();
    let added = new_by_url
        .keys()
        .filter(|u| !old_by_url.contains_key(*u))
        .count();
    let removed = old_by_url
        .keys()
        .filter(|u| !new_by_url.contains_key(*u))
        .count();
    // Credentials and headers are not in the spec (never stored), nor is the
    // feed's rank as a source: compare them too.
    let secrets_of = |c: &Config, url: &str| {
        c.feeds
            .iter()
            .find(|f| f.url().as_str() == url)
            .map(|f| (f.auth.clone(), f.headers.clone(), f.priority, f.original))
    };
    let changed = new_by_url
        .iter()
        .filter(|(u, f)| {
            old_by_url
                .get(*u)
                .is_some_and(|o| o != *f || secrets_of(a, u) != secrets_of(b, u))
        })
        .count();
    let mut need_restart = Vec::new();
    if a.server.listen != b.server.listen {
        need_restart.push("[server].listen");
    }
    if a.storage.path != b.storage.path {
        need_restart.push("[storage].path");
    }
    if a.fetch.concurrency != b.fetch.concurrency {
        need_restart.push("[fetch].concurrency");
    }
    if a.fetch.jitter != b.fetch.jitter || a.fetch.max_backoff != b.fetch.max_backoff {
        need_restart.push("[fetch].jitter/max_backoff");
    }
    let (fa, fb) = (&a.fetch, &b.fetch);
    if fa.adaptive != fb.adaptive
        || fa.min_interval != fb.min_interval
        || fa.max_interval != fb.max_interval
        || fa.max_retry_after != fb.max_retry_after
        || fa.redirect_confirmations != fb.redirect_confirmations
        || fa.redirect_confirm_period != fb.redirect_confirm_period
        || fa.host_concurrency != fb.host_concurrency
        || fa.host_gap != fb.host_gap
    {
        need_restart.push(
            "[fetch] scheduling (adaptive, intervals, Retry-After, redirects, host politeness)",
        );
    }
    if a.output.title != b.output.title
        || a.output.entries != b.output.entries
        || a.output.base_url != b.output.base_url
        || a.output.attribution != b.output.attribution
    {
        need_restart.push("[output]");
    }
    ReloadSummary {
        added,
        removed,
        changed,
        need_restart,
    }
}

/// Quiet time after the last file event before the file is read: editors
/// write in several steps (truncate, write, rename, chmod).
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watches the configuration file and reloads when its content changes, until
/// `shutdown` turns true. The folder is watched, not the file, so the watch
/// survives an editor that saves by writing a new file and renaming it over
/// the old one (the old file's watch would die with its inode).
pub fn watch_file(
    reloader: Arc<Reloader>,
    mut shutdown: watch::Receiver<bool>,
) -> notify::Result<tokio::task::JoinHandle<()>> {
    use notify::Watcher;

    let path = reloader.path().to_path_buf();
    let name = path.file_name().map(|n| n.to_os_string());
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && event
                .paths
                .iter()
                .any(|p| p.file_name().map(|n| n.to_os_string()) == name)
        {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&folder, notify::RecursiveMode::NonRecursive)?;
    Ok(tokio::spawn(async move {
        // Owned by the task: dropping the watcher would end the watch.
        let _watcher = watcher;
        loop {
            tokio::select! {
                event = rx.recv() => if event.is_none() { break },
                () = stopped(&mut shutdown) => break,
            }
            // Debounce: wait until the events stop for a moment.
            loop {
                tokio::select! {
                    event = rx.recv() => if event.is_none() { return },
                    () = tokio::time::sleep(DEBOUNCE) => break,
                }
            }
            if let Some(Err(_)) = reloader.reload_if_changed().await {
                // Already logged by `reload`; keep watching for a fixed file.
            }
        }
    }))
}

/// Resolves once `shutdown` is true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Reloads on every SIGHUP until `shutdown` turns true.
#[cfg(unix)]
pub fn on_sighup(
    reloader: Arc<Reloader>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                got = hup.recv() => {
                    if got.is_none() { break }
                    tracing::info!("SIGHUP: reloading the configuration");
                    let _ = reloader.reload().await;
                }
                () = stopped(&mut shutdown) => break,
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reload_applies_dedup_settings_and_source_ranks_to_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.toml");
        let text = |extra: &str, feed: &str| {
            format!(
                "{extra}\n[storage]\npath = {:?}\n[[feed]]\nurl = \"https://a.example/\"\n{feed}\n",
                dir.path().join("r.db").display().to_string()
            )
        };
        std::fs::write(&path, text("", "")).unwrap();
        let config = Config::load(&path).unwrap();
        let clock = Clock::new();
        let store = crate::daemon::open_store(&config, &clock).await.unwrap();
        assert!(store.dedup_settings().matching.enabled);
        let live = Live::new(&config).unwrap();
        let reloader = Reloader::new(path.clone(), config, store.clone(), clock, &live);
        std::fs::write(
            &path,
            text(
                "[dedup]\nenabled = false\nthreshold = 0.7\nchurn_cooldown = \"1h\"",
                "priority = 4\noriginal = true",
            ),
        )
        .unwrap();
        let summary = reloader.reload().await.unwrap();
        assert_eq!(summary.changed, 1, "{summary}");
        let settings = store.dedup_settings();
        assert!(!settings.matching.enabled);
        assert_eq!(settings.matching.threshold, 0.7);
        assert_eq!(settings.churn_cooldown, chrono::Duration::hours(1));
        assert_eq!(
            store.feed_rank_of("https://a.example/").unwrap(),
            Some((4, true))
        );
    }

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("t.toml")).unwrap()
    }

    #[test]
    fn summary_counts_added_removed_changed_and_restart_only_settings() {
        let old = parse(
            "[[feed]]\nurl = \"https://a.example/\"\n[[feed]]\nurl = \"https://b.example/\"\n\
             [[feed]]\nurl = \"https://c.example/\"\n[[feed]]\nurl = \"https://d.example/\"\n",
        );
        let new = parse(
            "[fetch]\nconcurrency = 4\n[output]\ntitle = \"New\"\n\
             [[feed]]\nurl = \"https://a.example/\"\n\
             [[feed]]\nurl = \"https://b.example/\"\ninterval = \"5m\"\n\
             [[feed]]\nurl = \"https://c.example/\"\nheaders = { X-Key = \"k\" }\n\
             [[feed]]\nurl = \"https://d.example/\"\npriority = 3\n\
             [[feed]]\nurl = \"https://e.example/\"\n",
        );
        let s = summarise(&feed_specs(&old), &feed_specs(&new), &old, &new);
        assert_eq!((s.added, s.removed, s.changed), (1, 0, 3));
        assert_eq!(s.need_restart, ["[fetch].concurrency", "[output]"]);
        assert_eq!(
            s.to_string(),
            "1 feed(s) added, 0 removed, 3 changed; restart to apply [fetch].concurrency, [output]"
        );
        let same = summarise(&feed_specs(&new), &feed_specs(&new), &new, &new);
        assert_eq!(same, ReloadSummary::default());
    }
}

/// Whether the feed list the database follows is the one this daemon's file
/// gives. Daemons sharing a database share one feed list: the last one any
/// of them applied (at start-up or a reload; `newsriver poll --once` too).
/// A daemon whose file gives another list polls the list in force, and says
/// so in its log and on `/status` until the files agree again.
#[derive(Debug, Default)]
pub struct Agreement {
    /// This daemon's list: its digest and how many feeds.
    own: RwLock<(String, usize)>,
    /// The list in force, when it is not this daemon's.
    differs: RwLock<Option<crate::store::AppliedFeedSet>>,
}

/// How often a daemon compares its feed list with the one in force.
pub const AGREEMENT_CHECK: Duration = Duration::from_secs(30);

impl Agreement {
    pub fn new(specs: &[FeedSpec]) -> Self {
        let agreement = Self::default();
        agreement.set_own(specs);
        agreement
    }

    /// This daemon's list changed (a reload applied it).
    pub fn set_own(&self, specs: &[FeedSpec]) {
        *self.own.write().unwrap_or_else(|p| p.into_inner()) = (
            crate::store::feed_set_digest(specs),
            crate::store::distinct_feeds(specs),
        );
    }

    /// How many feeds this daemon's file lists.
    pub fn own_feeds(&self) -> usize {
        self.own.read().unwrap_or_else(|p| p.into_inner()).1
    }

    /// The list in force as last checked, when it is not this daemon's.
    pub fn differs(&self) -> Option<crate::store::AppliedFeedSet> {
        self.differs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Compares this daemon's list with the one in force, logging when that
    /// changes (a warning when they come apart, a note when they agree
    /// again), and returns [`Agreement::differs`].
    pub async fn check(
        &self,
        store: &Store,
    ) -> Result<Option<crate::store::AppliedFeedSet>, StoreError> {
        let applied = store.call(|s| s.applied_feed_set()).await?;
        let (own, own_feeds) = self.own.read().unwrap_or_else(|p| p.into_inner()).clone();
        let now = applied.filter(|a| a.digest != own);
        let mut differs = self.differs.write().unwrap_or_else(|p| p.into_inner());
        let before = differs.as_ref().map(|a| a.digest.clone());
        match &now {
            Some(a) if before.as_deref() != Some(a.digest.as_str()) => tracing::warn!(
                applied_by = %a.by,
                applied_at = %a.at.to_rfc3339(),
                feeds_in_force = a.feeds,
                feeds_in_this_file = own_feeds,
                "this daemon's configuration lists other feeds than the list in force, \
                 which another process applied; it polls the list in force until the files agree \
                 (reload a daemon to apply its file)"
            ),
            None if before.is_some() => {
                tracing::info!("the feed list in force is this daemon's own again");
            }
            _ => {}
        }
        *differs = now.clone();
        Ok(now)
    }
}

/// Checks the [`Agreement`] every [`AGREEMENT_CHECK`] until `stop`.
pub async fn watch_agreement(
    agreement: Arc<Agreement>,
    store: Store,
    mut stop: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(AGREEMENT_CHECK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {
                if let Err(e) = agreement.check(&store).await {
                    tracing::debug!(error = %e, "cannot compare the feed list with the one in force");
                }
            }
            () = stopped(&mut stop) => return,
        }
    }
}
