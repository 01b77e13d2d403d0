-- For the HUD grid: per failed job of a page (the grid asks after reading its cells, for the
-- failed ones only: a few percent of the page), the tests that failed in it on every run (torchci's
-- "failure" status; a test that also passed is flaky and does not explain a red cell): how
-- many, and the first by name, to name in the cell. Only parsed current report versions count.
-- A case row counts once however many unmerged copies of it the table holds (distinct
-- (report, report_sha256, case_index), as in commit_failed_tests.sql: one subquery level fewer
-- than a `LIMIT 1 BY` under the GROUP BY, which doubled the server's time on 18.16).
-- Params: repo String, job_ids Array(Int64).
SELECT
    job_id,
    toUInt64(count()) AS failed_tests,
    min(test) AS first_failed_test
FROM
(
    SELECT job_id, concat(classname, '::', name) AS test
    FROM {database}.test_case
    WHERE repository_full_name = {repo:String}
      AND job_id IN
      (SELECT toInt64(arrayJoin({job_ids:Array(Int64)})))
      AND (job_id, test_id) IN
      (
          SELECT job_id, test_id
          FROM {database}.test_failure
          WHERE repository_full_name = {repo:String}
            AND outcome IN ('failed', 'errored')
            AND job_id IN
            (SELECT toInt64(arrayJoin({job_ids:Array(Int64)})))
      )
      AND (job_id, report, report_sha256) IN
      (
          SELECT job_id, report, argMax(report_sha256, version)
          FROM {database}.test_report
          WHERE repository_full_name = {repo:String}
            AND job_id IN
            (SELECT toInt64(arrayJoin({job_ids:Array(Int64)})))
          GROUP BY job_id, report
          HAVING argMax(state, version) = 'parsed'
      )
    GROUP BY job_id, file, classname, name
    HAVING uniqExactIf(report, report_sha256, case_index, outcome IN ('failed', 'errored'))
         = uniqExact(report, report_sha256, case_index)
)
GROUP BY job_id
ORDER BY job_id
