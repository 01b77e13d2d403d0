-- The hot window's branches: every repository that has one of the watched refs. Read when the
-- API rebuilds its in-memory model (api/src/hot_window/). Params: refs Array(String).
SELECT DISTINCT repository_full_name, ref
FROM {database}.commit
WHERE ref IN (SELECT arrayJoin({refs:Array(String)}))
ORDER BY repository_full_name, ref
