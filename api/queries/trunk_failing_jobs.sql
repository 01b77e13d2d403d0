-- Broken trunk candidates: per job (workflow / job name, shard suffix removed) that failed for
-- real on at least `min_failures` commits of the branch in the window, the commits it failed
-- on and the commits it passed on; the API orders them by push time and finds runs of
-- consecutive failures. Each job counts at its newest finished version; unstable jobs do not
-- count (as in trunk_cells.sql). Params: repo String, ref String, since UInt64, until UInt64
-- (unix seconds), unstable Array(String), min_failures UInt64.
SELECT
    job,
    groupArrayIf(head_sha, failed) AS failed_shas,
    groupArrayIf(head_sha, NOT failed) AS passed_shas
FROM
(
    SELECT head_sha, job, max(real_failure) AS failed
    FROM
    (
        SELECT
            head_sha,
            concat(job_workflow, ' / ', replaceRegexpOne(job_name, ', [0-9]+, [0-9]+, .+\\)', ')')) AS job,
            countIf(last_conclusion IN ('failure', 'timed_out')) > 0
                AND countIf(last_conclusion = 'success') = 0 AS real_failure
        FROM
        (
            SELECT
                head_sha, id,
                argMax(workflow_name, version) AS job_workflow,
                argMax(name, version) AS job_name,
                argMax(conclusion, version) AS last_conclusion
            FROM {database}.workflow_job
            WHERE repository_full_name = {repo:String}
              AND head_sha IN
              (
                  SELECT sha FROM {database}.commit
                  WHERE repository_full_name = {repo:String} AND ref = {ref:String}
                    AND pushed_at >= toDateTime({since:UInt64}, 'UTC')
                    AND pushed_at < toDateTime({until:UInt64}, 'UTC')
              )
              AND conclusion IN ('failure', 'timed_out', 'success')
            GROUP BY head_sha, id
        )
        WHERE position(lower(concat(job_workflow, ' / ', job_name)), 'unstable') = 0
          AND NOT arrayExists(u -> startsWith(replaceRegexpOne(concat(job_workflow, ' / ', job_name), '^(.*) \\(([^,]*),.*\\)$', '\\1 (\\2)'), u), CAST({unstable:Array(String)} AS Array(String)))
        GROUP BY head_sha, job_workflow, job_name
    )
    GROUP BY head_sha, job
)
GROUP BY job
HAVING countIf(failed) >= {min_failures:UInt64}
ORDER BY job
