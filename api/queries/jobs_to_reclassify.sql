-- The jobs `hudstream reclassify --since/--until` classifies again: every job that completed in
-- [since, until) and has a stored log, with its current verdict (the highest version).
-- Params: since String, until String ('YYYY-MM-DD hh:mm:ss', UTC).
SELECT repository_full_name, job_id, head_sha, log_location, log_partial, outcome, rule, line
FROM {database}.job_classification
WHERE log_location != ''
  AND (repository_full_name, job_id) IN
  (
      SELECT repository_full_name, id FROM {database}.workflow_job
      WHERE completed_at >= toDateTime({since:String}, 'UTC')
        AND completed_at < toDateTime({until:String}, 'UTC')
  )
ORDER BY repository_full_name, job_id, version DESC
LIMIT 1 BY repository_full_name, job_id
