-- The workflow runs of one commit, current state; a run with no job is a startup failure.
-- Params: repo String, sha String.
SELECT id, version, run_attempt, name, event, status, conclusion, head_branch,
       created_at, run_started_at, html_url
FROM {database}.workflow_run
WHERE repository_full_name = {repo:String} AND head_sha = {sha:String}
ORDER BY id, version DESC
LIMIT 1 BY id
