-- Jobs whose newest state is not `completed` although they were created before `stale_before`
-- (and after `created_after`), oldest first: the reconciler asks GitHub about each. Candidates
-- are the ids that ever had such a row, so the newest-version check reads only those.
-- Params: created_after UInt64, stale_before UInt64 (unix seconds), max_rows UInt64.
SELECT repository_full_name, id, status, version, toUInt32(created_at) AS created_unix
FROM
(
    SELECT repository_full_name, id, status, version, created_at
    FROM {database}.workflow_job
    WHERE (repository_full_name, id) IN
    (
        SELECT repository_full_name, id FROM {database}.workflow_job
        WHERE status != 'completed'
          AND toUInt32(created_at) >= {created_after:UInt64}
          AND toUInt32(created_at) < {stale_before:UInt64}
    )
    ORDER BY repository_full_name, id, version DESC
    LIMIT 1 BY repository_full_name, id
)
WHERE status != 'completed'
ORDER BY created_unix, repository_full_name, id
LIMIT {max_rows:UInt64}
