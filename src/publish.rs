//! Stored stories → documents. One file per format: `atom`, `html`;
//! `attribution` is the provenance every format appends to content.

use chrono::{DateTime, Utc};

use crate::model::Story;

pub mod atom;
pub mod attribution;
pub mod html;

pub use atom::atom;
pub use html::home_html;

/// The merged feed's own identity and addresses.
#[derive(Debug, Clone)]
pub struct River {
    /// Permanent id of the merged feed.
    pub id: String,
    pub title: String,
    /// Absolute URL of the service's root, ending in '/'.
    pub base_url: String,
    /// `[output] attribution` notice template, appended to every entry's content.
    pub attribution: Option<String>,
}

impl River {
    pub fn atom_url(&self) -> String {
        format!("{}feed.atom", self.base_url)
    }
}

/// Removes characters that XML 1.0 does not allow; sources do send them.
pub fn xml_safe(s: &str) -> String {
    s.chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
        .collect()
}

/// The newest time anything in the river changed.
pub fn river_updated(stories: &[Story]) -> DateTime<Utc> {
    stories
        .iter()
        .map(|s| s.updated)
        .max()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::River;
    use crate::model::{Source, Story};
    use chrono::DateTime;

    pub fn story(title: &str) -> Story {
        let t = DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
            .unwrap()
            .to_utc();
        Story {
            uid: "urn:uuid:00000000-0000-8000-8000-000000000001".into(),
            title: title.into(),
            link: Some("https://news.example/a?x=1&y=2".into()),
            author: "Ann Writer".into(),
            summary: Some("<p>Sum</p>".into()),
            content: None,
            rights: None,
            published: Some(t),
            updated: t,
            source: Source {
                id: "https://news.example/feed".into(),
                title: "News & Co".into(),
                feed_url: "https://news.example/feed".into(),
                site_url: Some("https://news.example/".into()),
                rights: Some("© News".into()),
                updated: t,
            },
            also: Vec::new(),
        }
    }

    pub fn river() -> River {
        River {
            id: "urn:uuid:00000000-0000-8000-8000-00000000000a".into(),
            title: "River".into(),
            base_url: "http://127.0.0.1:1/".into(),
            attribution: None,
        }
    }
}
