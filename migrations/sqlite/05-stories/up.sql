-- Stories across feeds, the per-feed identity ladder, churn limits and tombstones.

-- The rung of the identity ladder each feed's entries are keyed by, and how
-- the configuration ranks it as a source (higher wins the primary slot).
ALTER TABLE feeds ADD COLUMN identity_rung TEXT NOT NULL DEFAULT 'guid'; -- guid | link | hash
ALTER TABLE feeds ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE feeds ADD COLUMN original INTEGER NOT NULL DEFAULT 0;      -- 1: an original publisher

-- One story: every entry that carries the same report, from any feed.
CREATE TABLE stories (
    id         INTEGER PRIMARY KEY,
    uid        TEXT NOT NULL UNIQUE,   -- published id: the uid of its first entry, never changes
    first_seen INTEGER NOT NULL,
    sort_time  INTEGER NOT NULL        -- the earliest sort_time of its entries
) STRICT;

CREATE INDEX stories_newest ON stories (sort_time DESC, id DESC);

ALTER TABLE entries ADD COLUMN story_id INTEGER REFERENCES stories (id);
ALTER TABLE entries ADD COLUMN canonical_link TEXT;
ALTER TABLE entries ADD COLUMN fingerprint BLOB;      -- MinHash signature (identity::fingerprint)
ALTER TABLE entries ADD COLUMN churn_hash TEXT;       -- change hash with digits masked; NULL before 03
ALTER TABLE entries ADD COLUMN last_seen INTEGER;     -- last poll whose document carried it

CREATE INDEX entries_story ON entries (story_id);
CREATE INDEX entries_canonical_link ON entries (canonical_link);
CREATE INDEX entries_first_seen ON entries (first_seen);

-- Entries stored before this migration become one story each.
INSERT INTO stories (uid, first_seen, sort_time)
    SELECT uid, first_seen, sort_time FROM entries;
UPDATE entries SET story_id = (SELECT s.id FROM stories s WHERE s.uid = entries.uid),
                   last_seen = changed_at;

-- A pruned entry's tombstone (entry_tombstones, 02-operations) also keeps its
-- canonical link and permanent id: the source showing the same item again
-- under another guid does not bring it back either.
ALTER TABLE entry_tombstones ADD COLUMN canonical_link TEXT;
ALTER TABLE entry_tombstones ADD COLUMN uid TEXT;

CREATE INDEX entry_tombstones_link ON entry_tombstones (feed_id, canonical_link);
