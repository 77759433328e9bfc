-- Publishing: per-source and per-tag views are read newest first, a page at a time.
CREATE INDEX entries_feed_newest ON entries (feed_id, sort_time DESC, id DESC);
CREATE INDEX feed_tags_by_tag ON feed_tags (tag, feed_id);
