-- Indexes that every stored entry paid for and no query needs:
-- entries_first_seen (05-stories) was read by nothing; entries_newest
-- (01-core) only by pruning by age, which now goes feed by feed through
-- entries_feed_sort (feed_id, sort_time). The river reads stories_newest.
DROP INDEX IF EXISTS entries_first_seen;
DROP INDEX IF EXISTS entries_newest;
