-- Dr.CI's input: every job of some commits (a PR's heads and their merge bases) at its newest
-- version, with what the classes are decided on — the newest verdict's outcome, rule, line,
-- captures, context (the commands before the failure) and signature. A job without a verdict
-- has failure_outcome ''. The jobs come from grid_job: a commit's rows in 1,024-row granules
-- (workflow_job's 8,192-row granules of wide rows read ~115 k rows a commit). Params: repo
-- String ('owner/name'), shas Array(String).
SELECT
    head_sha, id, run_id, run_attempt, workflow_name, name, status, conclusion,
    toUInt32(created_at) AS created_at_unix, toUInt32(completed_at) AS completed_at_unix,
    runner_name, html_url,
    failure_outcome, failure_rule, failure_line, failure_captures, failure_context,
    failure_signature
FROM
(
    SELECT
        head_sha, id, run_id, run_attempt, workflow_name, name, status, conclusion,
        created_at, completed_at, runner_name, html_url
    FROM {database}.grid_job
    WHERE repository_full_name = {repo:String}
      AND head_sha IN (SELECT arrayJoin({shas:Array(String)}))
    ORDER BY head_sha, id, version DESC
    LIMIT 1 BY head_sha, id
) AS jobs
ANY LEFT JOIN
(
    SELECT
        job_id AS id, outcome AS failure_outcome, rule AS failure_rule, line AS failure_line,
        captures AS failure_captures, context AS failure_context, signature AS failure_signature
    FROM {database}.job_classification
    WHERE repository_full_name = {repo:String}
      AND job_id IN
      (
          SELECT id FROM {database}.grid_job
          WHERE repository_full_name = {repo:String}
            AND head_sha IN (SELECT arrayJoin({shas:Array(String)}))
            AND conclusion NOT IN ('', 'success', 'skipped', 'neutral')
      )
    ORDER BY job_id, version DESC
    LIMIT 1 BY job_id
) AS verdicts USING (id)
ORDER BY head_sha, id
