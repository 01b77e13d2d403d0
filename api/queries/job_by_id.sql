-- The current state of one job, from its columns: what the job page reads when job_page
-- (job_page.sql, the fast lookup) does not hold the job yet — its projection still catching up
-- after an upgrade, or the table being rebuilt. The row with the highest version (no FINAL
-- needed, so the answer is right even before ClickHouse has merged the versions). From
-- workflow_job_by_id, the same rows keyed by (repository, id): a point lookup, not a scan of
-- the repository.
-- Params: repo String ('owner/name'), job_id Int64.
SELECT
    repository_full_name, id, version, run_id, run_attempt, node_id, head_sha, head_branch,
    workflow_name, name, status, conclusion, created_at, started_at, completed_at,
    queue_time_s, duration_s, labels, runner_id, runner_name, runner_group_id, runner_group_name,
    steps.number, steps.name, steps.status, steps.conclusion, steps.started_at, steps.completed_at,
    url, html_url, run_url, check_run_url
FROM {database}.workflow_job_by_id
WHERE repository_full_name = {repo:String} AND id = {job_id:Int64}
ORDER BY version DESC
LIMIT 1
