-- Time to signal on a branch: per commit pushed in the window, when it was pushed, how many
-- jobs ran and finished, when the last finished and when the first failed (torchci's
-- `time_to_signal` and time to red signal). Aggregated over every stored version: only a
-- completed version has a completion time and a conclusion, so no deduplication is needed.
-- Params: repo String, ref String, since UInt64, until UInt64 (unix seconds).
SELECT sha, pushed_at_unix, jobs, completed, last_completed_unix, first_failure_unix
FROM
(
    SELECT sha, toUInt32(pushed_at) AS pushed_at_unix
    FROM
    (
        SELECT sha, version, pushed_at
        FROM {database}.commit
        WHERE repository_full_name = {repo:String} AND ref = {ref:String}
        ORDER BY sha, version DESC
        LIMIT 1 BY sha
    )
    WHERE pushed_at >= toDateTime({since:UInt64}, 'UTC')
      AND pushed_at < toDateTime({until:UInt64}, 'UTC')
) AS commits
ANY LEFT JOIN
(
    SELECT
        head_sha AS sha,
        uniqExact(id) AS jobs,
        uniqExactIf(id, status = 'completed') AS completed,
        toUInt32(maxIf(completed_at, status = 'completed')) AS last_completed_unix,
        toUInt32(minIf(completed_at, conclusion IN ('failure', 'timed_out'))) AS first_failure_unix
    FROM {database}.workflow_job
    WHERE repository_full_name = {repo:String}
      AND head_sha IN
      (
          SELECT sha FROM {database}.commit
          WHERE repository_full_name = {repo:String} AND ref = {ref:String}
            AND pushed_at >= toDateTime({since:UInt64}, 'UTC')
            AND pushed_at < toDateTime({until:UInt64}, 'UTC')
      )
    GROUP BY head_sha
) AS jobs USING (sha)
ORDER BY pushed_at_unix DESC, sha
