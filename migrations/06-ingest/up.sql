-- entries_first_seen (05-stories) was read by no query, yet every stored
-- entry paid for it: one more random-order index to update per insert.
DROP INDEX IF EXISTS entries_first_seen;
