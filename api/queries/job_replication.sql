-- When one job and its run were last written by a webhook and by GitHub's API (reconciler,
-- backfill): one row per (kind, via), the newest write of each. From `replication`.
-- Params: repo String ('owner/name'), job_id Int64, run_id Int64.
SELECT kind, via, argMax(origin, version) AS last_origin, max(at) AS last_at
FROM {database}.replication
WHERE repository_full_name = {repo:String}
  AND ((kind = 'job' AND id = {job_id:Int64}) OR (kind = 'run' AND id = {run_id:Int64}))
GROUP BY kind, via
ORDER BY kind, via
