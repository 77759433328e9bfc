-- Placeholder on the issue-4 branch only: migration ids must be consecutive, and
-- 02 is reserved for issue 3 (fetch state). When merging, take issue 3's file.
SELECT 1;
