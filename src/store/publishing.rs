//! Publishing: the stories of one view, a page at a time, with stable cursors.
//! This part of the store interface; each backend implements it.

use crate::model::{FeedId, Story};
use crate::search::Query;

use super::*;

/// Which stories a published document shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StoryFilter {
    All,
    Tag(String),
    Feed(FeedId),
    /// The stories matching a query (one of their copies matches it).
    Search(SearchView),
}

/// A search as a view: a query, and optionally only the copies carried by
/// feeds with one of `tags`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchView {
    pub query: Query,
    pub tags: Vec<String>,
}

/// A position in the river: stories are ordered by (sort time, row id), newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub sort_time: i64,
    pub row: i64,
}

impl Cursor {
    /// The opaque text form used in `?before=` / `?after=`.
    pub fn encode(self) -> String {
        format!("{}.{}", self.sort_time, self.row)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (t, r) = text.split_once('.')?;
        Some(Self {
            sort_time: t.parse().ok()?,
            row: r.parse().ok()?,
        })
    }
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageStart {
    /// The newest stories.
    Newest,
    /// Stories older than the cursor.
    Before(Cursor),
    /// Stories newer than the cursor (the page just before it).
    After(Cursor),
}

/// One page of stories, newest first, with where the neighbouring pages start.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryPage {
    pub stories: Vec<Story>,
    /// Set when older stories exist: the cursor of this page's oldest story.
    pub older: Option<Cursor>,
    /// Set when newer stories exist: the cursor of this page's newest story.
    pub newer: Option<Cursor>,
}

/// A source feed as a view of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedView {
    pub id: FeedId,
    /// The feed's permanent id.
    pub uid: String,
    pub title: String,
    pub url: String,
    pub site_url: Option<String>,
}

pub trait Publishing {
    /// A number that changes whenever any other connection (the writer, or
    /// another process such as `poll --once`) commits to the database. Only
    /// comparable with itself: it is the reader connection's `data_version`,
    /// and the reader never writes.
    fn data_version(&self) -> Result<i64, StoreError>;

    /// One page of a view, at most `limit` stories, newest first. One item
    /// per story (see `stories::load_story`): its copy from the view when it
    /// has one, with the other outlets. Pages are cut on the story's place in
    /// the river (its earliest date, then its row), so a copy arriving from
    /// another feed never moves a story between pages.
    fn story_page(
        &self,
        filter: &StoryFilter,
        start: PageStart,
        limit: usize,
    ) -> Result<StoryPage, StoreError>;

    /// Whether any active feed carries `tag`.
    fn tag_exists(&self, tag: &str) -> Result<bool, StoreError>;

    /// Tags of active feeds, sorted.
    fn tags(&self) -> Result<Vec<String>, StoreError>;

    /// An active feed, as a view of its own.
    fn feed_view(&self, id: FeedId) -> Result<Option<FeedView>, StoreError>;
}

/// A page of stories read with one row beyond `limit` from the side it
/// starts on (`older_side`: going back in time): trims it to `limit`, puts
/// it in river order (newest first), and returns whether the side read has
/// more, with the cursors of its first and last story; `None` for an empty
/// page.
pub(crate) fn page_window<T>(
    rows: &mut Vec<(i64, T, Cursor)>,
    limit: usize,
    older_side: bool,
) -> Option<(bool, Cursor, Cursor)> {
    let more = rows.len() > limit;
    rows.truncate(limit);
    if !older_side {
        rows.reverse();
    }
    Some((more, rows.first()?.2, rows.last()?.2))
}
