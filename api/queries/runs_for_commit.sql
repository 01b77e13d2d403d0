-- The workflow runs of one commit, current state; a run with no job is a startup failure.
-- The head_commit fields stand in for the commit's header when no push was seen.
-- Params: repo String, sha String.
SELECT id, version, run_attempt, name, event, status, conclusion, head_branch,
       created_at, run_started_at, html_url, pull_request_numbers,
       head_commit_message, head_commit_author_name, head_commit_timestamp
FROM {database}.workflow_run
WHERE repository_full_name = {repo:String} AND head_sha = {sha:String}
ORDER BY id, version DESC
LIMIT 1 BY id
