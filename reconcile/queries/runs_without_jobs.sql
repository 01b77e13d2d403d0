-- Workflow runs created between `created_after` and `stale_before` that have no job at all,
-- oldest first: every job's webhooks were lost, or the run never had a job. Runs GitHub already
-- said never ran one (a startup failure, a fork PR waiting for approval, a skipped run) are
-- left out, so they are not asked about pass after pass.
-- Params: created_after UInt64, stale_before UInt64 (unix seconds), max_rows UInt64.
SELECT repository_full_name, id, status, version, created_unix
FROM
(
    SELECT repository_full_name, id, status, conclusion, version, toUInt32(created_at) AS created_unix
    FROM {database}.workflow_run
    WHERE toUInt32(created_at) >= {created_after:UInt64}
      AND toUInt32(created_at) < {stale_before:UInt64}
    ORDER BY repository_full_name, id, version DESC
    LIMIT 1 BY repository_full_name, id
)
WHERE conclusion NOT IN ('startup_failure', 'action_required', 'skipped')
  AND (repository_full_name, id) NOT IN
(
    SELECT repository_full_name, run_id FROM {database}.workflow_job
    WHERE toUInt32(created_at) >= {created_after:UInt64}
)
ORDER BY created_unix, repository_full_name, id
LIMIT {max_rows:UInt64}
