-- Jobs of a repository that are queued now (their newest state says so), created in the last
-- `max_age_s` seconds, one row per runner label (a job with two labels appears twice): the
-- input of torchci's `queued_jobs_by_label`. Candidates are the ids that ever had a queued
-- row (two narrow columns of workflow_job); their newest versions come from
-- `workflow_job_by_id`, keyed by id, so `IN` reads only their granules (1 M jobs: 0.21–0.29 →
-- 0.08 s on the server, 629 → 10 MiB read; workflow_job's key does not start with the id, so
-- there the same `IN` read every column of every row). Params: repo String, max_age_s UInt64.
SELECT label, id, name, workflow_name, head_sha, toUInt32(created_at) AS created_unix, html_url
FROM
(
    SELECT id, status, name, workflow_name, head_sha, created_at, labels, html_url
    FROM {database}.workflow_job_by_id
    WHERE repository_full_name = {repo:String}
      AND id IN
      (
          SELECT id FROM {database}.workflow_job
          WHERE repository_full_name = {repo:String} AND status = 'queued'
            AND toUInt32(created_at) > toUInt32(now()) - {max_age_s:UInt64}
      )
    ORDER BY id, version DESC
    LIMIT 1 BY id
)
ARRAY JOIN if(empty(labels), [''], labels) AS label
WHERE status = 'queued'
ORDER BY label, created_unix, id
