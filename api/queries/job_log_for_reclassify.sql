-- One job's stored log and current verdict, for `hudstream reclassify --job owner/repo/id`.
-- Params: repo String ('owner/name'), job_id Int64.
SELECT repository_full_name, job_id, head_sha, log_location, log_partial, outcome, rule, line
FROM {database}.job_classification
WHERE repository_full_name = {repo:String} AND job_id = {job_id:Int64} AND log_location != ''
ORDER BY version DESC
LIMIT 1
