//! The status page's queries on PostgreSQL: the same SQL as SQLite's but for
//! placeholders, and the database's size from the server.

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

use super::feeds::{STATUS_COLUMNS, feed_status};
use super::{Postgres, get};
use crate::model::{FeedId, FeedStatus};
use crate::status::{
    FailureKind, FeedDetail, FeedFilter, FeedPage, NextPoll, PAGE_SIZE, PendingMove, PollEntry,
    StateCounts, Summary,
};
use crate::store::status::{FAILURE_KINDS, ORDER, parse_warnings_text, where_clause};
use crate::store::{HISTORY_PER_FEED, Status, StoreError, from_ts, ts};

impl Status for Postgres {
    fn status_summary(&self, now: DateTime<Utc>) -> Result<Summary, StoreError> {
        self.read(move |client| {
            Box::pin(async move {
                let r = client
                    .query_one(
                        "SELECT COUNT(*),
                            COUNT(*) FILTER (WHERE active = 1 AND state = 'ok'),
                            COUNT(*) FILTER (WHERE active = 1 AND state = 'failing'),
                            COUNT(*) FILTER (WHERE active = 1 AND state = 'new'),
                            COUNT(*) FILTER (WHERE active = 1 AND state = 'throttled'),
                            COUNT(*) FILTER (WHERE active = 0 OR state = 'gone'),
                            (SELECT COUNT(*) FROM entries),
                            (SELECT COUNT(*) FROM poll_history WHERE started_at > $1),
                            pg_database_size(current_database())
                         FROM feeds",
                        &[&(ts(now) - 3600)],
                    )
                    .await?;
                let n = |i| get::<i64>(&r, i).map(|v| v.max(0) as u64);
                let feeds = StateCounts {
                    total: n(0)?,
                    ok: n(1)?,
                    failing: n(2)?,
                    new: n(3)?,
                    throttled: n(4)?,
                    retired: n(5)?,
                };
                let failures = client
                    .query(FAILURE_KINDS, &[])
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(FailureKind {
                            kind: get(r, 0)?,
                            feeds: get::<i64>(r, 1)?.max(0) as u64,
                        })
                    })
                    .collect::<Result<_, StoreError>>()?;
                let next_poll = client
                    .query_opt(
                        "SELECT id, COALESCE(config_title, title, url), next_poll_at FROM feeds
                         WHERE active = 1 AND state != 'gone' ORDER BY next_poll_at, id LIMIT 1",
                        &[],
                    )
                    .await?
                    .map(|r| {
                        Ok::<_, StoreError>(NextPoll {
                            feed_id: get(&r, 0)?,
                            title: get(&r, 1)?,
                            at: from_ts(get(&r, 2)?),
                        })
                    })
                    .transpose()?;
                Ok(Summary {
                    feeds,
                    entries: n(6)?,
                    polls_last_hour: n(7)?,
                    failures,
                    next_poll,
                    database_bytes: n(8)?,
                })
            })
        })
    }

    fn feed_page(&self, filter: &FeedFilter) -> Result<FeedPage, StoreError> {
        self.feeds_matching(filter, Some(PAGE_SIZE))
    }

    fn feeds_filtered(&self, filter: &FeedFilter) -> Result<Vec<FeedStatus>, StoreError> {
        Ok(self.feeds_matching(filter, None)?.feeds)
    }

    fn feed_detail(&self, id: FeedId) -> Result<Option<FeedDetail>, StoreError> {
        self.read(move |client| {
            Box::pin(async move {
                let Some(status) = client
                    .query_opt(
                        &format!("SELECT {STATUS_COLUMNS} FROM feeds f WHERE f.id = $1"),
                        &[&id],
                    )
                    .await?
                    .as_ref()
                    .map(feed_status)
                    .transpose()?
                else {
                    return Ok(None);
                };
                let tags = client
                    .query(
                        "SELECT tag FROM feed_tags WHERE feed_id = $1 ORDER BY tag",
                        &[&id],
                    )
                    .await?
                    .iter()
                    .map(|r| get(r, 0))
                    .collect::<Result<_, _>>()?;
                let history = client
                    .query(
                        "SELECT started_at, duration_ms, outcome, http_status, error,
                            new_entries, updated_entries
                         FROM poll_history WHERE feed_id = $1 ORDER BY id DESC LIMIT $2",
                        &[&id, &HISTORY_PER_FEED],
                    )
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(PollEntry {
                            started_at: from_ts(get(r, 0)?),
                            duration_ms: get::<i64>(r, 1)?.max(0) as u64,
                            outcome: get(r, 2)?,
                            http_status: get::<Option<i64>>(r, 3)?
                                .and_then(|s| u16::try_from(s).ok()),
                            error: get(r, 4)?,
                            new_entries: get::<i64>(r, 5)?.max(0) as u64,
                            updated_entries: get::<i64>(r, 6)?.max(0) as u64,
                        })
                    })
                    .collect::<Result<_, StoreError>>()?;
                let r = client
                    .query_one(
                        "SELECT site_url, interval_secs, poll_interval_secs, fixed_interval,
                            skip_hours, skip_days, moved_to, moved_seen, moved_since,
                            identity_rung, parse_warnings, created_at
                         FROM feeds WHERE id = $1",
                        &[&id],
                    )
                    .await?;
                let moving = match (get::<Option<String>>(&r, 6)?, get::<Option<i64>>(&r, 8)?) {
                    (Some(to), Some(since)) => Some(PendingMove {
                        to,
                        seen: get::<i64>(&r, 7)?.clamp(0, u32::MAX.into()) as u32,
                        since: from_ts(since),
                    }),
                    _ => None,
                };
                let warnings: Option<String> = get(&r, 10)?;
                Ok(Some(FeedDetail {
                    status,
                    tags,
                    site_url: get(&r, 0)?,
                    interval_secs: get::<i64>(&r, 1)?.max(0) as u64,
                    poll_interval_secs: get::<Option<i64>>(&r, 2)?.map(|s| s.max(0) as u64),
                    fixed_interval: get::<i64>(&r, 3)? != 0,
                    skip_hours: get::<i64>(&r, 4)?.clamp(0, u32::MAX.into()) as u32,
                    skip_days: get::<i64>(&r, 5)?.clamp(0, 255) as u8,
                    moving,
                    identity: get(&r, 9)?,
                    parse_warnings: warnings
                        .iter()
                        .flat_map(|w| w.lines())
                        .filter(|l| !l.trim().is_empty())
                        .map(str::to_string)
                        .collect(),
                    created_at: from_ts(get(&r, 11)?),
                    history,
                }))
            })
        })
    }

    fn set_parse_warnings(&self, id: FeedId, warnings: &[String]) -> Result<(), StoreError> {
        let text = parse_warnings_text(warnings);
        self.write(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "UPDATE feeds SET parse_warnings = $2 WHERE id = $1",
                    &[&id, &text],
                )
                .await?;
                Ok(())
            })
        })
    }
}

impl Postgres {
    fn feeds_matching(
        &self,
        filter: &FeedFilter,
        page_size: Option<usize>,
    ) -> Result<FeedPage, StoreError> {
        let (clause, values) = where_clause(filter, '$');
        let page = filter.page;
        self.read(move |client| {
            Box::pin(async move {
                let params: Vec<&(dyn ToSql + Sync)> =
                    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                let row = client
                    .query_one(
                        &format!("SELECT COUNT(*) FROM feeds f WHERE {clause}"),
                        &params,
                    )
                    .await?;
                let matching = get::<i64>(&row, 0)?.max(0) as u64;
                let (limit, offset, pages, page) = match page_size {
                    Some(size) => {
                        let pages = (matching as usize).div_ceil(size).max(1);
                        let offset = (page - 1).saturating_mul(size);
                        (Some(size as i64), offset as i64, pages, page)
                    }
                    None => (None, 0, 1, 1),
                };
                let (l, o) = (values.len() + 1, values.len() + 2);
                let sql = format!(
                    "WITH page AS (
                        SELECT f.id FROM feeds f WHERE {clause} ORDER BY {ORDER}
                        LIMIT ${l} OFFSET ${o})
                     SELECT {STATUS_COLUMNS} FROM page JOIN feeds f ON f.id = page.id
                     ORDER BY {ORDER}"
                );
                let mut params = params;
                params.push(&limit);
                params.push(&offset);
                let feeds = client
                    .query(&sql, &params)
                    .await?
                    .iter()
                    .map(feed_status)
                    .collect::<Result<_, _>>()?;
                Ok(FeedPage {
                    matching,
                    page,
                    pages,
                    feeds,
                })
            })
        })
    }
}
