-- Fetch state beyond the core (issue 3): what the scheduler learned about each feed.
-- The configured url stays the feed's key; a confirmed permanent redirect is
-- kept here and used for fetching, the TOML is never rewritten.

ALTER TABLE feeds ADD COLUMN fetch_url TEXT;          -- adopted new address; NULL = the configured url
ALTER TABLE feeds ADD COLUMN moved_to TEXT;           -- permanent redirect target awaiting confirmation
ALTER TABLE feeds ADD COLUMN moved_seen INTEGER NOT NULL DEFAULT 0; -- times seen in a row
ALTER TABLE feeds ADD COLUMN moved_since INTEGER;     -- first seen
ALTER TABLE feeds ADD COLUMN body_hash TEXT;          -- sha256 of the last body parsed
ALTER TABLE feeds ADD COLUMN poll_interval_secs INTEGER; -- adaptive interval; NULL = interval_secs
ALTER TABLE feeds ADD COLUMN skip_hours INTEGER NOT NULL DEFAULT 0; -- RSS skipHours, bit n = hour n (UTC)
ALTER TABLE feeds ADD COLUMN skip_days INTEGER NOT NULL DEFAULT 0;  -- RSS skipDays, bit 0 = Monday
-- state gains: throttled (429/503 with Retry-After) and gone (410; no longer polled)
ALTER TABLE feeds ADD COLUMN fixed_interval INTEGER NOT NULL DEFAULT 0; -- the [[feed]] sets its interval: not adaptive
