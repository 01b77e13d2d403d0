-- The jobs of some commits as the hot window holds them (api/src/hot_window/): the columns of
-- grid_jobs.sql a cell shows (from grid_job, as it), with the versions the window merges the
-- log's records by (the job's, and its newest verdict's; 0 for none).
-- Params: repo String, shas Array(String).
SELECT
    head_sha, id, version, run_attempt, workflow_name, name, status, conclusion, duration_s,
    html_url, verdict_version, failure_outcome, failure_rule, failure_line, failure_line_number,
    failure_captures
FROM
(
    SELECT head_sha, id, version, run_attempt, workflow_name, name, status, conclusion,
           duration_s, html_url
    FROM {database}.grid_job
    WHERE repository_full_name = {repo:String}
      AND head_sha IN (SELECT arrayJoin({shas:Array(String)}))
    ORDER BY head_sha, id, version DESC
    LIMIT 1 BY head_sha, id
) AS jobs
ANY LEFT JOIN
(
    SELECT
        job_id AS id, version AS verdict_version, outcome AS failure_outcome,
        rule AS failure_rule, line AS failure_line, line_number AS failure_line_number,
        captures AS failure_captures
    FROM {database}.job_classification
    WHERE repository_full_name = {repo:String}
      AND job_id IN
      (
          SELECT id FROM {database}.grid_job
          WHERE repository_full_name = {repo:String}
            AND head_sha IN (SELECT arrayJoin({shas:Array(String)}))
      )
    ORDER BY job_id, version DESC
    LIMIT 1 BY job_id
) AS verdicts USING (id)
