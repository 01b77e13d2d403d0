-- Red commits on a branch: per commit pushed in the window, how many of its cells (workflow,
-- job name with the shard suffix removed, as torchci's `removeJobNameSuffix`) failed for real
-- (a failure and no success) and how many were flaky (a failure, then a success on rerun).
-- Each job counts at its newest finished version (argMax by version: right before merges).
-- Unstable jobs do not count: those whose name, as torchci's `transformJobName` writes it
-- (`workflow / job (config)`), starts with one of `unstable` (the job names of open UNSTABLE
-- issues), and those whose name says `unstable`. Params: repo String, ref String, since
-- UInt64, until UInt64 (unix seconds), unstable Array(String).
SELECT head_sha AS sha, countIf(failures > 0 AND successes = 0) AS real_cells,
       countIf(failures > 0 AND successes > 0) AS flaky_cells, count() AS cells
FROM
(
    SELECT
        head_sha,
        job_workflow,
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
    GROUP BY head_sha, job_workflow, cell
)
GROUP BY head_sha
