-- Dr.CI's "the same tests failed elsewhere" evidence: per test id (file, class and name), the
-- other jobs in a window (by report time) in which that test failed or errored — jobs of the
-- PR itself and commits of its heads left out. From test_failure (the failed, errored and
-- retried cases, ordered by time). Params: repo String, test_ids Array(UInt64), exclude_shas
-- Array(String), exclude_jobs Array(Int64), since UInt64, until UInt64 (unix seconds).
SELECT test_id, uniqExact(job_id) AS jobs, uniqExact(head_sha) AS commits
FROM {database}.test_failure
WHERE repository_full_name = {repo:String}
  AND reported_at >= toDateTime({since:UInt64}, 'UTC')
  AND reported_at <= toDateTime({until:UInt64}, 'UTC')
  AND test_id IN (SELECT toUInt64(arrayJoin({test_ids:Array(UInt64)})))
  AND outcome IN ('failed', 'errored')
  AND head_sha NOT IN (SELECT arrayJoin({exclude_shas:Array(String)}))
  AND job_id NOT IN (SELECT toInt64(arrayJoin({exclude_jobs:Array(Int64)})))
GROUP BY test_id
ORDER BY test_id
