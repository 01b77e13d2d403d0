-- The current state of one job: its newest version's document (the row of workflow_job as
-- JSON; the API parses it). From job_page, keyed by (repository, id) in 256-row granules: four
-- columns and a few hundred rows read, where the same lookup of workflow_job_by_id's 32 columns
-- took 11–20 ms on the server at a million jobs. No FINAL: ORDER BY version DESC LIMIT 1 is
-- right before ClickHouse has merged the versions.
-- Params: repo String ('owner/name'), job_id Int64.
SELECT repository_full_name, id, version, document
FROM {database}.job_page
WHERE repository_full_name = {repo:String} AND id = {job_id:Int64}
ORDER BY version DESC
LIMIT 1
