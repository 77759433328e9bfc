-- Core schema: configured feeds with their fetch state, and their entries.
-- Times are unix seconds (UTC).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE feeds (
    id              INTEGER PRIMARY KEY,
    url             TEXT NOT NULL UNIQUE,     -- as configured
    uid             TEXT NOT NULL UNIQUE,     -- permanent id, never changes
    active          INTEGER NOT NULL DEFAULT 1, -- 0 once removed from the config
    config_title    TEXT,                     -- the TOML's override
    interval_secs   INTEGER NOT NULL,
    -- what the source says about itself
    source_id       TEXT,                     -- the source's own feed id, if it has one
    title           TEXT,
    site_url        TEXT,
    rights          TEXT,
    author          TEXT,                     -- feed-level author, if any
    source_updated  INTEGER,
    -- fetch state
    etag            TEXT,
    last_modified   TEXT,
    state           TEXT NOT NULL DEFAULT 'new', -- new | ok | failing
    last_status     INTEGER,                  -- last HTTP status, NULL if none arrived
    last_error      TEXT,
    failures        INTEGER NOT NULL DEFAULT 0, -- consecutive failures
    last_polled_at  INTEGER,
    last_success_at INTEGER,
    next_poll_at    INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX feeds_due ON feeds (active, next_poll_at);

CREATE TABLE feed_tags (
    feed_id INTEGER NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    tag     TEXT NOT NULL,
    PRIMARY KEY (feed_id, tag)
) STRICT;

CREATE TABLE entries (
    id          INTEGER PRIMARY KEY,
    feed_id     INTEGER NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,               -- identity within the feed (guid:, link:, hash:)
    uid         TEXT NOT NULL UNIQUE,        -- published id, permanent
    title       TEXT NOT NULL,
    link        TEXT,
    author      TEXT,
    summary     TEXT,                        -- sanitised HTML
    content     TEXT,                        -- sanitised HTML
    rights      TEXT,
    published   INTEGER,                     -- as the source says
    updated     INTEGER,                     -- as the source says
    first_seen  INTEGER NOT NULL,
    changed_at  INTEGER NOT NULL,            -- last time we stored a change
    sort_time   INTEGER NOT NULL,            -- published/updated/first_seen, never after first_seen
    hash        TEXT NOT NULL,               -- of the fields that count as a change
    UNIQUE (feed_id, key)
) STRICT;

CREATE INDEX entries_newest ON entries (sort_time DESC, id DESC);
