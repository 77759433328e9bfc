//! Plain data passed between the pipeline's stages.

use chrono::{DateTime, Utc};

/// Row id of a feed in the store.
pub type FeedId = i64;

/// What a feed says about itself, as parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceMeta {
    /// The feed's own id (Atom `<id>`, JSON `feed_url`), when it has one.
    pub id: Option<String>,
    pub title: Option<String>,
    /// The outlet's web site (`rel="alternate"` / `<link>` / `home_page_url`).
    pub site_url: Option<String>,
    pub rights: Option<String>,
    /// Feed-level author, used where an entry names none.
    pub author: Option<String>,
    pub updated: Option<DateTime<Utc>>,
}

/// One parsed entry, with HTML already sanitised and text fields trimmed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedEntry {
    /// guid / id as the source gave it; `None` when it gave none.
    pub guid: Option<String>,
    pub title: String,
    /// Absolute URL of the original article.
    pub link: Option<String>,
    pub author: Option<String>,
    /// Sanitised HTML.
    pub summary: Option<String>,
    /// Sanitised HTML.
    pub content: Option<String>,
    pub rights: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    /// Categories / tags the source gave the entry (for filters).
    pub categories: Vec<String>,
}

/// A parsed feed document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedFeed {
    pub meta: SourceMeta,
    pub entries: Vec<ParsedEntry>,
    /// What the document says about how often to poll it.
    pub hints: FeedHints,
    /// What was wrong with a document that was read only after recovery
    /// (feedparser's "bozo"): one short line each. Empty for a clean parse.
    pub warnings: Vec<String>,
    /// The WebSub hubs and self URL it advertises.
    pub websub: WebSubLinks,
}

/// WebSub discovery: `rel="hub"` and `rel="self"` links (of a document or
/// of HTTP `Link` headers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebSubLinks {
    pub hubs: Vec<String>,
    pub self_url: Option<String>,
}

/// A feed document's own polling hints; they may only lengthen the interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedHints {
    /// RSS `<ttl>`.
    pub ttl: Option<std::time::Duration>,
    /// `sy:updatePeriod` divided by `sy:updateFrequency`.
    pub update_period: Option<std::time::Duration>,
    pub skip: Skip,
}

/// RSS `skipHours` / `skipDays` (UTC): times not to poll.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skip {
    /// Bit n set: skip hour n (0–23).
    pub hours: u32,
    /// Bit n set: skip day n, Monday = 0.
    pub days: u8,
}

/// A permanent redirect seen while polling, not yet adopted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedTo {
    pub url: String,
    /// Consecutive polls that saw it.
    pub seen: u32,
    pub since: DateTime<Utc>,
}

/// An entry ready to be stored: parsed, with its identity within its feed decided.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentifiedEntry {
    /// Identity within the feed: `guid:…`, `link:…` or `hash:…`.
    pub key: String,
    /// Hash of the fields whose change makes the entry "updated".
    pub hash: String,
    /// The same with digits masked (`identity::churn_hash`).
    pub churn: String,
    /// Near-duplicate fingerprint of title and text; `None` without words.
    /// Worked out here, in the parallel identify stage, not by the writer.
    pub fingerprint: Option<crate::identity::fingerprint::Fingerprint>,
    /// The entry's link in canonical form (`identity::canonical_url`).
    /// Like the hashes, worked out from `entry` when identified: build a new
    /// `IdentifiedEntry` rather than editing `entry` in place.
    pub canonical: Option<String>,
    /// Whether `canonical` names one article (a path other than `/`, or a
    /// query), so another feed's entry with the same link is the same story.
    pub article_link: bool,
    pub entry: ParsedEntry,
}

/// HTTP validators kept between polls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A feed that is due, with what fetching it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedToPoll {
    pub id: FeedId,
    pub url: String,
    pub validators: Validators,
    pub interval: std::time::Duration,
    /// Consecutive failures so far.
    pub failures: u32,
    /// Where to fetch it: `url`, or the address it has permanently moved to.
    pub fetch_url: String,
    /// Hash of the last body parsed, to skip unchanged 200s.
    pub body_hash: Option<String>,
    /// The adaptive interval last worked out, if any.
    pub current_interval: Option<std::time::Duration>,
    pub moved: Option<MovedTo>,
    pub skip: Skip,
    /// Its `[[feed]]` sets the interval: not adaptive.
    pub fixed_interval: bool,
    /// A WebSub hub pushes it (subscription verified, lease running): polls
    /// are only a safety net, at `[fetch] max_interval`.
    pub pushed: bool,
}

/// Health of a feed as last polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedState {
    /// Never polled.
    New,
    Ok,
    Failing,
    /// Asked to wait by a 429/503 with `Retry-After`; not a failure.
    Throttled,
    /// 410 Gone: kept, no longer polled.
    Gone,
}

impl FeedState {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedState::New => "new",
            FeedState::Ok => "ok",
            FeedState::Failing => "failing",
            FeedState::Throttled => "throttled",
            FeedState::Gone => "gone",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "ok" => FeedState::Ok,
            "failing" => FeedState::Failing,
            "throttled" => FeedState::Throttled,
            "gone" => FeedState::Gone,
            _ => FeedState::New,
        }
    }
}

/// A feed as stored, for status displays and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedStatus {
    pub id: FeedId,
    pub url: String,
    pub title: Option<String>,
    pub active: bool,
    pub state: FeedState,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub failures: u32,
    pub last_polled_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub next_poll_at: DateTime<Utc>,
    pub entries: u64,
    pub validators: Validators,
    /// The address adopted after a confirmed permanent redirect.
    pub fetch_url: Option<String>,
    /// What the last parse recovered from (empty when it was clean).
    pub parse_warnings: Vec<String>,
}

/// The source of a published entry, for `<source>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The source's own id if it has one, else its feed URL.
    pub id: String,
    pub title: String,
    pub feed_url: String,
    pub site_url: Option<String>,
    pub rights: Option<String>,
    pub updated: DateTime<Utc>,
}

/// One outlet's copy of a story.
#[derive(Debug, Clone, PartialEq)]
pub struct Outlet {
    pub source: Source,
    /// The outlet's own link to its copy.
    pub link: Option<String>,
    pub title: String,
    /// As for [`Story::author`].
    pub author: String,
    pub published: Option<DateTime<Utc>>,
}

/// One story, ready to publish: the primary source's entry, with every other
/// outlet that carried it. All fields but `also` describe the primary copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Story {
    /// Permanent id: the uid of the story's first stored entry, whichever
    /// outlet is primary now.
    pub uid: String,
    pub title: String,
    pub link: Option<String>,
    /// Original author: the entry's own, else an explicit byline in its text
    /// ("By Reuters"), else the feed-level author, else the source's name.
    pub author: String,
    pub summary: Option<String>,
    pub content: Option<String>,
    pub rights: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub updated: DateTime<Utc>,
    pub source: Source,
    /// The other outlets that carried the story, primary excluded, ranked as
    /// the primary is chosen (original, priority, then first seen).
    pub also: Vec<Outlet>,
}
