//! The TOML configuration: schema, defaults and validation.
//!
//! Every value is checked while it is deserialised, so that any error carries the
//! span toml gives it and can be reported as `FILE:LINE:COL: what is wrong`.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use toml::Spanned;
use url::Url;

use crate::access::Secret;

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read the configuration: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file was read but something in it is wrong.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// The whole configuration, with defaults filled in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub fetch: FetchConfig,
    #[serde(default)]
    pub output: OutputConfig,
    #[serde(default)]
    pub dedup: DedupConfig,
    /// Include/exclude rules applied to every feed's entries at ingest.
    #[serde(default)]
    pub filters: crate::filter::FilterConfig,
    #[serde(default, rename = "feed")]
    pub feeds: Vec<FeedConfig>,
    #[serde(default)]
    pub access: AccessConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Named searches, each served as a feed (`/searches/{name}/feed.atom`).
    #[serde(default, rename = "search")]
    pub searches: Vec<SearchConfig>,
    /// WebSub push, in (from sources' hubs) and out (to a hub of ours).
    #[serde(default)]
    pub websub: WebSubConfig,
}

/// `[websub]`: take pushes from feeds that advertise a hub, and announce
/// the river's own feeds on a hub.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSubConfig {
    /// Subscribe to the hubs feeds advertise. Default: on when
    /// `[output] base_url` is set (the hub needs a public callback).
    #[serde(default)]
    pub subscribe: Option<Spanned<bool>>,
    /// A hub to announce the river's own feeds on.
    #[serde(default)]
    pub hub: Option<HttpUrl>,
    /// Be a hub for our own feeds, at `{base_url}hub`.
    #[serde(default)]
    pub serve_hub: Option<Spanned<bool>>,
    /// The built-in hub's limit on subscriptions (all topics together).
    #[serde(default = "default_hub_max_subscribers")]
    pub max_subscribers: PositiveU64,
    /// The built-in hub's limit on one delivery (or verification) request.
    #[serde(default = "default_hub_delivery_timeout")]
    pub delivery_timeout: HumanDuration,
}

impl Default for WebSubConfig {
    fn default() -> Self {
        Self {
            subscribe: None,
            hub: None,
            serve_hub: None,
            max_subscribers: default_hub_max_subscribers(),
            delivery_timeout: default_hub_delivery_timeout(),
        }
    }
}

fn default_hub_max_subscribers() -> PositiveU64 {
    PositiveU64(1000)
}
fn default_hub_delivery_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

/// One `[[search]]`: a query served as a feed of its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// `[a-z0-9-]+`, unique.
    pub name: Spanned<String>,
    /// In the query language of `search::query`, checked when loaded.
    pub query: Spanned<String>,
    /// Only stories carried by feeds with one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `[access]`: who may read the outputs and use the admin routes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// Bearer token for `/status`, `/metrics` and `/admin/*`.
    #[serde(default)]
    pub admin_token: Option<Secret>,
    /// When set, the published outputs need this token too.
    #[serde(default)]
    pub read_token: Option<Secret>,
}

/// `[retention]`: how long entries are kept. Both limits are off by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Entries older than this (by their date, never later than first seen) are pruned.
    #[serde(default)]
    pub max_age: Option<HumanDuration>,
    /// At most this many entries per feed are kept, the newest.
    #[serde(default)]
    pub max_entries: Option<PositiveU64>,
    /// How often the pruner runs.
    #[serde(default = "default_prune_every")]
    pub prune_every: HumanDuration,
    /// A pruned entry's tombstone is forgotten once its feed has not carried
    /// the entry for this long.
    #[serde(default = "default_keep_tombstones")]
    pub keep_tombstones: HumanDuration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            max_age: None,
            max_entries: None,
            prune_every: default_prune_every(),
            keep_tombstones: default_keep_tombstones(),
        }
    }
}

fn default_prune_every() -> HumanDuration {
    HumanDuration(Duration::from_secs(3600))
}
fn default_keep_tombstones() -> HumanDuration {
    HumanDuration(Duration::from_secs(90 * 24 * 3600))
}

/// `auth = { username = "…", password = … }` on a `[[feed]]`: HTTP basic auth.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default)]
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Where the merged feed is served.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// `[storage]`: a SQLite file (`path`, the default) or a PostgreSQL
/// database (`url`), never both.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `path` as written, to tell it from the default.
    #[serde(default, rename = "path")]
    given_path: Option<Spanned<PathBuf>>,
    /// SQLite database file; relative paths are resolved against the config file's folder.
    #[serde(skip, default = "default_db_path")]
    pub path: PathBuf,
    /// `postgres://user:password@host:port/database[?sslmode=…]`, or
    /// `{ env = "NAME" }`: a secret (it holds the password).
    #[serde(default)]
    pub url: Option<Spanned<Secret>>,
    /// PostgreSQL only: how long connecting may take.
    #[serde(default)]
    pub connect_timeout: Option<Spanned<HumanDuration>>,
    /// PostgreSQL only: connections each daemon keeps at most.
    #[serde(default)]
    pub pool_size: Option<Spanned<u64>>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            given_path: None,
            path: default_db_path(),
            url: None,
            connect_timeout: None,
            pool_size: None,
        }
    }
}

/// The database a configuration names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres {
        url: Secret,
        connect_timeout: Duration,
        pool_size: usize,
    },
}

impl StorageConfig {
    /// SQLite at `path`, the default.
    pub fn sqlite(path: PathBuf) -> Self {
        Self {
            path,
            ..Self::default()
        }
    }

    /// PostgreSQL at `url`, with the default timeout and pool.
    pub fn postgres(url: &str) -> Self {
        Self {
            url: Some(Spanned::new(0..0, Secret::new(url))),
            ..Self::default()
        }
    }

    /// Which database, and how to reach it.
    pub fn database(&self) -> Database {
        match &self.url {
            None => Database::Sqlite(self.path.clone()),
            Some(url) => Database::Postgres {
                url: url.get_ref().clone(),
                connect_timeout: self
                    .connect_timeout
                    .as_ref()
                    .map_or(Duration::from_secs(10), |t| t.get_ref().0),
                pool_size: self.pool_size.as_ref().map_or(8, |n| *n.get_ref() as usize),
            },
        }
    }

    /// The database for messages: the file, or the URL without its password.
    pub fn describe(&self) -> String {
        match &self.url {
            None => self.path.display().to_string(),
            Some(url) => redacted_url(url.get_ref().expose()),
        }
    }

    /// Whether the database is there already (a SQLite file exists; a
    /// PostgreSQL server is assumed to hold one).
    pub fn exists(&self) -> bool {
        self.url.is_some() || self.path.exists()
    }

    /// The first thing wrong with `[storage]`: where, and what.
    fn error(&self) -> Option<(usize, String)> {
        if let (Some(url), Some(path)) = (&self.url, &self.given_path) {
            return Some((
                url.span().start.max(path.span().start),
                "[storage] takes either path (SQLite) or url (PostgreSQL), not both".into(),
            ));
        }
        let Some(url) = &self.url else {
            for (name, span) in [
                (
                    "connect_timeout",
                    self.connect_timeout.as_ref().map(|t| t.span()),
                ),
                ("pool_size", self.pool_size.as_ref().map(|t| t.span())),
            ] {
                if let Some(span) = span {
                    return Some((
                        span.start,
                        format!("{name} is for PostgreSQL: set [storage] url, or remove it"),
                    ));
                }
            }
            return None;
        };
        let at = url.span().start;
        // Never the URL itself in a message: it holds the password.
        match url::Url::parse(url.get_ref().expose()) {
            Err(e) => return Some((at, format!("the database url is not a URL ({e})"))),
            Ok(u) if !matches!(u.scheme(), "postgres" | "postgresql") => {
                return Some((
                    at,
                    format!(
                        "the database url must start with postgres:// or postgresql://, not {}://",
                        u.scheme()
                    ),
                ));
            }
            Ok(u) => {
                for (key, value) in u.query_pairs() {
                    if key == "sslmode"
                        && !matches!(
                            value.as_ref(),
                            "disable"
                                | "allow"
                                | "prefer"
                                | "require"
                                | "verify-ca"
                                | "verify-full"
                        )
                    {
                        return Some((
                            at,
                            format!("unknown sslmode {value:?} in the database url"),
                        ));
                    }
                }
            }
        }
        if let Some(n) = &self.pool_size
            && !(1..=64).contains(n.get_ref())
        {
            return Some((n.span().start, "pool_size must be between 1 and 64".into()));
        }
        if let Some(t) = &self.connect_timeout
            && t.get_ref().0.is_zero()
        {
            return Some((
                t.span().start,
                "connect_timeout must be more than zero".into(),
            ));
        }
        None
    }
}

/// `url` with its password (and any `password=` parameter) replaced by `***`.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == "password" {
                        "***".into()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            if !pairs.is_empty() {
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Err(_) => "(an unreadable database url)".into(),
    }
}

fn default_db_path() -> PathBuf {
    PathBuf::from("newsriver.db")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchConfig {
    /// Default time between two polls of a feed.
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
    /// Total time one request may take, body included.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Time to establish the TCP (and TLS) connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// Feeds fetched at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: NonZeroUsize,
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Largest response body accepted, in bytes (after decompression).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: PositiveU64,
    /// Redirects followed before a fetch fails.
    #[serde(default = "default_max_redirects")]
    pub max_redirects: usize,
    /// Each poll is moved by up to this fraction of the interval, earlier or later,
    /// so that feeds added together do not stay in lockstep.
    #[serde(default = "default_jitter")]
    pub jitter: Fraction,
    /// Longest wait between retries of a failing feed (backoff doubles up to this).
    #[serde(default = "default_max_backoff")]
    pub max_backoff: HumanDuration,
    /// Largest body accepted after gzip/deflate/brotli decoding, in bytes.
    #[serde(default = "default_max_decompressed_bytes")]
    pub max_decompressed_bytes: PositiveU64,
    /// Deadline for a whole fetch, redirects and body included: the guard
    /// against servers that drip a few bytes at a time.
    #[serde(default = "default_transfer_deadline")]
    pub transfer_deadline: HumanDuration,
    /// Requests to one host at once.
    #[serde(default = "default_host_concurrency")]
    pub host_concurrency: NonZeroUsize,
    /// Least time between the starts of two requests to one host.
    #[serde(default = "default_host_gap")]
    pub host_gap: Gap,
    /// Derive each feed's interval from how often it publishes, between
    /// `min_interval` and `max_interval`.
    #[serde(default = "default_adaptive")]
    pub adaptive: bool,
    #[serde(default = "default_min_interval")]
    pub min_interval: HumanDuration,
    #[serde(default = "default_max_interval")]
    pub max_interval: HumanDuration,
    /// Longest wait a 429/503 `Retry-After` can impose.
    #[serde(default = "default_max_retry_after")]
    pub max_retry_after: HumanDuration,
    /// A permanent redirect becomes the feed's new URL once seen this many times…
    #[serde(default = "default_redirect_confirmations")]
    pub redirect_confirmations: PositiveU64,
    /// …over at least this long.
    #[serde(default = "default_redirect_confirm_period")]
    pub redirect_confirm_period: HumanDuration,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            timeout: default_timeout(),
            connect_timeout: default_connect_timeout(),
            concurrency: default_concurrency(),
            user_agent: default_user_agent(),
            max_body_bytes: default_max_body_bytes(),
            max_redirects: default_max_redirects(),
            jitter: default_jitter(),
            max_backoff: default_max_backoff(),
            max_decompressed_bytes: default_max_decompressed_bytes(),
            transfer_deadline: default_transfer_deadline(),
            host_concurrency: default_host_concurrency(),
            host_gap: default_host_gap(),
            adaptive: default_adaptive(),
            min_interval: default_min_interval(),
            max_interval: default_max_interval(),
            max_retry_after: default_max_retry_after(),
            redirect_confirmations: default_redirect_confirmations(),
            redirect_confirm_period: default_redirect_confirm_period(),
        }
    }
}

fn default_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(30 * 60))
}
fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(20))
}
fn default_connect_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_concurrency() -> NonZeroUsize {
    NonZeroUsize::new(32).unwrap_or(NonZeroUsize::MIN)
}
fn default_user_agent() -> String {
    concat!(
        "newsriver/",
        env!("CARGO_PKG_VERSION"),
        " (+https://github.com/newsriver/newsriver)"
    )
    .to_string()
}
fn default_max_body_bytes() -> PositiveU64 {
    PositiveU64(15 * 1024 * 1024)
}
fn default_max_redirects() -> usize {
    10
}
fn default_jitter() -> Fraction {
    Fraction(0.1)
}
fn default_max_backoff() -> HumanDuration {
    HumanDuration(Duration::from_secs(24 * 3600))
}
fn default_max_decompressed_bytes() -> PositiveU64 {
    PositiveU64(32 * 1024 * 1024)
}
fn default_transfer_deadline() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn default_host_concurrency() -> NonZeroUsize {
    NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN)
}
fn default_host_gap() -> Gap {
    Gap(Duration::from_secs(1))
}
fn default_adaptive() -> bool {
    true
}
fn default_min_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(5 * 60))
}
fn default_max_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(12 * 3600))
}
fn default_max_retry_after() -> HumanDuration {
    HumanDuration(Duration::from_secs(6 * 3600))
}
fn default_redirect_confirmations() -> PositiveU64 {
    PositiveU64(3)
}
fn default_redirect_confirm_period() -> HumanDuration {
    HumanDuration(Duration::from_secs(24 * 3600))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Title of the merged feed.
    #[serde(default = "default_title")]
    pub title: String,
    /// Newest N entries in the merged feed.
    #[serde(default = "default_entries")]
    pub entries: NonZeroUsize,
    /// Public base URL of this service (e.g. "https://news.example.org/"), used for
    /// self links. Without it, links are built from the request's Host header.
    #[serde(default)]
    pub base_url: Option<HttpUrl>,
    /// A notice appended to every entry's content, naming its source, e.g.
    /// "Originally published by {source} on {published}: {link}".
    #[serde(default)]
    pub attribution: Option<Template>,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            title: default_title(),
            entries: default_entries(),
            base_url: None,
            attribution: None,
        }
    }
}

/// `[dedup]`: telling entries apart within a feed and merging one story's
/// copies across feeds. See README, "Deduplication".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupConfig {
    /// Near-duplicate matching across feeds (same canonical link always merges).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Estimated containment of one copy's 4-word shingles in the other's at
    /// or above which two entries are one story (0.0–1.0).
    #[serde(default = "default_threshold")]
    pub threshold: Ratio,
    /// Entries further apart than this are never one story.
    #[serde(default = "default_window")]
    pub window: HumanDuration,
    /// Texts with fewer shingles (about words) than this are too short to match.
    #[serde(default = "default_min_shingles")]
    pub min_shingles: u32,
    /// Share of a feed's entries with missing, repeated or unstable guids
    /// beyond which the feed is keyed by link (then by hash) instead (0.0–0.5).
    #[serde(default = "default_guid_tolerance")]
    pub guid_tolerance: Fraction,
    /// An entry whose only change is in digits counts as updated at most once per this long.
    #[serde(default = "default_churn_cooldown")]
    pub churn_cooldown: HumanDuration,
    /// Dates further before an entry's first-seen time than this are clamped for ordering.
    #[serde(default = "default_max_date_skew")]
    pub max_date_skew: HumanDuration,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: default_threshold(),
            window: default_window(),
            min_shingles: default_min_shingles(),
            guid_tolerance: default_guid_tolerance(),
            churn_cooldown: default_churn_cooldown(),
            max_date_skew: default_max_date_skew(),
        }
    }
}

impl DedupConfig {
    pub fn settings(&self) -> crate::identity::DedupSettings {
        let duration =
            |d: HumanDuration| chrono::Duration::from_std(d.0).unwrap_or(chrono::Duration::MAX);
        crate::identity::DedupSettings {
            matching: crate::identity::fingerprint::MatchSettings {
                enabled: self.enabled,
                threshold: self.threshold.0,
                window: duration(self.window),
                min_shingles: self.min_shingles,
            },
            guid_tolerance: self.guid_tolerance.0,
            churn_cooldown: duration(self.churn_cooldown),
            max_date_skew: duration(self.max_date_skew),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_threshold() -> Ratio {
    Ratio(0.5)
}
fn default_window() -> HumanDuration {
    HumanDuration(Duration::from_secs(48 * 3600))
}
fn default_min_shingles() -> u32 {
    8
}
fn default_guid_tolerance() -> Fraction {
    Fraction(0.05)
}
fn default_churn_cooldown() -> HumanDuration {
    HumanDuration(Duration::from_secs(6 * 3600))
}
fn default_max_date_skew() -> HumanDuration {
    HumanDuration(Duration::from_secs(30 * 24 * 3600))
}

/// A number from 0 to 1 inclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio(pub f64);

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(d)?;
        if !(0.0..=1.0).contains(&value) {
            return Err(de::Error::custom(format!(
                "{value} is out of range: write a number from 0.0 to 1.0"
            )));
        }
        Ok(Self(value))
    }
}

/// A text template whose `{placeholders}` are all known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub String);

/// Placeholders an attribution template may use.
pub const TEMPLATE_FIELDS: &[&str] = &["source", "published", "link", "author", "title"];

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let mut rest = text.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(de::Error::custom("a '{' in the template is never closed"));
            };
            let name = &after[..close];
            if !TEMPLATE_FIELDS.contains(&name) {
                return Err(de::Error::custom(format!(
                    "unknown placeholder {{{name}}}; use {}",
                    TEMPLATE_FIELDS
                        .iter()
                        .map(|f| format!("{{{f}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            rest = &after[close + 1..];
        }
        Ok(Self(text))
    }
}

fn default_title() -> String {
    "newsriver".to_string()
}
fn default_entries() -> NonZeroUsize {
    NonZeroUsize::new(100).unwrap_or(NonZeroUsize::MIN)
}

/// One `[[feed]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    pub url: Spanned<HttpUrl>,
    /// Overrides the feed's own title.
    #[serde(default)]
    pub title: Option<String>,
    /// Overrides `[fetch].interval`.
    #[serde(default)]
    pub interval: Option<HumanDuration>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Rank as a source: where several feeds carry one story, the highest
    /// priority is its primary source (ties: the first seen).
    #[serde(default)]
    pub priority: i64,
    /// An original publisher (a wire service, say): primary over any feed
    /// that is not, whatever their priorities.
    #[serde(default)]
    pub original: bool,
    /// HTTP basic auth for this feed.
    #[serde(default)]
    pub auth: Option<BasicAuth>,
    /// Extra request headers for this feed (API keys and the like).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, Secret>,
    /// Include/exclude rules for this feed only, on top of `[filters]`.
    #[serde(default)]
    pub filters: Option<crate::filter::FilterConfig>,
}

impl FeedConfig {
    pub fn url(&self) -> &Url {
        &self.url.get_ref().0
    }
}

/// A duration written for humans: "90s", "15m", "2h", "1day". Must be positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let duration = humantime::parse_duration(&text).map_err(|e| {
            de::Error::custom(format!(
                "invalid duration {text:?} ({e}); write it like \"90s\", \"15m\" or \"2h\""
            ))
        })?;
        if duration.is_zero() {
            return Err(de::Error::custom("a duration of zero is not allowed here"));
        }
        Ok(Self(duration))
    }
}

/// A duration that may be zero: "0s" turns the limit it sets off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap(pub Duration);

impl<'de> Deserialize<'de> for Gap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map(Self).map_err(|e| {
            de::Error::custom(format!(
                "invalid duration {text:?} ({e}); write it like \"500ms\", \"1s\" or \"0s\""
            ))
        })
    }
}

/// An absolute http or https URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(pub Url);

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let url = Url::parse(text.trim())
            .map_err(|e| de::Error::custom(format!("invalid URL {text:?}: {e}")))?;
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(de::Error::custom(format!(
                    "invalid URL {text:?}: the scheme must be http or https, not {other:?}"
                )));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(de::Error::custom(
                "credentials in a feed URL would show up in logs and exports: \
                 put them in `auth = { username = \"…\", password = { env = \"…\" } }` instead",
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(de::Error::custom(format!(
                "invalid URL {text:?}: it has no host"
            )));
        }
        Ok(Self(url))
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A number between 0 and 0.5 inclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fraction(pub f64);

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(d)?;
        if !(0.0..=0.5).contains(&value) {
            return Err(de::Error::custom(format!(
                "{value} is out of range: write a fraction from 0.0 to 0.5"
            )));
        }
        Ok(Self(value))
    }
}

/// A whole number greater than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositiveU64(pub u64);

impl<'de> Deserialize<'de> for PositiveU64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = u64::deserialize(d)?;
        if value == 0 {
            return Err(de::Error::custom("must be greater than zero"));
        }
        Ok(Self(value))
    }
}

impl Config {
    /// Reads and validates a configuration file. Relative paths in it are resolved
    /// against the file's folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::parse(&text, path)?;
        if config.storage.path.is_relative() && config.storage.url.is_none() {
            let folder = path.parent().unwrap_or(Path::new(""));
            config.storage.path = folder.join(&config.storage.path);
        }
        Ok(config)
    }

    /// Parses and validates configuration text; `path` is used only in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let invalid = |span: Option<std::ops::Range<usize>>, message: String| {
            let (line, column) = line_col(text, span.map_or(0, |s| s.start));
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let mut config: Config =
            toml::from_str(text).map_err(|e| invalid(e.span(), e.message().trim().to_string()))?;
        if let Some(given) = &config.storage.given_path {
            config.storage.path = given.get_ref().clone();
        }
        if let Some((offset, message)) = config.storage.error() {
            return Err(invalid(Some(offset..offset), message));
        }

        // Checks that involve more than one value.
        let mut seen = std::collections::HashMap::new();
        for feed in &config.feeds {
            if let Some(first) = seen.insert(feed.url().as_str(), feed.url.span()) {
                let (line, _) = line_col(text, first.start);
                return Err(invalid(
                    Some(feed.url.span()),
                    format!(
                        "the feed {} is listed twice (first at line {line})",
                        feed.url()
                    ),
                ));
            }
            for name in feed.headers.keys() {
                if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(invalid(
                        Some(feed.url.span()),
                        format!("{name:?} is not a valid HTTP header name"),
                    ));
                }
            }
            for value in feed.headers.values() {
                if reqwest::header::HeaderValue::from_str(value.expose()).is_err() {
                    // The value is a secret: say which feed, never what it is.
                    return Err(invalid(
                        Some(feed.url.span()),
                        "a header value of this feed contains characters HTTP does not allow"
                            .to_string(),
                    ));
                }
            }
            for tag in &feed.tags {
                if tag.trim().is_empty() || tag.contains('/') {
                    return Err(invalid(
                        Some(feed.url.span()),
                        format!(
                            "the tag {tag:?} is not allowed: tags must be non-empty and contain no '/'"
                        ),
                    ));
                }
            }
        }
        if let Some((span, message)) = crate::filter::first_error(&config) {
            return Err(invalid(Some(span), message));
        }
        if let Some((offset, message)) = search_error(&config, text) {
            return Err(invalid(Some(offset..offset), message));
        }
        let websub = &config.websub;
        if let Some(subscribe) = &websub.subscribe
            && *subscribe.get_ref()
            && config.output.base_url.is_none()
        {
            return Err(invalid(
                Some(subscribe.span()),
                "`subscribe = true` needs `[output] base_url`: hubs call back to a public address"
                    .to_string(),
            ));
        }
        if websub.hub.is_some() && config.output.base_url.is_none() {
            let at = text.find("[websub]").unwrap_or(0);
            return Err(invalid(
                Some(at..at),
                "`[websub] hub` needs `[output] base_url`: the hub is told our feeds' public addresses"
                    .to_string(),
            ));
        }
        if let Some(serve_hub) = &websub.serve_hub
            && *serve_hub.get_ref()
        {
            let message = if config.output.base_url.is_none() {
                Some("`serve_hub = true` needs `[output] base_url`: subscribers call the hub there")
            } else if websub.hub.is_some() {
                Some("`serve_hub = true` and `hub` both name the hub: keep one")
            } else {
                None
            };
            if let Some(message) = message {
                return Err(invalid(Some(serve_hub.span()), message.to_string()));
            }
        }
        Ok(config)
    }

    /// Whether to subscribe to the hubs feeds advertise: as configured, else
    /// whenever `[output] base_url` is set.
    pub fn websub_subscribe(&self) -> bool {
        match &self.websub.subscribe {
            Some(on) => *on.get_ref(),
            None => self.output.base_url.is_some(),
        }
    }

    /// Whether newsriver is its own hub (`[websub] serve_hub`).
    pub fn websub_serve_hub(&self) -> bool {
        self.websub.serve_hub.as_ref().is_some_and(|s| *s.get_ref())
            && self.output.base_url.is_some()
    }

    /// The hub the river's own feeds are announced on: `[websub] hub`, or
    /// the built-in one at `{base_url}hub`.
    pub fn websub_hub(&self) -> Option<String> {
        if self.websub_serve_hub() {
            return self
                .output
                .base_url
                .as_ref()
                .and_then(|u| u.0.join("hub").ok())
                .map(|u| u.to_string());
        }
        self.websub.hub.as_ref().map(|u| u.0.to_string())
    }

    /// Poll interval of one feed: its own, or the default.
    pub fn interval_of(&self, feed: &FeedConfig) -> Duration {
        feed.interval.unwrap_or(self.fetch.interval).0
    }

    /// A one-line summary for `newsriver check`.
    pub fn summary(&self) -> String {
        let tags: std::collections::BTreeSet<&str> = self
            .feeds
            .iter()
            .flat_map(|f| f.tags.iter().map(String::as_str))
            .collect();
        format!(
            "{} feed{}, {} tag{}, database {}, serving on {}",
            self.feeds.len(),
            if self.feeds.len() == 1 { "" } else { "s" },
            tags.len(),
            if tags.len() == 1 { "" } else { "s" },
            self.storage.describe(),
            self.server.listen
        )
    }
}

/// The first invalid `[[search]]`: the byte offset to report and what is
/// wrong. A query's error points at its column inside the TOML string when
/// the string is written without escapes (as most are).
fn search_error(config: &Config, text: &str) -> Option<(usize, String)> {
    let mut names = std::collections::HashMap::new();
    for search in &config.searches {
        let name = search.name.get_ref();
        let name_at = search.name.span().start;
        if !crate::search::valid_name(name) {
            return Some((
                name_at,
                format!("the search name {name:?} is not allowed: use a-z, 0-9 and '-'"),
            ));
        }
        if let Some(first) = names.insert(name.as_str(), name_at) {
            let (line, _) = line_col(text, first);
            return Some((
                name_at,
                format!("the search {name:?} is defined twice (first at line {line})"),
            ));
        }
        for tag in &search.tags {
            if tag.trim().is_empty() || tag.contains('/') {
                return Some((
                    name_at,
                    format!(
                        "the tag {tag:?} is not allowed: tags must be non-empty and contain no '/'"
                    ),
                ));
            }
        }
        if let Err(e) = crate::search::Query::parse(search.query.get_ref()) {
            let span = search.query.span();
            let raw = text.get(span.clone()).unwrap_or_default();
            let query = search.query.get_ref();
            // 'literal' or "basic" without escapes: the text is the query.
            let inner = if raw == query {
                Some(span.start)
            } else if raw.len() == query.len() + 2 && raw.get(1..raw.len() - 1) == Some(query) {
                Some(span.start + 1)
            } else {
                None
            };
            let offset = inner.map_or(span.start, |start| {
                start
                    + query
                        .char_indices()
                        .nth(e.column.saturating_sub(1))
                        .map_or(query.len(), |(i, _)| i)
            });
            return Some((offset, format!("search {name:?}: {}", e.message)));
        }
    }
    None
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    fn error_of(text: &str) -> String {
        parse(text)
            .expect_err("config should be rejected")
            .to_string()
    }

    #[test]
    fn defaults_fill_an_empty_file() {
        let config = parse("").unwrap();
        assert_eq!(config.fetch.interval.0, Duration::from_secs(1800));
        assert_eq!(config.fetch.concurrency.get(), 32);
        assert_eq!(config.output.entries.get(), 100);
        assert!(config.feeds.is_empty());
    }

    #[test]
    fn per_feed_interval_overrides_the_default() {
        let config = parse(
            "[fetch]\ninterval = \"1h\"\n[[feed]]\nurl = \"https://a.example/f\"\ninterval = \"10m\"\n[[feed]]\nurl = \"https://b.example/f\"\n",
        )
        .unwrap();
        assert_eq!(
            config.interval_of(&config.feeds[0]),
            Duration::from_secs(600)
        );
        assert_eq!(
            config.interval_of(&config.feeds[1]),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let err = error_of("[fetch]\ninterval = \"1h\"\nintervall = \"2h\"\n");
        assert!(
            err.starts_with("test.toml:3:1: unknown field `intervall`"),
            "{err}"
        );
    }

    #[test]
    fn bad_duration_is_explained() {
        let err = error_of("[[feed]]\nurl = \"https://a.example/\"\ninterval = \"often\"\n");
        assert!(
            err.starts_with("test.toml:3:12: invalid duration \"often\""),
            "{err}"
        );
    }

    #[test]
    fn bad_url_and_bad_scheme_are_rejected() {
        let err = error_of("[[feed]]\nurl = \"not a url\"\n");
        assert!(
            err.starts_with("test.toml:2:7: invalid URL \"not a url\""),
            "{err}"
        );
        let err = error_of("[[feed]]\nurl = \"ftp://a.example/feed\"\n");
        assert!(err.contains("scheme must be http or https"), "{err}");
    }

    #[test]
    fn missing_url_is_reported() {
        let err = error_of("[[feed]]\ntitle = \"x\"\n");
        assert!(
            err.starts_with("test.toml:1:1: missing field `url`"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_feed_is_rejected_with_both_lines() {
        let err = error_of(
            "[[feed]]\nurl = \"https://a.example/f\"\n[[feed]]\nurl = \"https://a.example/f\"\n",
        );
        assert!(
            err.starts_with(
                "test.toml:4:7: the feed https://a.example/f is listed twice (first at line 2)"
            ),
            "{err}"
        );
    }

    #[test]
    fn zero_and_out_of_range_values_are_rejected() {
        assert!(error_of("[fetch]\nconcurrency = 0\n").starts_with("test.toml:2:15:"));
        assert!(error_of("[fetch]\njitter = 0.9\n").contains("out of range"));
        assert!(error_of("[fetch]\ninterval = \"0s\"\n").contains("zero"));
        assert!(error_of("[output]\nentries = 0\n").starts_with("test.toml:2:11:"));
    }

    #[test]
    fn dedup_and_attribution_options_are_read_and_checked() {
        let config = parse(
            "[dedup]\nenabled = false\nthreshold = 0.6\nwindow = \"1day\"\n[output]\nattribution = \"From {source}: {link}\"\n[[feed]]\nurl = \"https://a.example/f\"\npriority = 5\noriginal = true\n",
        )
        .unwrap();
        let settings = config.dedup.settings();
        assert!(!settings.matching.enabled);
        assert_eq!(settings.matching.threshold, 0.6);
        assert_eq!(settings.matching.window, chrono::Duration::days(1));
        assert_eq!(config.feeds[0].priority, 5);
        assert!(config.feeds[0].original);
        assert_eq!(
            config.output.attribution.unwrap().0,
            "From {source}: {link}"
        );
        assert!(parse("").unwrap().dedup.settings().matching.enabled);
        assert!(error_of("[dedup]\nthreshold = 1.5\n").starts_with("test.toml:2:13:"));
        let err = error_of("[output]\nattribution = \"By {sorce}\"\n");
        assert!(
            err.starts_with("test.toml:2:15: unknown placeholder {sorce}"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = error_of("[server]\nlisten = \n");
        assert!(err.starts_with("test.toml:2:"), "{err}");
    }

    #[test]
    fn named_searches_are_checked_with_line_and_column() {
        let ok = parse(
            "[[search]]\nname = \"karabakh\"\nquery = 'karabakh OR \"nagorno karabakh\" -sport'\ntags = [\"world\"]\n",
        )
        .unwrap();
        assert_eq!(ok.searches.len(), 1);
        assert_eq!(ok.searches[0].tags, ["world"]);
        // The query's own error, at its column inside the TOML string.
        let e = error_of("[[search]]\nname = \"a\"\nquery = 'ok \"unclosed'\n");
        assert!(e.contains("test.toml:3:13:"), "{e}");
        assert!(e.contains("never closed"), "{e}");
        let e = error_of("[[search]]\nname = \"Bad Name\"\nquery = \"x\"\n");
        assert!(
            e.contains("test.toml:2:8:") && e.contains("a-z, 0-9"),
            "{e}"
        );
        let e = error_of(
            "[[search]]\nname = \"a\"\nquery = \"x\"\n[[search]]\nname = \"a\"\nquery = \"y\"\n",
        );
        assert!(
            e.contains("test.toml:5:8:") && e.contains("first at line 2"),
            "{e}"
        );
        let e = error_of("[[search]]\nname = \"a\"\nquery = \"-x\"\n");
        assert!(e.contains("only excludes"), "{e}");
        let e = error_of("[[search]]\nname = \"a\"\n");
        assert!(e.contains("query"), "{e}");
        let e = error_of("[[search]]\nname = \"a\"\nquery = \"x\"\ntags = [\"a/b\"]\n");
        assert!(e.contains("not allowed"), "{e}");
    }

    #[test]
    fn websub_is_checked_with_line_and_column() {
        let on = parse("[output]\nbase_url = \"https://r.example/\"\n[websub]\nhub = \"https://hub.example/\"\n").unwrap();
        assert!(on.websub_subscribe(), "on by default with base_url");
        assert_eq!(on.websub_hub().as_deref(), Some("https://hub.example/"));
        assert!(!parse("").unwrap().websub_subscribe());
        let off =
            parse("[output]\nbase_url = \"https://r.example/\"\n[websub]\nsubscribe = false\n")
                .unwrap();
        assert!(!off.websub_subscribe());
        let e = error_of("[websub]\nsubscribe = true\n");
        assert!(
            e.starts_with("test.toml:2:13:") && e.contains("base_url"),
            "{e}"
        );
        let e = error_of("[websub]\nsubscrbe = true\n");
        assert!(
            e.starts_with("test.toml:2:1: unknown field `subscrbe`"),
            "{e}"
        );
        let e = error_of("[websub]\nhub = \"https://h.example/\"\n");
        assert!(
            e.starts_with("test.toml:1:1:") && e.contains("base_url"),
            "{e}"
        );
        let e = error_of("[websub]\nhub = \"ftp://x.example/\"\n");
        assert!(
            e.starts_with("test.toml:2:7:") && e.contains("http or https"),
            "{e}"
        );
        let hub =
            parse("[output]\nbase_url = \"https://r.example/news/\"\n[websub]\nserve_hub = true\n")
                .unwrap();
        assert!(hub.websub_serve_hub());
        assert_eq!(
            hub.websub_hub().as_deref(),
            Some("https://r.example/news/hub")
        );
        assert_eq!(hub.websub.max_subscribers.0, 1000);
        let e = error_of("[websub]\nserve_hub = true\n");
        assert!(
            e.starts_with("test.toml:2:13:") && e.contains("base_url"),
            "{e}"
        );
        let e = error_of(
            "[output]\nbase_url = \"https://r.example/\"\n[websub]\nhub = \"https://h.example/\"\nserve_hub = true\n",
        );
        assert!(
            e.starts_with("test.toml:5:13:") && e.contains("keep one"),
            "{e}"
        );
        let e = error_of(
            "[output]\nbase_url = \"https://r.example/\"\n[websub]\nmax_subscribers = 0\n",
        );
        assert!(e.starts_with("test.toml:4:19:"), "{e}");
    }

    #[test]
    fn storage_path_is_relative_to_the_config_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf.toml");
        std::fs::write(&path, "[storage]\npath = \"data/river.db\"\n").unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.storage.path, dir.path().join("data/river.db"));
    }
}
