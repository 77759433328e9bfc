-- Placeholder on the issue-6 branch only, so that 05-operations loads
-- (rusqlite_migration needs consecutive ids). At merge, take the real file
-- from the issue that owns this number.
SELECT 1;
