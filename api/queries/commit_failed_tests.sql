-- The tests that failed, errored or were retried in the jobs of one commit, per (job, test),
-- with how all their runs in that job went (for torchci's status rule): the commit page's
-- failed and flaky tests. The candidates come from test_failure, their other runs from
-- test_case (ordered by job). Only parsed current report versions count. The commit's job ids
-- come from grid_job (1,024-row granules: workflow_job's 8,192-row ones read ~115 k rows for a
-- commit's ~800, three times).
-- A case row is counted once however many unmerged copies of it the table holds: distinct
-- (report, report_sha256, case_index), in one GROUP BY (a `LIMIT 1 BY` in a subquery under it
-- answered the same at twice the server's time on 18.16: 15 vs 7 ms per commit).
-- Params: repo String, sha String.
SELECT
    job_id, file, classname, name,
    toUInt64(uniqExact(report, report_sha256, case_index)) AS runs,
    toUInt64(uniqExactIf(report, report_sha256, case_index, outcome IN ('failed', 'errored'))) AS failures,
    toUInt64(uniqExactIf(report, report_sha256, case_index, outcome = 'skipped')) AS skips,
    toUInt64(uniqExactIf(report, report_sha256, case_index, outcome != 'passed' OR reruns > 0)) AS marked,
    anyIf(problem_message, outcome IN ('failed', 'errored')) AS failure_message
FROM {database}.test_case
WHERE repository_full_name = {repo:String}
  AND job_id IN
  (
      SELECT id FROM {database}.grid_job
      WHERE repository_full_name = {repo:String} AND head_sha = {sha:String}
  )
  AND (job_id, test_id) IN
  (
      SELECT job_id, test_id
      FROM {database}.test_failure
      WHERE repository_full_name = {repo:String}
        AND job_id IN
        (
            SELECT id FROM {database}.grid_job
            WHERE repository_full_name = {repo:String} AND head_sha = {sha:String}
        )
  )
  AND (job_id, report, report_sha256) IN
  (
      SELECT job_id, report, argMax(report_sha256, version)
      FROM {database}.test_report
      WHERE repository_full_name = {repo:String}
        AND job_id IN
        (
            SELECT id FROM {database}.grid_job
            WHERE repository_full_name = {repo:String} AND head_sha = {sha:String}
        )
      GROUP BY job_id, report
      HAVING argMax(state, version) = 'parsed'
  )
GROUP BY job_id, file, classname, name
ORDER BY job_id, file, classname, name
