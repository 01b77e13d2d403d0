-- Tests that may have been flaky in a window, by test id (`test_report::test_id`): every test
-- that failed, errored or was retried in it (test_failure, ordered by time, so the window is a
-- range read), with how its runs went in each job it ran in — from test_case_by_name, ordered
-- by the ids, so each candidate is a range read found by its name's id. The API decides from
-- these which were flaky — flaky within a job by torchci's status rule, or failed in one job
-- and passed in another on the same commit — and asks for the tests' names
-- (test_flaky_names.sql) and the jobs' names, commits and branches (jobs_by_ids.sql, and
-- report_shas_by_jobs.sql for jobs no webhook told of): a commit is a 40-byte string per row,
-- half of what this query would read.
-- Every version of a re-uploaded report counts (the status rule does not change when a run is
-- counted twice; a report replaced by one that passes is a retry that passed), which spares
-- reading report names and hashes for millions of rows.
-- Params: repo String, since UInt64 (unix seconds).
SELECT
    test_id, job_id,
    toUInt32(max(reported_at)) AS reported_at_unix,
    toUInt64(count()) AS runs,
    toUInt64(countIf(outcome IN ('failed', 'errored'))) AS failures,
    toUInt64(countIf(outcome = 'skipped')) AS skips,
    toUInt64(countIf(outcome != 'passed' OR reruns > 0)) AS marked
FROM {database}.test_case_by_name
WHERE repository_full_name = {repo:String}
  AND name_id IN
  (
      SELECT name_id
      FROM {database}.test_failure
      WHERE repository_full_name = {repo:String}
        AND reported_at >= toDateTime({since:UInt64}, 'UTC')
  )
  AND test_id IN
  (
      SELECT test_id
      FROM {database}.test_failure
      WHERE repository_full_name = {repo:String}
        AND reported_at >= toDateTime({since:UInt64}, 'UTC')
  )
  AND reported_at >= toDateTime({since:UInt64}, 'UTC')
GROUP BY test_id, job_id
ORDER BY test_id, job_id
