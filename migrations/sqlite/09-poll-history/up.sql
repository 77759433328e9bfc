-- Poll history (issue 18): the last polls of each feed, for its status page
-- (/status/feeds/{id}) and the summary's "polls in the last hour". Bounded:
-- the write path keeps the newest 20 rows per feed (store/status.rs).
CREATE TABLE poll_history (
    id           INTEGER PRIMARY KEY,
    feed_id      INTEGER NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    started_at   INTEGER NOT NULL,         -- unix seconds (UTC)
    duration_ms  INTEGER NOT NULL,         -- the fetch, as the poller timed it (0: pushed)
    outcome      TEXT NOT NULL,            -- stored | unchanged | not modified | pushed | throttled | gone | failed
    http_status  INTEGER,                  -- NULL when no response arrived
    error        TEXT,
    new_entries  INTEGER NOT NULL DEFAULT 0,
    updated_entries INTEGER NOT NULL DEFAULT 0
) STRICT;

-- One feed's history, newest first (rowids only grow), and its pruning.
CREATE INDEX poll_history_feed ON poll_history (feed_id, id);
-- Polls since a time, across feeds.
CREATE INDEX poll_history_started ON poll_history (started_at);
