-- Warnings from the last parse of each feed that newsriver recovered from
-- (feedparser calls these "bozo"): one per line, NULL when the last parse was clean.
ALTER TABLE feeds ADD COLUMN parse_warnings TEXT;
