-- The newest commits of one branch, with their versions: what the hot window holds of it
-- (api/src/hot_window/). The rows, order and tie-breaks of branch_commits.sql, so the grid's
-- pages from memory are the pages from ClickHouse. Params: repo String, ref String,
-- page_size UInt64 (the window's size, plus one to learn whether older commits exist).
SELECT sha, version, message, author_name, author_username, timestamp, pushed_at, url
FROM
(
    SELECT sha, version, message, author_name, author_username, timestamp, pushed_at, url
    FROM {database}.commit
    WHERE repository_full_name = {repo:String} AND ref = {ref:String}
    ORDER BY sha, version DESC
    LIMIT 1 BY sha
)
ORDER BY pushed_at DESC, timestamp DESC, sha
LIMIT {page_size:UInt64}
