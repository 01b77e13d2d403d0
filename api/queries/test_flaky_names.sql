-- The names of the tests that failed, errored or were retried in a window, by test id: what
-- the flaky tests' ids stand for. Params: repo String, since UInt64 (unix seconds).
SELECT test_id, any(file) AS test_file, any(classname) AS test_classname, any(name) AS test_name
FROM {database}.test_failure
WHERE repository_full_name = {repo:String}
  AND reported_at >= toDateTime({since:UInt64}, 'UTC')
GROUP BY test_id
ORDER BY test_id
