//! Status: the summary, filtered pages of feeds, and one feed's details.
//! This part of the store interface; each backend implements it.

use crate::model::{FeedId, FeedStatus};
use crate::status::{FeedDetail, FeedFilter, FeedPage, StateFilter, Summary};
use chrono::{DateTime, Utc};

use super::*;

/// Polls kept per feed in `poll_history`.
pub const HISTORY_PER_FEED: i64 = 20;

/// Failing feeds counted by kind of failure, most first (`Summary::failures`);
/// the same SQL on both backends.
pub(crate) const FAILURE_KINDS: &str = "SELECT kind, COUNT(*) FROM (
    SELECT CASE
        WHEN last_error LIKE 'this is a web page%' THEN 'web page, not a feed'
        WHEN last_status >= 400 THEN 'HTTP ' || last_status
        WHEN last_error LIKE 'not a readable feed%'
          OR last_error LIKE 'the response%'
          OR last_error LIKE 'parser crashed%' THEN 'not a readable feed'
        WHEN last_error LIKE '%larger than%' THEN 'too large'
        WHEN last_error LIKE '%redirect%' THEN 'redirects'
        WHEN last_error LIKE '%not finished within%'
          OR last_error LIKE '%timed out%' THEN 'timeout'
        WHEN last_error LIKE 'storing failed%' THEN 'database'
        ELSE 'network' END AS kind
    FROM feeds WHERE active = 1 AND state = 'failing') kinds
 GROUP BY kind ORDER BY COUNT(*) DESC, kind";

/// Failing first, then by title (the URL for a feed with none), then by id.
pub(crate) const ORDER: &str = "CASE WHEN f.active = 1 AND f.state = 'failing' THEN 0 ELSE 1 END,
     LOWER(COALESCE(f.config_title, f.title, f.url)), f.id";

/// `text` for a LIKE pattern with `\` as the escape character.
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The WHERE clause of `filter` over `feeds f`, and its values, numbered
/// after `mark` (`?1`… for SQLite, `$1`… for PostgreSQL).
pub(crate) fn where_clause(filter: &FeedFilter, mark: char) -> (String, Vec<String>) {
    let mut terms: Vec<String> = Vec::new();
    let mut values: Vec<String> = Vec::new();
    let bind = |values: &mut Vec<String>, v: String| {
        values.push(v);
        format!("{mark}{}", values.len())
    };
    if let Some(state) = filter.state {
        terms.push(
            match state {
                StateFilter::Failing => "f.active = 1 AND f.state = 'failing'",
                StateFilter::Ok => "f.active = 1 AND f.state = 'ok'",
                StateFilter::New => "f.active = 1 AND f.state = 'new'",
                StateFilter::Throttled => "f.active = 1 AND f.state = 'throttled'",
                StateFilter::Retired => "(f.active = 0 OR f.state = 'gone')",
            }
            .to_string(),
        );
    }
    if let Some(tag) = &filter.tag {
        let p = bind(&mut values, tag.clone());
        terms.push(format!(
            "EXISTS (SELECT 1 FROM feed_tags t WHERE t.feed_id = f.id AND t.tag = {p})"
        ));
    }
    if let Some(host) = &filter.host {
        // The host of the configured URL, ended by a path, port, query or
        // nothing: `example.com` is not `example.com.evil`.
        let host = like_escaped(&host.to_lowercase());
        let mut any = Vec::new();
        for scheme in ["http://", "https://"] {
            let exact = bind(&mut values, format!("{scheme}{host}"));
            any.push(format!("LOWER(f.url) LIKE {exact} ESCAPE '\\'"));
            for end in ['/', ':', '?', '#'] {
                let p = bind(&mut values, format!("{scheme}{host}{end}%"));
                any.push(format!("LOWER(f.url) LIKE {p} ESCAPE '\\'"));
            }
        }
        terms.push(format!("({})", any.join(" OR ")));
    }
    if let Some(text) = &filter.text {
        let p = bind(
            &mut values,
            format!("%{}%", like_escaped(&text.to_lowercase())),
        );
        terms.push(format!(
            "(LOWER(COALESCE(f.config_title, f.title, '')) LIKE {p} ESCAPE '\\'
              OR LOWER(f.url) LIKE {p} ESCAPE '\\')"
        ));
    }
    if terms.is_empty() {
        ("1 = 1".to_string(), values)
    } else {
        (terms.join(" AND "), values)
    }
}

/// The column's text: one warning a line (a warning's own line breaks become
/// spaces), NULL when there are none.
pub(crate) fn parse_warnings_text(warnings: &[String]) -> Option<String> {
    let lines: Vec<String> = warnings
        .iter()
        .map(|w| w.replace(['\r', '\n'], " ").trim().to_string())
        .filter(|w| !w.is_empty())
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

pub trait Status {
    /// The river at a glance: feeds by state, entries, polls in the last
    /// hour, failing feeds by kind of error, the next poll, the database size.
    fn status_summary(&self, now: DateTime<Utc>) -> Result<Summary, StoreError>;

    /// The page of feeds `filter` asks for ([`PAGE_SIZE`] a page), failing
    /// first, then by title. Filtered, ordered and cut in SQL; entries are
    /// counted for the feeds on the page only.
    fn feed_page(&self, filter: &FeedFilter) -> Result<FeedPage, StoreError>;

    /// Every feed `filter` matches (its page ignored), in the page order: for
    /// `newsriver feeds`.
    fn feeds_filtered(&self, filter: &FeedFilter) -> Result<Vec<FeedStatus>, StoreError>;

    /// Everything known about one feed, with its newest polls first.
    fn feed_detail(&self, id: FeedId) -> Result<Option<FeedDetail>, StoreError>;

    /// Records what the last parse of a feed recovered from (one warning per
    /// line in `feeds.parse_warnings`; none clears it).
    fn set_parse_warnings(&self, id: FeedId, warnings: &[String]) -> Result<(), StoreError>;
}
