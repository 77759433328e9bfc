//! What `/status`, `/status.json` and `newsriver feeds` show of a river of any
//! size: one filter (state, tag, host, text, page), read from a query string or
//! from the command line, and the summary, pages and per-feed details the store
//! answers it with (the SQL is in `store/status.rs`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{FeedId, FeedStatus};

/// Feeds on one page of `/status` and `/status.json`: a row of the table is
/// under 1 kB, so a page stays well under 200 kB whatever the titles.
pub const PAGE_SIZE: usize = 100;

/// Longest `tag`, `host` or `q` accepted (characters).
const MAX_TEXT: usize = 200;

/// Highest `page` accepted: far beyond any river, and no overflow in OFFSET.
const MAX_PAGE: usize = 1_000_000;

/// Which feeds by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StateFilter {
    Failing,
    Ok,
    /// Not polled yet.
    New,
    /// Waiting as a 429/503 with Retry-After asked.
    Throttled,
    /// No longer polled: 410 Gone, or removed from the configuration.
    Retired,
}

impl StateFilter {
    pub const ALL: [StateFilter; 5] = [
        StateFilter::Failing,
        StateFilter::Ok,
        StateFilter::New,
        StateFilter::Throttled,
        StateFilter::Retired,
    ];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StateFilter::Failing => "failing",
            StateFilter::Ok => "ok",
            StateFilter::New => "new",
            StateFilter::Throttled => "throttled",
            StateFilter::Retired => "retired",
        }
    }
}

/// A filter that cannot be applied, said in words for a 400 or the terminal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("unknown state {0:?} (use failing, ok, new, throttled or retired)")]
    State(String),
    #[error("page must be a number from 1 to {MAX_PAGE}, not {0:?}")]
    Page(String),
    #[error("{0} is longer than {MAX_TEXT} characters")]
    TooLong(&'static str),
}

/// Which feeds to list, and which page of them. The same for HTTP and the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedFilter {
    pub state: Option<StateFilter>,
    /// Feeds carrying this tag.
    pub tag: Option<String>,
    /// Feeds whose configured URL is on this host (lower case, no port).
    pub host: Option<String>,
    /// Feeds whose title or URL contains this (case-insensitive for ASCII).
    pub text: Option<String>,
    /// 1-based.
    pub page: usize,
}

impl Default for FeedFilter {
    fn default() -> Self {
        Self {
            state: None,
            tag: None,
            host: None,
            text: None,
            page: 1,
        }
    }
}

/// `?state=&tag=&host=&q=&page=` as they arrive: strings, so that a bad value
/// gets our own message rather than the extractor's.
#[derive(Debug, Default, Deserialize)]
pub struct FilterQuery {
    pub state: Option<String>,
    pub tag: Option<String>,
    pub host: Option<String>,
    pub q: Option<String>,
    pub page: Option<String>,
}

/// An empty field (a submitted form leaves them empty) is no filter.
fn present(value: Option<&str>, name: &'static str) -> Result<Option<String>, FilterError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.chars().count() > MAX_TEXT => Err(FilterError::TooLong(name)),
        Some(v) => Ok(Some(v.to_string())),
    }
}

impl FeedFilter {
    /// Reads the filter from its parts, as given on a query string or command line.
    pub fn new(
        state: Option<&str>,
        tag: Option<&str>,
        host: Option<&str>,
        text: Option<&str>,
        page: Option<&str>,
    ) -> Result<Self, FilterError> {
        let state = match present(state, "state")? {
            None => None,
            Some(s) => {
                Some(StateFilter::parse(&s.to_ascii_lowercase()).ok_or(FilterError::State(s))?)
            }
        };
        let page = match present(page, "page")? {
            None => 1,
            Some(p) => p
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or(FilterError::Page(p))?,
        };
        Ok(Self {
            state,
            tag: present(tag, "tag")?,
            host: present(host, "host")?.map(|h| host_only(&h)),
            text: present(text, "q")?,
            page,
        })
    }

    pub fn from_query(query: &FilterQuery) -> Result<Self, FilterError> {
        Self::new(
            query.state.as_deref(),
            query.tag.as_deref(),
            query.host.as_deref(),
            query.q.as_deref(),
            query.page.as_deref(),
        )
    }

    /// The query string of this filter at `page` ("" for the first page of
    /// everything), percent-encoded, for links between pages.
    pub fn query_string(&self, page: usize) -> String {
        let mut url = url::Url::parse("http://x/").expect("a constant URL parses");
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(s) = self.state {
                pairs.append_pair("state", s.as_str());
            }
            for (name, value) in [("tag", &self.tag), ("host", &self.host), ("q", &self.text)] {
                if let Some(v) = value {
                    pairs.append_pair(name, v);
                }
            }
            if page > 1 {
                pairs.append_pair("page", &page.to_string());
            }
        }
        match url.query() {
            Some(q) if !q.is_empty() => format!("?{q}"),
            _ => String::new(),
        }
    }

    /// This filter on another page.
    pub fn at_page(&self, page: usize) -> Self {
        Self {
            page,
            ..self.clone()
        }
    }
}

/// "Example.com:8080", "https://example.com/feed" → "example.com".
fn host_only(text: &str) -> String {
    let text = text.to_ascii_lowercase();
    if text.contains("://")
        && let Some(host) = url::Url::parse(&text)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
    {
        return host;
    }
    let text = text.split('/').next().unwrap_or_default();
    match text.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !host.contains(']') => {
            host.to_string()
        }
        _ => text.to_string(),
    }
}

/// Feeds counted by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    pub total: u64,
    pub ok: u64,
    pub failing: u64,
    pub new: u64,
    pub throttled: u64,
    pub retired: u64,
}

/// Failing feeds by the kind of their last error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureKind {
    pub kind: String,
    pub feeds: u64,
}

/// The feed polled next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextPoll {
    pub feed_id: FeedId,
    pub title: String,
    pub at: DateTime<Utc>,
}

/// The head of `/status`: the river at a glance, whatever its size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub feeds: StateCounts,
    pub entries: u64,
    pub polls_last_hour: u64,
    pub failures: Vec<FailureKind>,
    pub next_poll: Option<NextPoll>,
    pub database_bytes: u64,
}

/// One page of feeds matching a filter: failing first, then by title.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPage {
    /// Feeds matching the filter, on every page.
    pub matching: u64,
    pub page: usize,
    pub pages: usize,
    pub feeds: Vec<FeedStatus>,
}

/// One poll, as the feed's history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PollEntry {
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// stored, unchanged, not modified, pushed, throttled, gone or failed.
    pub outcome: String,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub new_entries: u64,
    pub updated_entries: u64,
}

/// A permanent redirect seen but not yet adopted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingMove {
    pub to: String,
    pub seen: u32,
    pub since: DateTime<Utc>,
}

/// Everything known about one feed, for `/status/feeds/{id}`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedDetail {
    pub status: FeedStatus,
    pub tags: Vec<String>,
    pub site_url: Option<String>,
    /// The configured interval.
    pub interval_secs: u64,
    /// The adaptive interval learned, when it differs from the configured one.
    pub poll_interval_secs: Option<u64>,
    pub fixed_interval: bool,
    /// RSS skipHours (bit n = hour n, UTC) and skipDays (bit 0 = Monday).
    pub skip_hours: u32,
    pub skip_days: u8,
    pub moving: Option<PendingMove>,
    /// How its entries are keyed: guid, link or hash.
    pub identity: String,
    /// What the last parse recovered from, one per line; empty when clean.
    pub parse_warnings: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// The newest first.
    pub history: Vec<PollEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_from_text_and_refuse_nonsense() {
        let f =
            FeedFilter::new(Some("failing"), Some(" world "), None, Some(""), Some("3")).unwrap();
        assert_eq!(f.state, Some(StateFilter::Failing));
        assert_eq!(f.tag.as_deref(), Some("world"));
        assert_eq!(f.text, None);
        assert_eq!(f.page, 3);
        assert!(matches!(
            FeedFilter::new(Some("broken"), None, None, None, None),
            Err(FilterError::State(_))
        ));
        for page in ["0", "-1", "x", "99999999999999999999"] {
            assert!(
                FeedFilter::new(None, None, None, None, Some(page)).is_err(),
                "{page}"
            );
        }
        let long = "x".repeat(MAX_TEXT + 1);
        assert!(FeedFilter::new(None, None, None, Some(&long), None).is_err());
    }

    #[test]
    fn hosts_are_reduced_to_the_host_name() {
        assert_eq!(host_only("Example.COM"), "example.com");
        assert_eq!(host_only("example.com:8080"), "example.com");
        assert_eq!(
            host_only("https://news.example.com/feed.xml"),
            "news.example.com"
        );
    }

    #[test]
    fn query_strings_round_trip_with_encoding() {
        let f = FeedFilter::new(Some("ok"), Some("a&b c"), None, Some("<x>"), None).unwrap();
        let q = f.query_string(2);
        assert_eq!(q, "?state=ok&tag=a%26b+c&q=%3Cx%3E&page=2");
        assert_eq!(FeedFilter::default().query_string(1), "");
    }
}
