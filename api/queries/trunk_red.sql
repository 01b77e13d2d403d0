-- Red commits on a branch: per commit pushed in the window that ran jobs, how many of its jobs
-- failed for real (failed, and no later attempt passed) and how many were flaky (failed, then
-- passed on a rerun). Failed jobs and reruns that passed come from job_failure (a few percent of
-- the jobs); each counts at its newest version (argMax: right before merges). Unstable jobs
-- do not count: those whose name, as torchci's `transformJobName` writes it (`workflow / job
-- (config)`), starts with one of `unstable` (the job names of open UNSTABLE issues), and those
-- whose name says `unstable`. Params: repo String, ref String, since UInt64, until UInt64 (unix
-- seconds), unstable Array(String).
SELECT sha, real_jobs, flaky_jobs
FROM
(
    SELECT DISTINCT head_sha AS sha
    FROM {database}.workflow_job
    WHERE repository_full_name = {repo:String}
      AND head_sha IN
      (
          SELECT sha FROM {database}.commit
          WHERE repository_full_name = {repo:String} AND ref = {ref:String}
            AND pushed_at >= toDateTime({since:UInt64}, 'UTC')
            AND pushed_at < toDateTime({until:UInt64}, 'UTC')
      )
      AND conclusion != ''
) AS ran
ANY LEFT JOIN
(
    SELECT head_sha AS sha, countIf(successes = 0) AS real_jobs, countIf(successes > 0) AS flaky_jobs
    FROM
    (
        SELECT
            head_sha, job_workflow, job_name,
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
        HAVING failures > 0
    )
    GROUP BY head_sha
) AS failed USING (sha)
