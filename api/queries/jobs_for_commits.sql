-- The current state of every job of some commits, with its log's verdict: the commit page and
-- the PR page. Read model: `grid_job` (`0016`, `0017`), the columns these pages show in
-- 1,024-row granules keyed by commit — `workflow_job`'s 8,192-row granules of wide rows cost a
-- commit's ~800 rows ~115 k rows and ~38 MiB read. `LIMIT 1 BY` keeps each job's (and each
-- verdict's) highest version, so no FINAL is needed and the answer is right before ClickHouse
-- merges. The verdicts are looked up by the jobs' ids. A job without a verdict has
-- failure_outcome ''. Params: repo String ('owner/name'), shas Array(String).
SELECT
    head_sha, id, version, run_id, run_attempt, workflow_name, name, status, conclusion,
    created_at, started_at, completed_at, queue_time_s, duration_s, labels, runner_name, html_url,
    failure_outcome, failure_rule, failure_line, failure_line_number, failure_captures
FROM
(
    SELECT
        head_sha, id, version, run_id, run_attempt, workflow_name, name, status, conclusion,
        created_at, started_at, completed_at, queue_time_s, duration_s, labels, runner_name,
        html_url
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
ORDER BY head_sha, id
