-- The slowest tests of a window: per test, its mean and longest duration over the runs that
-- passed (a failure's time says little), every report version included (a superseded
-- report's durations are as real as its successor's). Grouped by the test's id: one number
-- to compare per row rather than three strings. Params: repo String, since UInt64 (unix
-- seconds), limit UInt64.
SELECT
    any(file) AS test_file, any(classname) AS test_classname, any(name) AS test_name,
    toUInt64(count()) AS runs,
    avg(ifNull(time_s, 0.)) AS mean_s,
    max(ifNull(time_s, 0.)) AS max_s,
    toUInt32(max(reported_at)) AS last_seen_unix
FROM {database}.test_case_by_name
WHERE repository_full_name = {repo:String}
  AND reported_at >= toDateTime({since:UInt64}, 'UTC')
  AND outcome = 'passed'
  AND isNotNull(time_s)
GROUP BY test_id
ORDER BY mean_s DESC, runs DESC, test_name
LIMIT {limit:UInt64}
