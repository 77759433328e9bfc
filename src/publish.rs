//! Stored stories → documents. One file per format: `atom`, `rss`, `json`, `html`;
//! `attribution` is the provenance every format appends to content.

use chrono::{DateTime, Utc};

use crate::model::Story;

pub mod atom;
pub mod attribution;
pub mod html;
pub mod json;
pub mod rss;
pub mod status;

pub use atom::{atom, atom_page};
pub use html::{SearchLink, home_html, home_page, home_page_with_searches, search_page};
pub use json::json_feed;
pub use rss::rss;

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

/// A feed format this service publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Atom,
    Rss,
    Json,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Atom, Format::Rss, Format::Json];

    /// The file name a view serves this format under.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Atom => "feed.atom",
            Format::Rss => "feed.rss",
            Format::Json => "feed.json",
        }
    }

    pub fn from_file_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.file_name() == name)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Atom => "application/atom+xml",
            Format::Rss => "application/rss+xml",
            Format::Json => "application/feed+json",
        }
    }

    /// A short human name, for autodiscovery titles.
    pub fn label(self) -> &'static str {
        match self {
            Format::Atom => "Atom",
            Format::Rss => "RSS",
            Format::Json => "JSON Feed",
        }
    }
}

/// One page of one view in one format: its identity and every address it links to.
/// Views and paging (RFC 5005) are decided by the server; formats only render this.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedDoc {
    /// Permanent id of the view (the same for all its pages and formats).
    pub id: String,
    pub title: String,
    /// One-line description (RSS requires one).
    pub description: String,
    /// The URL this document was fetched from, query included.
    pub self_url: String,
    /// The view's first (newest) page in this format: its canonical address.
    pub first_url: String,
    /// The human page for this service.
    pub html_url: String,
    /// The page of older stories, when there is one.
    pub next_url: Option<String>,
    /// The page of newer stories, when this is not the first page.
    pub previous_url: Option<String>,
    /// `[output] attribution` notice template, appended to every entry's content.
    pub attribution: Option<String>,
    /// `[websub] hub`: a WebSub hub the document announces itself on.
    pub hub: Option<String>,
}

impl FeedDoc {
    /// The first page of the merged feed in Atom.
    pub fn river_atom(river: &River) -> Self {
        Self {
            id: river.id.clone(),
            title: river.title.clone(),
            description: river_description(),
            self_url: river.atom_url(),
            first_url: river.atom_url(),
            html_url: river.base_url.clone(),
            next_url: None,
            previous_url: None,
            attribution: river.attribution.clone(),
            hub: None,
        }
    }
}

/// What every view says about itself.
pub fn river_description() -> String {
    "A merged feed of many sources, republished by newsriver. Every entry names the outlet that first published it.".to_string()
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
    use crate::model::{Outlet, Source, Story};
    use chrono::DateTime;

    /// Another outlet carrying `story`: its source renamed `name`, its copy
    /// at `link`, published when the story was.
    pub fn outlet(
        story: &Story,
        name: &str,
        link: Option<&str>,
        title: &str,
        author: &str,
    ) -> Outlet {
        let mut source = story.source.clone();
        source.title = name.into();
        Outlet {
            source,
            link: link.map(String::from),
            title: title.into(),
            author: author.into(),
            published: story.published,
        }
    }

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
