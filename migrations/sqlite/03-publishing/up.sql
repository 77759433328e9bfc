-- Publishing: per-source views read `entries_feed_sort` (02-operations):
-- (feed_id, sort_time DESC, id DESC). Per-tag views find their feeds here.
CREATE INDEX feed_tags_by_tag ON feed_tags (tag, feed_id);
