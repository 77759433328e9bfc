//! Search: the query language (`query`), parsed once and translated by each
//! store backend, and the named searches of the TOML (`[[search]]`), each
//! served as a feed of its own and swapped as a whole on reload.

use std::sync::{Arc, RwLock};

pub mod query;

pub use query::{Field, MAX_QUERY_CHARS, Query, QueryError, Term};

use crate::config::Config;
use crate::store::{SearchView, StoryFilter};

/// One `[[search]]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedSearch {
    /// `[a-z0-9-]+`, unique: `/searches/{name}/feed.atom`.
    pub name: String,
    /// The query as written in the TOML.
    pub text: String,
    pub query: Query,
    /// Only stories carried by feeds with one of these tags (none: all feeds).
    pub tags: Vec<String>,
}

impl NamedSearch {
    /// The view this search publishes.
    pub fn filter(&self) -> StoryFilter {
        StoryFilter::Search(SearchView {
            query: self.query.clone(),
            tags: self.tags.clone(),
        })
    }
}

/// Whether `name` may name a search: `[a-z0-9-]+`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The named searches of a configuration (already validated by
/// `Config::parse`; one that somehow does not parse is left out).
pub fn named_searches(config: &Config) -> Vec<NamedSearch> {
    config
        .searches
        .iter()
        .filter_map(|s| {
            Some(NamedSearch {
                name: s.name.get_ref().clone(),
                text: s.query.get_ref().clone(),
                query: Query::parse(s.query.get_ref()).ok()?,
                tags: s.tags.clone(),
            })
        })
        .collect()
}

/// The named searches in force, shared by the server and the reloader.
#[derive(Debug, Default)]
pub struct Searches {
    list: RwLock<Arc<Vec<NamedSearch>>>,
}

impl Searches {
    pub fn new(config: &Config) -> Arc<Self> {
        let searches = Self::default();
        searches.set(config);
        Arc::new(searches)
    }

    /// Replaces the list with the configuration's.
    pub fn set(&self, config: &Config) {
        *self.list.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(named_searches(config));
    }

    /// Every named search, in the order of the TOML.
    pub fn all(&self) -> Arc<Vec<NamedSearch>> {
        self.list.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn get(&self, name: &str) -> Option<NamedSearch> {
        self.all().iter().find(|s| s.name == name).cloned()
    }
}

/// Matching stories as `newsriver search` prints them: one line each with
/// date, source, title and link, tab-separated.
pub fn lines(stories: &[crate::model::Story]) -> String {
    stories
        .iter()
        .map(|s| {
            let when = s.published.unwrap_or(s.updated);
            format!(
                "{}\t{}\t{}\t{}\n",
                when.format("%Y-%m-%d %H:%M"),
                s.source.title,
                s.title,
                s.link.as_deref().unwrap_or("-")
            )
        })
        .collect()
}
