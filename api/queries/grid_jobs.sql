-- The HUD grid's cells before merging: the newest state of every job of some commits — only
-- the columns a cell shows, from grid_job (those columns alone, in narrow granules keyed by
-- commit: a page of 50 commits reads ~100 k small rows, not ~1.1 M wide ones of workflow_job).
-- The answer has the columns of jobs_for_commits.sql (the full rows for the commit and PR
-- pages), in its order, so both are read as api/src/job_rows.rs `JobRow`: the columns a cell
-- does not show are typed constants, and so are the verdict's, which verdicts_for_commits.sql
-- reads at the same time (the API joins them by id: one statement with the join took the
-- server 58 ms for a page, the two reads 34 and 9 ms).
-- Params: repo String, shas Array(String).
SELECT
    head_sha, id, version, toInt64(0) AS run_id, run_attempt, workflow_name, name, status,
    conclusion, toDateTime(0, 'UTC') AS created_at, toDateTime(0, 'UTC') AS started_at,
    toDateTime(0, 'UTC') AS completed_at, CAST(NULL AS Nullable(Float64)) AS queue_time_s,
    duration_s, emptyArrayString() AS labels, '' AS runner_name, html_url,
    '' AS failure_outcome, '' AS failure_rule, '' AS failure_line,
    toInt64(0) AS failure_line_number, emptyArrayString() AS failure_captures
FROM {database}.grid_job
WHERE repository_full_name = {repo:String}
  AND head_sha IN (SELECT arrayJoin({shas:Array(String)}))
ORDER BY head_sha, id, version DESC
LIMIT 1 BY head_sha, id
