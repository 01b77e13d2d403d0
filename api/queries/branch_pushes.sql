-- A branch's commits pushed in a window, newest first, with when each was pushed: Dr.CI picks
-- each PR head's merge base among them (the base branch's newest commit pushed before the head
-- was first seen). Params: repo String, ref String ('refs/heads/main'), since UInt64,
-- until UInt64 (unix seconds), limit UInt64.
SELECT sha, toUInt32(pushed_at) AS pushed_at_unix
FROM
(
    SELECT sha, version, pushed_at
    FROM {database}.commit
    WHERE repository_full_name = {repo:String} AND ref = {ref:String}
    ORDER BY sha, version DESC
    LIMIT 1 BY sha
)
WHERE pushed_at >= toDateTime({since:UInt64}, 'UTC') AND pushed_at <= toDateTime({until:UInt64}, 'UTC')
ORDER BY pushed_at DESC, sha
LIMIT {limit:UInt64}
