//! `newsriver feeds`: every feed's state from the database, as a table for
//! people or JSON for scripts. Only what the database holds is shown, and the
//! database never holds credentials or header values.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::FeedStatus;

/// One feed, as `feeds --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct FeedRow {
    pub id: crate::model::FeedId,
    pub url: String,
    pub title: Option<String>,
    /// "new", "ok", "failing", or "removed" once no longer configured.
    pub state: String,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub failures: u32,
    pub last_polled_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// None for removed feeds: they are not polled.
    pub next_poll_at: Option<DateTime<Utc>>,
    pub entries: u64,
    /// What the last parse recovered from (feedparser's "bozo"); empty when clean.
    pub parse_warnings: Vec<String>,
}

impl From<&FeedStatus> for FeedRow {
    fn from(f: &FeedStatus) -> Self {
        Self {
            id: f.id,
            url: f.url.clone(),
            title: f.title.clone(),
            state: if f.active {
                f.state.as_str().to_string()
            } else {
                "removed".to_string()
            },
            last_status: f.last_status,
            last_error: f.last_error.clone(),
            failures: f.failures,
            last_polled_at: f.last_polled_at,
            last_success_at: f.last_success_at,
            next_poll_at: f.active.then_some(f.next_poll_at),
            entries: f.entries,
            parse_warnings: f.parse_warnings.clone(),
        }
    }
}

pub fn rows(statuses: &[FeedStatus]) -> Vec<FeedRow> {
    statuses.iter().map(FeedRow::from).collect()
}

/// Pretty JSON: an array of `FeedRow`.
pub fn json(rows: &[FeedRow]) -> String {
    serde_json::to_string_pretty(rows).unwrap_or_else(|_| "[]".to_string())
}

/// "3m ago", "in 2h", "never".
fn relative(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(at) = at else {
        return "never".to_string();
    };
    let secs = (at - now).num_seconds();
    let span = |s: i64| match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    };
    match secs {
        0 => "now".to_string(),
        s if s < 0 => format!("{} ago", span(-s)),
        s => format!("in {}", span(s)),
    }
}

fn clip(s: &str, max: usize) -> String {
    let s = s.replace(['\n', '\r', '\t'], " ");
    if s.chars().count() <= max {
        s
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// A plain-text table, one line per feed, columns aligned.
pub fn table(rows: &[FeedRow], now: DateTime<Utc>) -> String {
    let header = [
        "FEED",
        "STATE",
        "LAST SUCCESS",
        "LAST ERROR",
        "ENTRIES",
        "NEXT POLL",
    ];
    let mut lines: Vec<[String; 6]> = vec![header.map(str::to_string)];
    for r in rows {
        lines.push([
            clip(r.title.as_deref().unwrap_or(&r.url), 40),
            r.state.clone(),
            relative(r.last_success_at, now),
            match (&r.last_error, r.parse_warnings.first()) {
                (Some(e), _) => clip(e, 50),
                (None, Some(w)) => clip(&format!("read after recovery: {w}"), 50),
                (None, None) => "-".to_string(),
            },
            r.entries.to_string(),
            match r.next_poll_at {
                Some(at) if r.state != "removed" => relative(Some(at), now),
                _ => "-".to_string(),
            },
        ]);
    }
    let mut widths = [0usize; 6];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (i, (cell, w)) in line.iter().zip(widths).enumerate() {
            if i == 4 {
                // Numbers align right.
                text.push_str(&format!("{cell:>w$}  "));
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// The WebSub subscriptions, as a second table under `feeds` (empty when
/// no feed advertises a hub).
pub fn websub_table(subs: &[crate::store::WebSubStatus], now: DateTime<Utc>) -> String {
    if subs.is_empty() {
        return String::new();
    }
    let mut lines: Vec<[String; 6]> =
        vec![["FEED", "PUSHED", "HUB", "STATE", "LEASE ENDS", "LAST PUSH"].map(str::to_string)];
    for s in subs {
        lines.push([
            clip(&s.url, 40),
            if s.pushed { "yes" } else { "no" }.to_string(),
            clip(&s.hub, 40),
            s.state.clone(),
            relative(s.lease_end, now),
            relative(s.last_push_at, now),
        ]);
    }
    let mut widths = [0usize; 6];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::from("\nWebSub\n");
    for line in &lines {
        let text: String = line
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}  "))
            .collect();
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        let now = Utc::now();
        assert_eq!(relative(None, now), "never");
        assert_eq!(
            relative(Some(now - chrono::Duration::seconds(90)), now),
            "1m ago"
        );
        assert_eq!(
            relative(Some(now + chrono::Duration::hours(3)), now),
            "in 3h"
        );
        assert_eq!(clip("abcdef", 4), "abc…");
    }

    #[test]
    fn the_websub_table_shows_pushed_hub_lease_and_last_push() {
        let now = Utc::now();
        assert_eq!(websub_table(&[], now), "");
        let sub = crate::store::WebSubStatus {
            feed_id: 1,
            url: "https://a.example/feed".into(),
            hub: "https://hub.example/".into(),
            topic: "https://a.example/feed".into(),
            state: "active".into(),
            pushed: true,
            lease_end: Some(now + chrono::Duration::hours(5)),
            last_push_at: Some(now - chrono::Duration::seconds(90)),
            pushes: 3,
            last_error: None,
        };
        let table = websub_table(&[sub], now);
        let row = table.lines().last().unwrap();
        for cell in [
            "https://a.example/feed",
            "yes",
            "https://hub.example/",
            "active",
            "in 5h",
            "1m ago",
        ] {
            assert!(row.contains(cell), "{cell} missing: {table}");
        }
    }
}
