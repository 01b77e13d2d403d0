-- The current state of every job of some commits: the HUD grid (50 commits), the commit page
-- and the PR page. `LIMIT 1 BY` keeps each job's highest version, so no FINAL is needed and the
-- answer is right before ClickHouse merges. The ORDER BY key (repository, head_sha, id) makes
-- this a range read.
-- Params: repo String ('owner/name'), shas Array(String).
SELECT
    head_sha, id, version, run_id, run_attempt, workflow_name, name, status, conclusion,
    created_at, started_at, completed_at, queue_time_s, duration_s, labels, runner_name, html_url
FROM {database}.workflow_job
WHERE repository_full_name = {repo:String}
  AND head_sha IN (SELECT arrayJoin({shas:Array(String)}))
ORDER BY head_sha, id, version DESC
LIMIT 1 BY head_sha, id
