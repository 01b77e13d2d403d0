-- Broken trunk candidates: per job (workflow / job name, shard suffix removed) that failed for
-- real (no later attempt passed) on at least `min_failures` commits of the branch in the
-- window, the commits it failed on. The API orders the branch's commits by push and finds runs
-- of consecutive failures among the commits its workflow ran on (trunk_workflow_runs.sql).
-- From job_failure; each job counts at its newest version; unstable jobs do not count (as
-- in trunk_red.sql).
-- Params: repo String, ref String, since UInt64, until UInt64 (unix seconds), unstable
-- Array(String), min_failures UInt64.
SELECT job_workflow AS workflow, cell, groupUniqArray(head_sha) AS failed_shas
FROM
(
    SELECT
        head_sha, job_workflow,
        replaceRegexpOne(job_name, ', [0-9]+, [0-9]+, .+\\)', ')') AS cell,
        countIf(last_conclusion IN ('failure', 'timed_out')) AS failures,
        countIf(last_conclusion = 'success') AS successes
    FROM
    (
            SELECT
                head_sha, id,
                argMax(workflow_name, version) AS job_workflow,
                argMax(name, version) AS job_name,
                argMax(conclusion, version) AS last_conclusion
            FROM {database}.job_failure
            WHERE repository_full_name = {repo:String}
              AND head_sha IN
              (
                  SELECT sha FROM {database}.commit
                  WHERE repository_full_name = {repo:String} AND ref = {ref:String}
                    AND pushed_at >= toDateTime({since:UInt64}, 'UTC')
                    AND pushed_at < toDateTime({until:UInt64}, 'UTC')
              )
            GROUP BY head_sha, id
    )
            WHERE position(lower(concat(job_workflow, ' / ', job_name)), 'unstable') = 0
              AND NOT arrayExists(u -> startsWith(replaceRegexpOne(concat(job_workflow, ' / ', job_name), '^(.*) \\(([^,]*),.*\\)$', '\\1 (\\2)'), u), CAST({unstable:Array(String)} AS Array(String)))
    GROUP BY head_sha, job_workflow, job_name
    HAVING failures > 0 AND successes = 0
)
GROUP BY job_workflow, cell
HAVING uniqExact(head_sha) >= {min_failures:UInt64}
ORDER BY workflow, cell
