-- The current state of every job of some commits: the commit page and the PR page. Read
-- model: `grid_job` (`0016`, `0017`), the columns these pages show in 1,024-row granules keyed
-- by commit — `workflow_job`'s 8,192-row granules of wide rows cost a commit's ~800 rows
-- ~115 k rows and ~38 MiB read. `LIMIT 1 BY` keeps each job's highest version, so no FINAL is
-- needed and the answer is right before ClickHouse merges. The verdict columns are empty
-- here: verdicts_for_commits.sql reads them at the same time, and the API joins them by id
-- (one statement with the join cost the server more than both apart).
-- Params: repo String ('owner/name'), shas Array(String).
SELECT
    head_sha, id, version, run_id, run_attempt, workflow_name, name, status, conclusion,
    created_at, started_at, completed_at, queue_time_s, duration_s, labels, runner_name,
    html_url, '' AS failure_outcome, '' AS failure_rule, '' AS failure_line,
    toInt64(0) AS failure_line_number, emptyArrayString() AS failure_captures
FROM {database}.grid_job
WHERE repository_full_name = {repo:String}
  AND head_sha IN (SELECT arrayJoin({shas:Array(String)}))
ORDER BY head_sha, id, version DESC
LIMIT 1 BY head_sha, id
