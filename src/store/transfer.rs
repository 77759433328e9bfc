//! Moving a river from SQLite to PostgreSQL (`newsriver migrate --to`): every
//! row copied with its ids, so published ids, story groupings, validators
//! and schedules are what they were, and readers see no duplicates.
//!
//! The copy reads one snapshot of the SQLite file (a read transaction) and
//! writes in one PostgreSQL transaction: it lands whole or not at all, so a
//! failed run leaves the target empty and can be run again. A target that
//! already holds a river is refused. Columns are matched by name: the
//! schemas keep SQLite's names; what only PostgreSQL has (claims, the
//! search vectors) is worked out from what is copied.

use std::path::Path;
use std::pin::pin;
use std::time::Duration;

use rusqlite::types::Value;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::postgres::{Postgres, Tx, get};
use super::search::body_text;
use super::{Store, StoreError};

/// The tables copied, parents first.
const TABLES: [&str; 9] = [
    "meta",
    "feeds",
    "feed_tags",
    "stories",
    "entries",
    "entry_tombstones",
    "poll_history",
    "websub_subscriptions",
    "websub_hub_subscribers",
];

/// Tables whose `id` is an identity: its sequence continues after the copy.
const IDENTITIES: [&str; 5] = [
    "feeds",
    "stories",
    "entries",
    "poll_history",
    "websub_hub_subscribers",
];

/// Rows read from SQLite per batch.
const BATCH: usize = 5_000;

/// What a copy moved, per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transferred {
    pub tables: Vec<(String, u64)>,
}

fn sqlite_error(e: rusqlite::Error) -> StoreError {
    StoreError::Sqlite(e)
}

/// Copies the river in the SQLite file `from` into the PostgreSQL database
/// at `url` (its schema created first). `progress` hears each table as it is
/// done.
pub fn sqlite_to_postgres(
    from: &Path,
    url: &str,
    connect_timeout: Duration,
    progress: impl Fn(&str, u64) + Send + 'static,
) -> Result<Transferred, StoreError> {
    if !from.exists() {
        return Err(StoreError::Migration(format!(
            "no database at {} to copy",
            from.display()
        )));
    }
    // Brings the file's own schema up to date first (as `run` would).
    drop(Store::open(from)?);
    let source =
        rusqlite::Connection::open_with_flags(from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let target = Postgres::connect(url, connect_timeout, 2)?;
    let (rows, done) = std::sync::mpsc::sync_channel::<Batch>(4);
    // SQLite is read on this thread, PostgreSQL written on the backend's
    // runtime; batches go between them.
    let writer = {
        let pool = target.pool();
        std::thread::spawn(move || -> Result<Transferred, StoreError> {
            target.run(async move {
                let mut client = pool.get().await?;
                let tx = client.transaction().await?;
                refuse_a_river(&tx).await?;
                let mut copied = Transferred::default();
                let mut sink: Option<(String, std::pin::Pin<Box<BinaryCopyInWriter>>, u64)> = None;
                let mut columns_of = std::collections::HashMap::new();
                while let Ok(batch) = done.recv() {
                    match batch {
                        Batch::Table(table, columns) => {
                            if let Some((name, writer, n)) = sink.take() {
                                finish(writer).await?;
                                progress(&name, n);
                                copied.tables.push((name, n));
                            }
                            let types = column_types(&tx, &table, &columns).await?;
                            let list = columns.join(", ");
                            let copy = tx
                                .copy_in(&format!("COPY {table} ({list}) FROM STDIN BINARY"))
                                .await?;
                            columns_of.insert(table.clone(), types.clone());
                            sink =
                                Some((table, Box::pin(BinaryCopyInWriter::new(copy, &types)), 0));
                        }
                        Batch::Rows(rows) => {
                            let Some((table, writer, n)) = sink.as_mut() else {
                                continue;
                            };
                            let types = &columns_of[table.as_str()];
                            for row in rows {
                                let values = typed(row, types)?;
                                let refs: Vec<&(dyn ToSql + Sync)> = values
                                    .iter()
                                    .map(|v| v.as_ref() as &(dyn ToSql + Sync))
                                    .collect();
                                writer.as_mut().write(&refs).await?;
                                *n += 1;
                            }
                        }
                        Batch::Done => break,
                    }
                }
                if let Some((name, writer, n)) = sink.take() {
                    finish(writer).await?;
                    progress(&name, n);
                    copied.tables.push((name, n));
                }
                derive(&tx).await?;
                tx.commit().await?;
                Ok(copied)
            })
        })
    };
    let read = read_all(&source, &rows);
    drop(rows);
    let written = writer
        .join()
        .map_err(|_| StoreError::Task("the copy into PostgreSQL panicked".into()))?;
    // A write error explains a read that stopped because the writer did.
    let copied = written?;
    read?;
    Ok(copied)
}

enum Batch {
    Table(String, Vec<String>),
    Rows(Vec<Vec<Value>>),
    Done,
}

async fn finish(mut writer: std::pin::Pin<Box<BinaryCopyInWriter>>) -> Result<u64, StoreError> {
    Ok(writer.as_mut().finish().await?)
}

/// Refuses a target that already holds a river.
async fn refuse_a_river(tx: &Tx<'_>) -> Result<(), StoreError> {
    let row = tx
        .query_one(
            "SELECT (SELECT COUNT(*) FROM feeds), (SELECT COUNT(*) FROM entries),
                EXISTS (SELECT 1 FROM meta WHERE key = 'river_id')",
            &[],
        )
        .await?;
    let (feeds, entries, river): (i64, i64, bool) = (get(&row, 0)?, get(&row, 1)?, get(&row, 2)?);
    if feeds > 0 || entries > 0 || river {
        return Err(StoreError::Migration(format!(
            "the target database already holds a river ({feeds} feeds, {entries} entries); \
             migrate copies into an empty database only"
        )));
    }
    Ok(())
}

/// The PostgreSQL types of `columns` of `table`.
async fn column_types(
    tx: &Tx<'_>,
    table: &str,
    columns: &[String],
) -> Result<Vec<Type>, StoreError> {
    let statement = tx
        .prepare(&format!(
            "SELECT {} FROM {table} LIMIT 0",
            columns.join(", ")
        ))
        .await?;
    Ok(statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect())
}

/// One SQLite row as the PostgreSQL column types want it.
fn typed(row: Vec<Value>, types: &[Type]) -> Result<Vec<Box<dyn ToSql + Sync + Send>>, StoreError> {
    row.into_iter()
        .zip(types)
        .map(
            |(value, ty)| -> Result<Box<dyn ToSql + Sync + Send>, StoreError> {
                let mismatch = |v: &Value| {
                    StoreError::Migration(format!("a {v:?} cannot go into a {ty} column"))
                };
                Ok(
                    match (
                        *ty == Type::INT8,
                        *ty == Type::TEXT,
                        *ty == Type::BYTEA,
                        value,
                    ) {
                        (true, _, _, Value::Integer(i)) => Box::new(i),
                        (true, _, _, Value::Null) => Box::new(None::<i64>),
                        (_, true, _, Value::Text(t)) => Box::new(t),
                        (_, true, _, Value::Null) => Box::new(None::<String>),
                        (_, _, true, Value::Blob(b)) => Box::new(b),
                        (_, _, true, Value::Text(t)) => Box::new(t.into_bytes()),
                        (_, _, true, Value::Null) => Box::new(None::<Vec<u8>>),
                        (_, _, _, other) => return Err(mismatch(&other)),
                    },
                )
            },
        )
        .collect()
}

/// Reads every copied table from SQLite (one snapshot) and sends it on.
fn read_all(
    source: &rusqlite::Connection,
    out: &std::sync::mpsc::SyncSender<Batch>,
) -> Result<(), StoreError> {
    let stopped = || StoreError::Task("the copy into PostgreSQL stopped".into());
    source.execute_batch("BEGIN").map_err(sqlite_error)?;
    for table in TABLES {
        let columns: Vec<String> = source
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        out.send(Batch::Table(table.to_string(), columns.clone()))
            .map_err(|_| stopped())?;
        let mut statement = source.prepare(&format!(
            "SELECT {} FROM {table}{}",
            columns.join(", "),
            if table == "meta" {
                // SQLite's own bookkeeping.
                " WHERE key NOT IN ('search_index_built_to', 'fingerprint_format')"
            } else {
                ""
            }
        ))?;
        let mut rows = statement.query([])?;
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(row) = rows.next()? {
            let values = (0..columns.len())
                .map(|i| row.get::<_, Value>(i))
                .collect::<Result<Vec<_>, _>>()?;
            batch.push(values);
            if batch.len() == BATCH {
                out.send(Batch::Rows(std::mem::take(&mut batch)))
                    .map_err(|_| stopped())?;
            }
        }
        if !batch.is_empty() {
            out.send(Batch::Rows(batch)).map_err(|_| stopped())?;
        }
    }
    source.execute_batch("COMMIT").map_err(sqlite_error)?;
    let _ = out.send(Batch::Done);
    Ok(())
}

/// What PostgreSQL keeps beyond the copied rows: identities continued,
/// every entry's search vector, the river's version.
async fn derive(tx: &Tx<'_>) -> Result<(), StoreError> {
    for table in IDENTITIES {
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                    COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            ),
            &[],
        )
        .await?;
    }
    // Search vectors from the same text SQLite's index had.
    tx.batch_execute(
        "CREATE TEMP TABLE search_text (entry_id BIGINT, feed_id BIGINT, title TEXT,
            body TEXT, author TEXT) ON COMMIT DROP",
    )
    .await?;
    let entries = tx
        .query(
            "SELECT id, feed_id, title, author, summary, content FROM entries",
            &[],
        )
        .await?;
    let copy = tx.copy_in("COPY search_text FROM STDIN BINARY").await?;
    let mut text = pin!(BinaryCopyInWriter::new(
        copy,
        &[Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT]
    ));
    for r in &entries {
        let (summary, content): (Option<String>, Option<String>) = (get(r, 4)?, get(r, 5)?);
        let body = body_text(summary.as_deref(), content.as_deref());
        let author: String = get::<Option<String>>(r, 3)?.unwrap_or_default();
        text.as_mut()
            .write(&[
                &get::<i64>(r, 0)?,
                &get::<i64>(r, 1)?,
                &get::<String>(r, 2)?,
                &body,
                &author,
            ])
            .await?;
    }
    text.as_mut().finish().await?;
    tx.batch_execute(
        "INSERT INTO search_docs (entry_id, doc)
         SELECT t.entry_id,
            setweight(to_tsvector('newsriver', t.title), 'A')
            || setweight(to_tsvector('newsriver', t.body), 'B')
            || setweight(to_tsvector('newsriver', t.author), 'C')
            || setweight(to_tsvector('newsriver', COALESCE(f.config_title, f.title, f.url)), 'D')
         FROM search_text t JOIN feeds f ON f.id = t.feed_id;
         UPDATE river_version SET version = version + 1;",
    )
    .await?;
    Ok(())
}
