-- Some jobs' names, commits and branches, by id, each at its newest version: what the test
-- views show of the jobs their rows name. From workflow_job_by_id, keyed by (repository, id):
-- only the granules of those ids are read. (18.16 types an array literal of
-- positive numbers UInt64: the toInt64 makes it match the column.)
-- Params: repo String, ids Array(Int64).
SELECT id, workflow_name, name, head_sha, head_branch
FROM {database}.workflow_job_by_id
WHERE repository_full_name = {repo:String}
  AND id IN (SELECT toInt64(arrayJoin({ids:Array(Int64)})))
ORDER BY id, version DESC
LIMIT 1 BY id
