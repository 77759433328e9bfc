//! Search on PostgreSQL: one weighted tsvector per entry in `search_docs`
//! (A title, B text, C author, D outlet), written with the entry, and the
//! translation of a parsed query into a condition on it.
//!
//! Every term is bound as a parameter and read by `phraseto_tsquery` (words
//! in order; one word is a phrase of one), so no user text is ever read as
//! tsquery syntax. A field is the weights it may match in: the GIN index
//! finds the candidates (`doc @@ q`), `ts_filter` keeps the field's part.

use super::{Postgres, Tx, get};
use crate::model::Story;
use crate::search::{Field, Query, Term};
use crate::store::{PageStart, Publishing, Search, SearchView, StoreError, StoryFilter};

/// The weights a field matches in.
fn weights(field: Field) -> &'static str {
    match field {
        Field::Any => "{a,b,c}",
        Field::Title => "{a}",
        Field::Author => "{c}",
        Field::Source => "{d}",
    }
}

/// The condition on `d.doc` that a query is, with the terms it binds as
/// parameters from `$first` on (in order).
pub(super) fn condition(query: &Query, first: usize) -> (String, Vec<String>) {
    let mut texts = Vec::new();
    let mut term = |t: &Term| {
        texts.push(t.text.clone());
        let n = first + texts.len() - 1;
        format!(
            "(d.doc @@ phraseto_tsquery('newsriver', ${n}::TEXT)
              AND ts_filter(d.doc, '{}') @@ phraseto_tsquery('newsriver', ${n}::TEXT))",
            weights(t.field)
        )
    };
    let mut parts: Vec<String> = query
        .all
        .iter()
        .map(|clause| {
            let any: Vec<String> = clause.iter().map(&mut term).collect();
            format!("({})", any.join(" OR "))
        })
        .collect();
    if !query.none.is_empty() {
        let excluded: Vec<String> = query.none.iter().map(&mut term).collect();
        parts.push(format!("NOT ({})", excluded.join(" OR ")));
    }
    if parts.is_empty() {
        parts.push("FALSE".into());
    }
    (parts.join(" AND "), texts)
}

/// Indexes an entry as stored now (again, if it was): its title, text
/// (`body`, see `store::search::body_text`), author and its outlet's name.
pub(super) async fn index_entry(
    tx: &Tx<'_>,
    id: i64,
    feed_id: i64,
    title: &str,
    author: Option<&str>,
    body: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO search_docs (entry_id, doc)
         SELECT $1,
            setweight(to_tsvector('newsriver', $2), 'A')
            || setweight(to_tsvector('newsriver', $3), 'B')
            || setweight(to_tsvector('newsriver', $4), 'C')
            || setweight(to_tsvector('newsriver', COALESCE(f.config_title, f.title, f.url)), 'D')
         FROM feeds f WHERE f.id = $5
         ON CONFLICT (entry_id) DO UPDATE SET doc = excluded.doc",
        &[&id, &title, &body, &author.unwrap_or_default(), &feed_id],
    )
    .await?;
    Ok(())
}

/// Indexes new entries of one feed, in one statement.
pub(super) async fn index_entries(
    tx: &Tx<'_>,
    feed_id: i64,
    ids: &[i64],
    titles: &[&str],
    bodies: &[String],
    authors: &[&str],
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO search_docs (entry_id, doc)
         SELECT v.id,
            setweight(to_tsvector('newsriver', v.title), 'A')
            || setweight(to_tsvector('newsriver', v.body), 'B')
            || setweight(to_tsvector('newsriver', v.author), 'C')
            || o.name
         FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[]) AS v(id, title, body, author),
              -- The outlet's name, worked out once for the whole document.
              (SELECT setweight(to_tsvector('newsriver', COALESCE(config_title, title, url)), 'D')
                 AS name FROM feeds WHERE id = $5) o
         ON CONFLICT (entry_id) DO UPDATE SET doc = excluded.doc",
        &[&ids, &titles, &bodies, &authors, &feed_id],
    )
    .await?;
    Ok(())
}

/// Indexes again every entry of a feed whose name changed (the outlet's
/// name is indexed with each of its entries).
pub(super) async fn reindex_feed(tx: &Tx<'_>, feed_id: i64) -> Result<(), StoreError> {
    let rows = tx
        .query(
            "SELECT id, title, author, summary, content FROM entries WHERE feed_id = $1",
            &[&feed_id],
        )
        .await?;
    for r in &rows {
        let (summary, content): (Option<String>, Option<String>) = (get(r, 3)?, get(r, 4)?);
        index_entry(
            tx,
            get(r, 0)?,
            feed_id,
            &get::<String>(r, 1)?,
            get::<Option<String>>(r, 2)?.as_deref(),
            &crate::store::search::body_text(summary.as_deref(), content.as_deref()),
        )
        .await?;
    }
    Ok(())
}

impl Search for Postgres {
    fn search(&self, query: &Query, limit: usize) -> Result<Vec<Story>, StoreError> {
        let filter = StoryFilter::Search(SearchView {
            query: query.clone(),
            tags: Vec::new(),
        });
        Ok(self.story_page(&filter, PageStart::Newest, limit)?.stories)
    }

    /// GIN indexes keep their pending list merged by autovacuum; nothing to
    /// do by hand.
    fn compact_search_index(&self) -> Result<bool, StoreError> {
        Ok(false)
    }

    fn indexed_entries(&self) -> Result<u64, StoreError> {
        self.count("SELECT COUNT(*) FROM search_docs")
    }
}
