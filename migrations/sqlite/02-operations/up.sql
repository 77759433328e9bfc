-- Operations: tombstones of entries pruned by retention, so that an entry a
-- feed still carries is not stored again as new after it was pruned.

CREATE TABLE entry_tombstones (
    feed_id   INTEGER NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    key       TEXT NOT NULL,                 -- the pruned entry's identity within its feed
    pruned_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,              -- last time the feed still carried it
    PRIMARY KEY (feed_id, key)
) STRICT, WITHOUT ROWID;

CREATE INDEX entry_tombstones_last_seen ON entry_tombstones (last_seen);

-- Retention by age and by count per feed walks entries of one feed by date.
CREATE INDEX entries_feed_sort ON entries (feed_id, sort_time DESC, id DESC);
