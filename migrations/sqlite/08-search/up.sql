-- Search (issue 17): a full-text index over stored entries, one row per
-- entry (rowid = entries.id): its title, its text without markup, its author
-- and its outlet's name. Contentless: the words are indexed, the text stays
-- in `entries`. Case- and accent-insensitive, with English (Porter) stems.
-- Kept up to date by the store's write path (store/search.rs).
CREATE VIRTUAL TABLE search_index USING fts5(
    title, body, author, source,
    content = '',
    contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

-- Entries stored before this migration are indexed at start-up, in batches
-- that log their progress (the markup is removed in Rust, not in SQL):
-- the id of the last entry indexed so far.
INSERT INTO meta (key, value) VALUES ('search_index_built_to', '0')
    ON CONFLICT (key) DO UPDATE SET value = '0';

-- Cheaper writes on the serial writer: leaf pages as large as the
-- database's 8 KiB pages, and segments merged eight at a time rather than
-- four (fewer merge passes over the same words; a query reads a few more
-- segments).
INSERT INTO search_index (search_index, rank) VALUES ('pgsz', 8000);
INSERT INTO search_index (search_index, rank) VALUES ('automerge', 8);

-- Entries to (re)index when the writer's transaction ends: FTS5 writes its
-- pending words to disk at every savepoint, and each poll is a savepoint of
-- the group commit, so indexing in the poll's savepoint made one tiny
-- segment per poll (and merged them again and again). A row here is written
-- in the poll's savepoint (undone with it); the writer indexes every row
-- once per transaction, just before COMMIT. fresh = 1: not in the index yet.
CREATE TABLE search_pending (
    id    INTEGER PRIMARY KEY,   -- entries.id
    fresh INTEGER NOT NULL
) STRICT;
