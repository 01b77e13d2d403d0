-- The slowest tests of a window: per test, its mean and longest duration over the runs that
-- passed (a failure's time says little), newest report versions included as they come (a
-- superseded report's durations are as real as its successor's). Params: repo String,
-- since UInt64 (unix seconds), limit UInt64.
SELECT
    file, classname, name,
    toUInt64(count()) AS runs,
    avg(ifNull(time_s, 0.)) AS mean_s,
    max(ifNull(time_s, 0.)) AS max_s,
    toUInt32(max(reported_at)) AS last_seen_unix
FROM {database}.test_case_by_name
WHERE repository_full_name = {repo:String}
  AND reported_at >= toDateTime({since:UInt64}, 'UTC')
  AND outcome = 'passed'
  AND isNotNull(time_s)
GROUP BY file, classname, name
ORDER BY mean_s DESC, runs DESC, name
LIMIT {limit:UInt64}
