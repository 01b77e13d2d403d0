-- The current verdict on one job's log: the highest version (a newer ruleset's verdict, or the
-- whole log's after a partial one). Kept in its own table so no job event can erase it; the
-- API shows it next to the job.
-- Params: repo String ('owner/name'), job_id Int64.
-- Read as the table's own row (projections/src/job_classification.rs `JobClassificationRow`).
SELECT
    repository_full_name, job_id, version, head_sha, outcome, rule, line, line_number, captures,
    context, ruleset_hash, engine_version, log_location, log_partial, log_bytes, classified_at, signature, pattern
FROM {database}.job_classification
WHERE repository_full_name = {repo:String} AND job_id = {job_id:Int64}
ORDER BY version DESC
LIMIT 1
