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
