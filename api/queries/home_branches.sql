-- The home page: the repositories and branches that have data, most recently pushed first,
-- with their newest five commits. From our push stream (each commit at its newest version).
-- Params: page_size UInt64.
SELECT
    repository_full_name AS repository,
    ref,
    toUInt32(max(pushed_at)) AS last_push_unix,
    count() AS commits,
    arraySlice(arrayReverseSort(x -> x.2, groupArray((sha, toUInt32(pushed_at)))), 1, 5) AS newest
FROM
(
    SELECT repository_full_name, ref, sha, argMax(pushed_at, version) AS pushed_at
    FROM {database}.commit
    WHERE startsWith(ref, 'refs/heads/')
    GROUP BY repository_full_name, ref, sha
)
GROUP BY repository_full_name, ref
ORDER BY last_push_unix DESC, repository, ref
LIMIT {page_size:UInt64}
