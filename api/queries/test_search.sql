-- Tests whose name, class name or file contains some text (case-insensitive), most run
-- first: how many runs in the window, how many failed or errored, when last seen.
-- Params: repo String, q String, since UInt64 (unix seconds), limit UInt64.
SELECT
    any(file) AS test_file, any(classname) AS test_classname, any(name) AS test_name,
    toUInt64(count()) AS runs,
    toUInt64(countIf(outcome IN ('failed', 'errored'))) AS failures,
    toUInt32(max(reported_at)) AS last_seen_unix
FROM {database}.test_case_by_name
WHERE repository_full_name = {repo:String}
  AND reported_at >= toDateTime({since:UInt64}, 'UTC')
  AND (positionCaseInsensitive(name, {q:String}) > 0
       OR positionCaseInsensitive(classname, {q:String}) > 0
       OR positionCaseInsensitive(file, {q:String}) > 0)
GROUP BY test_id
ORDER BY runs DESC, test_name, test_classname, test_file
LIMIT {limit:UInt64}
