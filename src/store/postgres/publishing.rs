//! Publishing on PostgreSQL: the stories of one view, a page at a time, each
//! with its primary copy and the other outlets, and the river's version.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{Conn, Postgres, get};

type Args = Vec<Box<dyn ToSql + Sync + Send>>;

fn bind(args: &Args) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect()
}
use crate::identity::byline::byline;
use crate::model::{FeedId, Outlet, Source, Story};
use crate::store::publishing::page_window;
use crate::store::{
    Cursor, FeedView, PageStart, Publishing, StoreError, StoryFilter, StoryPage, from_ts,
};

/// Whether entry `e` (joined with its feed `f`) belongs to the view: $1 a
/// feed id or NULL, $2 a tag or NULL.
const VIEW_WHERE: &str = "f.active = 1
    AND ($1::BIGINT IS NULL OR e.feed_id = $1)
    AND ($2::TEXT IS NULL OR e.feed_id IN (SELECT feed_id FROM feed_tags WHERE tag = $2))";

/// Whether story `s` is in the view. A search ($6 its tags or NULL, its
/// terms from $7 on) starts from the matching entries of active feeds.
fn story_in_view(filter: &StoryFilter, search: Option<&str>) -> String {
    match (filter, search) {
        (StoryFilter::Search(_), Some(condition)) => format!(
            "s.id IN (SELECT e.story_id FROM entries e JOIN feeds f ON f.id = e.feed_id
                      JOIN search_docs d ON d.entry_id = e.id
                      WHERE f.active = 1
                        AND ($1::BIGINT IS NULL OR e.feed_id = $1)
                        AND ($6::TEXT[] IS NULL OR e.feed_id IN (
                            SELECT feed_id FROM feed_tags WHERE tag = ANY($6)))
                        AND ($2::TEXT IS NULL OR $2 = ANY($6))
                        AND {condition})"
        ),
        (StoryFilter::All, _) => format!(
            "EXISTS (SELECT 1 FROM entries e JOIN feeds f ON f.id = e.feed_id
                     WHERE e.story_id = s.id AND {VIEW_WHERE})"
        ),
        _ => format!(
            "s.id IN (SELECT e.story_id FROM entries e JOIN feeds f ON f.id = e.feed_id
                      WHERE {VIEW_WHERE})"
        ),
    }
}

/// One story as published (the rules of the SQLite backend's `load_story`).
async fn load_story(
    client: &Conn,
    id: i64,
    uid: String,
    feed: Option<FeedId>,
    tag: Option<&str>,
) -> Result<Option<Story>, StoreError> {
    let rows = client
        .query(
            "SELECT e.title, e.link, e.author, e.summary, e.content, e.rights,
                    e.published, e.updated, e.first_seen, e.feed_id,
                    f.source_id, f.url, COALESCE(f.config_title, f.title, f.url), f.site_url,
                    f.rights, f.author, COALESCE(f.source_updated, f.last_success_at, e.first_seen)
             FROM entries e JOIN feeds f ON f.id = e.feed_id
             WHERE e.story_id = $1 AND f.active = 1
             ORDER BY (($2::BIGINT IS NULL OR e.feed_id = $2)
                       AND ($3::TEXT IS NULL
                            OR e.feed_id IN (SELECT feed_id FROM feed_tags WHERE tag = $3))) DESC,
                      f.original DESC, f.priority DESC, e.first_seen, e.sort_time, e.id",
            &[&id, &feed, &tag],
        )
        .await?;
    let mut copies = rows.iter().map(copy);
    let Some(primary) = copies.next().transpose()? else {
        return Ok(None);
    };
    let mut feeds = vec![primary.0];
    let mut also = Vec::new();
    for other in copies {
        let (feed_id, other) = other?;
        if feeds.contains(&feed_id) {
            continue;
        }
        feeds.push(feed_id);
        also.push(Outlet {
            link: other.link,
            title: other.title,
            author: other.author,
            published: other.published,
            source: other.source,
        });
    }
    let mut story = primary.1;
    story.uid = uid;
    story.also = also;
    Ok(Some(story))
}

fn copy(r: &Row) -> Result<(i64, Story), StoreError> {
    let source_title: String = get(r, 12)?;
    let feed_author: Option<String> = get(r, 15)?;
    let published: Option<i64> = get(r, 6)?;
    let updated: Option<i64> = get(r, 7)?;
    let first_seen: i64 = get(r, 8)?;
    let feed_url: String = get(r, 11)?;
    let summary: Option<String> = get(r, 3)?;
    let content: Option<String> = get(r, 4)?;
    let source = Source {
        id: get::<Option<String>>(r, 10)?.unwrap_or_else(|| feed_url.clone()),
        title: source_title.clone(),
        feed_url,
        site_url: get(r, 13)?,
        rights: get(r, 14)?,
        updated: from_ts(get(r, 16)?),
    };
    let author = get::<Option<String>>(r, 2)?
        .or_else(|| {
            content
                .as_deref()
                .and_then(byline)
                .or_else(|| summary.as_deref().and_then(byline))
        })
        .or(feed_author)
        .unwrap_or(source_title);
    Ok((
        get(r, 9)?,
        Story {
            uid: String::new(),
            title: get(r, 0)?,
            link: get(r, 1)?,
            author,
            summary,
            content,
            rights: get::<Option<String>>(r, 5)?.or_else(|| source.rights.clone()),
            published: published.map(from_ts),
            updated: from_ts(updated.or(published).unwrap_or(first_seen)),
            source,
            also: Vec::new(),
        },
    ))
}

impl Publishing for Postgres {
    fn data_version(&self) -> Result<i64, StoreError> {
        self.read(|client| {
            Box::pin(async move {
                let row = client
                    .query_one("SELECT version FROM river_version", &[])
                    .await?;
                get(&row, 0)
            })
        })
    }

    fn story_page(
        &self,
        filter: &StoryFilter,
        start: PageStart,
        limit: usize,
    ) -> Result<StoryPage, StoreError> {
        let (feed, tag) = match filter {
            StoryFilter::All => (None, None),
            StoryFilter::Tag(tag) => (None, Some(tag.clone())),
            StoryFilter::Feed(id) => (Some(*id), None),
            StoryFilter::Search(search) => (None, search.tags.first().cloned()),
        };
        let (condition, terms, tags) = match filter {
            StoryFilter::Search(search) => {
                let (condition, terms) = super::search::condition(&search.query, 7);
                let tags = (!search.tags.is_empty()).then(|| search.tags.clone());
                (Some(condition), terms, tags)
            }
            _ => (None, Vec::new(), None),
        };
        let in_view = story_in_view(filter, condition.as_deref());
        let searching = condition.is_some();
        let limit = limit.max(1);
        let (cursor, older_side) = match start {
            PageStart::Newest => (None, true),
            PageStart::Before(c) => (Some(c), true),
            PageStart::After(c) => (Some(c), false),
        };
        let sql = if older_side {
            format!(
                "SELECT s.id, s.uid, s.sort_time FROM stories s
                 WHERE {in_view} AND ($3::BIGINT IS NULL OR (s.sort_time, s.id) < ($3, $4))
                 ORDER BY s.sort_time DESC, s.id DESC LIMIT $5"
            )
        } else {
            format!(
                "SELECT s.id, s.uid, s.sort_time FROM stories s
                 WHERE {in_view} AND (s.sort_time, s.id) > ($3, $4)
                 ORDER BY s.sort_time ASC, s.id ASC LIMIT $5"
            )
        };
        let exists_sql = |op: &str| {
            format!(
                "SELECT EXISTS (SELECT 1 FROM stories s
                 WHERE {in_view} AND (s.sort_time, s.id) {op} ($3, $4) LIMIT $5)"
            )
        };
        let (newer_sql, older_sql) = (exists_sql(">"), exists_sql("<"));
        self.read(move |client| {
            Box::pin(async move {
                let (time, row, fetch) = (
                    cursor.map(|c| c.sort_time),
                    cursor.map(|c| c.row),
                    (limit + 1) as i64,
                );
                let args = |time: &Option<i64>, row: &Option<i64>| -> Args {
                    let mut args: Args = vec![
                        Box::new(feed),
                        Box::new(tag.clone()),
                        Box::new(*time),
                        Box::new(*row),
                        Box::new(fetch),
                    ];
                    if searching {
                        args.push(Box::new(tags.clone()));
                        for t in &terms {
                            args.push(Box::new(t.clone()));
                        }
                    }
                    args
                };
                let owned = args(&time, &row);
                let mut rows: Vec<(i64, String, Cursor)> = Vec::new();
                for r in client.query(&sql, &bind(&owned)).await? {
                    let id: i64 = get(&r, 0)?;
                    rows.push((
                        id,
                        get(&r, 1)?,
                        Cursor {
                            sort_time: get(&r, 2)?,
                            row: id,
                        },
                    ));
                }
                let Some((more, first, last)) = page_window(&mut rows, limit, older_side) else {
                    return Ok(StoryPage {
                        stories: Vec::new(),
                        older: None,
                        newer: None,
                    });
                };
                let exists = |sql: String, c: Cursor| {
                    let owned = args(&Some(c.sort_time), &Some(c.row));
                    async move {
                        let row = client.query_one(&sql, &bind(&owned)).await?;
                        get::<bool>(&row, 0)
                    }
                };
                let (older, newer) = match start {
                    PageStart::Newest => (more, false),
                    PageStart::Before(_) => (more, exists(newer_sql, first).await?),
                    PageStart::After(_) => (exists(older_sql, last).await?, more),
                };
                let mut stories = Vec::with_capacity(rows.len());
                for (id, uid, _) in rows {
                    if let Some(story) = load_story(client, id, uid, feed, tag.as_deref()).await? {
                        stories.push(story);
                    }
                }
                Ok(StoryPage {
                    older: older.then_some(last),
                    newer: newer.then_some(first),
                    stories,
                })
            })
        })
    }

    fn tag_exists(&self, tag: &str) -> Result<bool, StoreError> {
        let tag = tag.to_string();
        self.read(move |client| {
            Box::pin(async move {
                let row = client
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM feed_tags t JOIN feeds f ON f.id = t.feed_id
                         WHERE t.tag = $1 AND f.active = 1)",
                        &[&tag],
                    )
                    .await?;
                get(&row, 0)
            })
        })
    }

    fn tags(&self) -> Result<Vec<String>, StoreError> {
        self.read(|client| {
            Box::pin(async move {
                client
                    .query(
                        "SELECT DISTINCT t.tag FROM feed_tags t JOIN feeds f ON f.id = t.feed_id
                         WHERE f.active = 1 ORDER BY t.tag",
                        &[],
                    )
                    .await?
                    .iter()
                    .map(|r| get(r, 0))
                    .collect()
            })
        })
    }

    fn feed_view(&self, id: FeedId) -> Result<Option<FeedView>, StoreError> {
        self.read(move |client| {
            Box::pin(async move {
                client
                    .query_opt(
                        "SELECT id, uid, COALESCE(config_title, title, url), url, site_url
                         FROM feeds WHERE id = $1 AND active = 1",
                        &[&id],
                    )
                    .await?
                    .map(|r| {
                        Ok(FeedView {
                            id: get(&r, 0)?,
                            uid: get(&r, 1)?,
                            title: get(&r, 2)?,
                            url: get(&r, 3)?,
                            site_url: get(&r, 4)?,
                        })
                    })
                    .transpose()
            })
        })
    }
}
