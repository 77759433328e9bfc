//! Search on SQLite: the FTS5 index over stored entries (`search_index`,
//! migration 08) kept up to date in the write path, and the translation of a
//! parsed [`Query`] into an FTS5 MATCH expression.
//!
//! One row per stored entry (rowid = `entries.id`): its title, its text with
//! markup removed, its author, and its outlet's name. A story matches when
//! one of its copies matches the whole query. The table is contentless
//! (`content=''`, `contentless_delete=1`): the words are indexed, the text is
//! read from `entries`, so the index costs no second copy of every body.
//!
//! Tokeniser: `porter unicode61 remove_diacritics 2` — case- and
//! accent-insensitive (é = e, ß stays ß as Unicode folds it), with the Porter
//! stemmer for English (`strikes`, `striking` and `strike` are one word).
//! Stemming applies to words and to the words of phrases alike, so a phrase
//! still means "these words, in this order".

use rusqlite::{Connection, OptionalExtension, params};

use super::{PageStart, SearchView, Sqlite, StoreError, StoryFilter};
use crate::model::Story;
use crate::search::{Field, Query, Term};
use crate::store::prelude::*;
use crate::store::search::body_text;

/// Entries indexed per transaction while building the index of an existing
/// database.
const BUILD_BATCH: i64 = 20_000;

/// Segments of the search index from which the retention pass merges them.
const MIN_SEGMENTS: i64 = 4;

/// The FTS5 column filter of a field. Words without a field look in the
/// title, text and author; the outlet's name only through `source:`.
fn columns(field: Field) -> &'static str {
    match field {
        Field::Any => "{title body author}",
        Field::Title => "title",
        Field::Author => "author",
        Field::Source => "source",
    }
}

/// An FTS5 string: every term is quoted, so no user text is ever read as
/// FTS5 syntax (`NEAR`, `*`, `^`, column filters, `AND`/`NOT`).
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

fn term(t: &Term) -> String {
    format!("{} : {}", columns(t.field), quoted(&t.text))
}

/// The FTS5 MATCH expression of a query. Every part is parenthesised:
/// FTS5's own precedence (NOT, then AND, then OR) never decides.
pub(crate) fn fts_match(query: &Query) -> String {
    let wanted: Vec<String> = query
        .all
        .iter()
        .map(|clause| {
            let alternatives: Vec<String> = clause.iter().map(term).collect();
            format!("({})", alternatives.join(" OR "))
        })
        .collect();
    let mut expression = format!("({})", wanted.join(" AND "));
    if !query.none.is_empty() {
        let excluded: Vec<String> = query.none.iter().map(term).collect();
        expression = format!("{expression} NOT ({})", excluded.join(" OR "));
    }
    expression
}

/// Marks a newly stored entry for indexing when the transaction ends
/// (`flush_pending`).
pub(super) fn index_later(tx: &Connection, id: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO search_pending (id, fresh) VALUES (?1, 1) ON CONFLICT DO NOTHING",
    )?
    .execute([id])?;
    Ok(())
}

/// Marks a stored entry whose words changed for indexing again when the
/// transaction ends (an entry still waiting as new stays new).
pub(super) fn reindex_later(tx: &Connection, id: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO search_pending (id, fresh) VALUES (?1, 0) ON CONFLICT DO NOTHING",
    )?
    .execute([id])?;
    Ok(())
}

/// Indexes every entry marked by `index_later` / `reindex_later`, in one
/// savepoint of the writer's transaction (outside any poll's savepoint, so
/// FTS5 writes one segment per transaction). On failure nothing changes and
/// the marks stay for the next transaction.
pub(super) fn flush_pending(conn: &mut Connection) -> Result<usize, StoreError> {
    let savepoint = conn.savepoint()?;
    let count = {
        let any: bool = savepoint
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM search_pending)")?
            .query_row([], |r| r.get(0))?;
        if !any {
            return Ok(0);
        }
        savepoint
            .prepare_cached(
                "DELETE FROM search_index
                 WHERE rowid IN (SELECT id FROM search_pending WHERE fresh = 0)",
            )?
            .execute([])?;
        let count = index_rows(
            &savepoint,
            "SELECT e.id, e.feed_id, e.title, e.author, e.summary, e.content
             FROM search_pending p JOIN entries e ON e.id = p.id ORDER BY p.id",
            [],
        )?;
        savepoint.execute("DELETE FROM search_pending", [])?;
        count
    };
    savepoint.commit()?;
    Ok(count)
}

/// Indexes a newly stored entry. `feed_id`'s current name is its outlet's.
pub(super) fn index_entry(
    tx: &Connection,
    id: i64,
    feed_id: i64,
    title: &str,
    author: Option<&str>,
    summary: Option<&str>,
    content: Option<&str>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO search_index (rowid, title, body, author, source)
         VALUES (?1, ?2, ?3, ?4, (SELECT COALESCE(config_title, title, url) FROM feeds WHERE id = ?5))",
    )?
    .execute(params![
        id,
        title,
        body_text(summary, content),
        author.unwrap_or_default(),
        feed_id
    ])?;
    Ok(())
}

/// Takes the entries listed in the temporary table `doomed` out of the index.
pub(super) fn unindex_doomed(tx: &Connection) -> Result<usize, StoreError> {
    Ok(tx.execute(
        "DELETE FROM search_index WHERE rowid IN (SELECT id FROM doomed)",
        [],
    )?)
}

/// Indexes again every entry of a feed whose name changed (the outlet's name
/// is indexed with each of its entries).
pub(super) fn reindex_feed(tx: &Connection, feed_id: i64) -> Result<usize, StoreError> {
    tx.prepare_cached(
        "DELETE FROM search_index WHERE rowid IN (SELECT id FROM entries WHERE feed_id = ?1)",
    )?
    .execute([feed_id])?;
    index_rows(
        tx,
        "SELECT id, feed_id, title, author, summary, content FROM entries WHERE feed_id = ?1",
        [feed_id],
    )
}

/// Indexes the entries a query returns as (id, feed_id, title, author,
/// summary, content); returns how many.
fn index_rows(
    tx: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<usize, StoreError> {
    let mut select = tx.prepare_cached(sql)?;
    let mut rows = select.query(args)?;
    let mut count = 0;
    while let Some(r) = rows.next()? {
        let summary: Option<String> = r.get(4)?;
        let content: Option<String> = r.get(5)?;
        index_entry(
            tx,
            r.get(0)?,
            r.get(1)?,
            &r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?.as_deref(),
            summary.as_deref(),
            content.as_deref(),
        )?;
        count += 1;
    }
    Ok(count)
}

/// Indexes the entries of a database stored before the index existed: the
/// migration that creates `search_index` records `search_index = 0` in
/// `meta` (the last entry id indexed); this indexes the rest in batches of
/// their own transactions, logging progress, and resumes where it stopped
/// after a crash. Returns how many entries it indexed.
pub(super) fn build_pending(conn: &mut Connection) -> Result<usize, StoreError> {
    let progress: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'search_index_built_to'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let Some(mut last) = progress.and_then(|p| p.parse::<i64>().ok()) else {
        return Ok(0);
    };
    let (total, max): (i64, Option<i64>) = conn.query_row(
        "SELECT COUNT(*), MAX(id) FROM entries WHERE id > ?1",
        [last],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let max = max.unwrap_or(last);
    if total > 0 {
        tracing::info!(
            entries = total,
            "building the search index of stored entries"
        );
    }
    let started = std::time::Instant::now();
    let mut done = 0usize;
    while last < max {
        let tx = conn.transaction()?;
        let upto = last + BUILD_BATCH;
        done += index_rows(
            &tx,
            "SELECT id, feed_id, title, author, summary, content FROM entries
             WHERE id > ?1 AND id <= ?2 ORDER BY id",
            [last, upto],
        )?;
        last = upto.min(max);
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'search_index_built_to'",
            [last.to_string()],
        )?;
        tx.commit()?;
        if total > BUILD_BATCH {
            tracing::info!(
                indexed = done,
                of = total,
                "search index: {}%",
                done as i64 * 100 / total.max(1)
            );
        }
    }
    conn.execute("DELETE FROM meta WHERE key = 'search_index_built_to'", [])?;
    if total > 0 {
        tracing::info!(
            entries = done,
            seconds = started.elapsed().as_secs_f64(),
            "search index built"
        );
    }
    Ok(done)
}

impl Search for Sqlite {
    fn search(&self, query: &Query, limit: usize) -> Result<Vec<Story>, StoreError> {
        let filter = StoryFilter::Search(SearchView {
            query: query.clone(),
            tags: Vec::new(),
        });
        Ok(self.story_page(&filter, PageStart::Newest, limit)?.stories)
    }

    fn compact_search_index(&self) -> Result<bool, StoreError> {
        let conn = self.lock_writer();
        let segments: i64 = conn.query_row(
            "SELECT COUNT(DISTINCT segid) FROM search_index_idx",
            [],
            |r| r.get(0),
        )?;
        if segments < MIN_SEGMENTS {
            return Ok(false);
        }
        conn.execute(
            "INSERT INTO search_index (search_index) VALUES ('optimize')",
            [],
        )?;
        Ok(true)
    }

    fn indexed_entries(&self) -> Result<u64, StoreError> {
        // A contentless table counts its rows through its docsize shadow table.
        let n: i64 = super::lock(&self.reader).query_row(
            "SELECT COUNT(*) FROM search_index_docsize",
            [],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn m(text: &str) -> String {
        fts_match(&Query::parse(text).unwrap())
    }

    #[test]
    fn every_term_is_quoted_and_every_group_parenthesised() {
        assert_eq!(
            m("karabakh OR \"nagorno karabakh\" -sport"),
            "(({title body author} : \"karabakh\" OR {title body author} : \"nagorno karabakh\")) \
             NOT ({title body author} : \"sport\")"
        );
        assert_eq!(
            m("title:a source:\"b c\" -author:d -e"),
            "((title : \"a\") AND (source : \"b c\")) NOT (author : \"d\" OR {title body author} : \"e\")"
        );
        // FTS5 syntax in a term stays inside its quotes.
        assert_eq!(
            m("NEAR(a* ^b"),
            "(({title body author} : \"NEAR(a*\") AND ({title body author} : \"^b\"))"
        );
    }

    #[test]
    fn hostile_queries_never_make_fts5_fail() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE VIRTUAL TABLE search_index USING fts5(title, body, author, source,
             content='', contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2')",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO search_index (rowid, title, body, author, source) VALUES (1, 'Grève générale', 'Strikes spread', 'Zoë', 'Le Monde')",
            [],
        )
        .unwrap();
        let hits = |text: &str| -> i64 {
            conn.query_row(
                "SELECT COUNT(*) FROM search_index WHERE search_index MATCH ?1",
                [m(text)],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        };
        for text in [
            "\"'; DROP TABLE entries; --\"",
            "a\"\"b OR c",
            "½ OR x",
            "NOT AND OR* x",
            "x:1 NEAR/3",
            "{title} : x",
            "ⅷ",
            "\u{200b}x",
        ] {
            if Query::parse(text).is_ok() {
                hits(text);
            }
        }
        // Case, accents and stems fold.
        assert_eq!(hits("GREVE"), 1);
        assert_eq!(hits("generale strike"), 1);
        assert_eq!(hits("author:zoe"), 1);
        assert_eq!(hits("source:monde"), 1);
        assert_eq!(hits("monde"), 0, "outlet names only through source:");
        assert_eq!(hits("\"strikes spread\""), 1);
        assert_eq!(hits("\"spread strikes\""), 0);
    }
}
