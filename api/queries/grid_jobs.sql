-- The HUD grid's cells before merging: the newest state of every job of some commits, with
-- its verdict — only the columns a cell shows, from grid_job (those columns alone, in narrow
-- granules keyed by commit: a page of 50 commits reads ~100 k small rows, not ~1.1 M wide
-- ones of workflow_job). The answer has the columns of jobs_for_commits.sql
-- (the full rows for the commit and PR pages), in its order, so both are read as
-- api/src/job_rows.rs `JobRow`: the columns a cell does not show are typed constants.
-- Params: repo String, shas Array(String).
SELECT
    head_sha, id, version, toInt64(0) AS run_id, run_attempt, workflow_name, name, status,
    conclusion, toDateTime(0, 'UTC') AS created_at, toDateTime(0, 'UTC') AS started_at,
    toDateTime(0, 'UTC') AS completed_at, CAST(NULL AS Nullable(Float64)) AS queue_time_s,
    duration_s, emptyArrayString() AS labels, '' AS runner_name, html_url,
    failure_outcome, failure_rule, failure_line, failure_line_number, failure_captures
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
        job_id AS id, outcome AS failure_outcome, rule AS failure_rule, line AS failure_line,
        line_number AS failure_line_number, captures AS failure_captures
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
