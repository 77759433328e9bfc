//! Stories: stored entries with their sources, newest first, for publishing.

use super::{Store, StoreError, from_ts, lock};
use crate::model::{Source, Story};

impl Store {
    /// The newest `limit` entries across all feeds, newest first, with their sources.
    pub fn stories(&self, limit: usize) -> Result<Vec<Story>, StoreError> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT e.uid, e.title, e.link, e.author, e.summary, e.content, e.rights,
                    e.published, e.updated, e.first_seen,
                    f.source_id, f.url, COALESCE(f.config_title, f.title, f.url), f.site_url,
                    f.rights, f.author, COALESCE(f.source_updated, f.last_success_at, e.first_seen)
             FROM entries e CROSS JOIN feeds f ON f.id = e.feed_id
             WHERE f.active = 1
             ORDER BY e.sort_time DESC, e.id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            let source_title: String = r.get(12)?;
            let feed_author: Option<String> = r.get(15)?;
            let published: Option<i64> = r.get(7)?;
            let updated: Option<i64> = r.get(8)?;
            let first_seen: i64 = r.get(9)?;
            let feed_url: String = r.get(11)?;
            let source = Source {
                id: r
                    .get::<_, Option<String>>(10)?
                    .unwrap_or_else(|| feed_url.clone()),
                title: source_title.clone(),
                feed_url,
                site_url: r.get(13)?,
                rights: r.get(14)?,
                updated: from_ts(r.get(16)?),
            };
            Ok(Story {
                uid: r.get(0)?,
                title: r.get(1)?,
                link: r.get(2)?,
                author: r
                    .get::<_, Option<String>>(3)?
                    .or(feed_author)
                    .unwrap_or(source_title),
                summary: r.get(4)?,
                content: r.get(5)?,
                rights: r
                    .get::<_, Option<String>>(6)?
                    .or_else(|| source.rights.clone()),
                published: published.map(from_ts),
                updated: from_ts(updated.or(published).unwrap_or(first_seen)),
                source,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
