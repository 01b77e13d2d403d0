-- When one job and its run were last written by a webhook and by GitHub's API (reconciler,
-- backfill): one row per (kind, via), the newest write of each. From `replication`; the run is
-- the job's (from workflow_job_by_id), so the job page asks all its questions at once.
-- Params: repo String ('owner/name'), job_id Int64.
SELECT kind, via, argMax(origin, version) AS last_origin, max(at) AS last_at
FROM {database}.replication
WHERE repository_full_name = {repo:String}
  AND ((kind = 'job' AND id = {job_id:Int64})
    OR (kind = 'run' AND id IN
        (
            SELECT run_id FROM {database}.workflow_job_by_id
            WHERE repository_full_name = {repo:String} AND id = {job_id:Int64}
        )))
GROUP BY kind, via
ORDER BY kind, via
