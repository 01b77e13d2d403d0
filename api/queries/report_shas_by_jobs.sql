-- The commit each job's reports named (the upload's `head_sha`, or the artifact's run's), for
-- jobs no webhook told of. Params: repo String, ids Array(Int64).
SELECT job_id, any(head_sha) AS reported_sha
FROM {database}.test_report
WHERE repository_full_name = {repo:String}
  AND job_id IN (SELECT toInt64(arrayJoin({ids:Array(Int64)})))
  AND head_sha != ''
GROUP BY job_id
ORDER BY job_id
