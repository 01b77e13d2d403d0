-- The home page's status at a glance: per commit, how many of its jobs failed, passed and are
-- still running — each job name at its last attempt (a failure that passed on rerun counts as
-- passed), each attempt at its newest version, from grid_job (a commit's rows in narrow
-- granules). Params: repo String, shas Array(String).
SELECT
    head_sha AS sha,
    countIf(last_conclusion IN ('failure', 'timed_out')) AS failed,
    countIf(last_conclusion = 'success') AS passed,
    countIf(last_conclusion = '') AS running
FROM
(
    SELECT head_sha, job_workflow, job_name, argMax(attempt_conclusion, attempt) AS last_conclusion
    FROM
    (
        SELECT
            head_sha, id,
            argMax(workflow_name, version) AS job_workflow,
            argMax(name, version) AS job_name,
            argMax(conclusion, version) AS attempt_conclusion,
            max(run_attempt) AS attempt
        FROM {database}.grid_job
        WHERE repository_full_name = {repo:String}
          AND head_sha IN (SELECT arrayJoin({shas:Array(String)}))
        GROUP BY head_sha, id
    )
    GROUP BY head_sha, job_workflow, job_name
)
GROUP BY head_sha
