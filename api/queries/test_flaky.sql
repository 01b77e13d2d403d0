-- Tests that may have been flaky in a window: every test that failed, errored or was retried
-- in it (test_failure, ordered by time, so the window is a range read), with how its runs went
-- in each job it ran in (from test_case_by_name, ordered by test) and the job's commit, name
-- and branch. The API decides from these which were flaky — flaky within a job by torchci's
-- status rule, or failed in one job and passed in another on the same commit.
-- Only parsed current report versions count. `branch` '' means every branch.
-- Params: repo String, since UInt64 (unix seconds), branch String.
SELECT
    file, classname, name, job_id,
    job_name,
    if(reported_sha != '', reported_sha, job_sha) AS commit_sha,
    head_branch,
    toUInt32(last_reported_at) AS reported_at_unix,
    runs, failures, skips, marked
FROM
(
    SELECT
        file, classname, name, job_id,
        any(head_sha) AS reported_sha,
        max(reported_at) AS last_reported_at,
        toUInt64(count()) AS runs,
        toUInt64(countIf(outcome IN ('failed', 'errored'))) AS failures,
        toUInt64(countIf(outcome = 'skipped')) AS skips,
        toUInt64(countIf(outcome != 'passed' OR reruns > 0)) AS marked
    FROM
    (
        SELECT file, classname, name, job_id, report, report_sha256, case_index, head_sha, reported_at, outcome, reruns
        FROM {database}.test_case_by_name
        WHERE repository_full_name = {repo:String}
          AND (name, classname, file) IN
          (
              SELECT name, classname, file
              FROM {database}.test_failure
              WHERE repository_full_name = {repo:String}
                AND reported_at >= toDateTime({since:UInt64}, 'UTC')
          )
          AND reported_at >= toDateTime({since:UInt64}, 'UTC')
          AND (job_id, report, report_sha256) IN
          (
              SELECT job_id, report, argMax(report_sha256, version)
              FROM {database}.test_report
              WHERE repository_full_name = {repo:String}
                AND reported_at >= toDateTime({since:UInt64}, 'UTC')
              GROUP BY job_id, report
              HAVING argMax(state, version) = 'parsed'
          )
        LIMIT 1 BY job_id, report, report_sha256, case_index
    )
    GROUP BY file, classname, name, job_id
) AS runs
ANY LEFT JOIN
(
    SELECT id AS job_id, name AS job_name, head_sha AS job_sha, head_branch
    FROM {database}.workflow_job
    WHERE repository_full_name = {repo:String}
      AND id IN
      (
          SELECT job_id FROM {database}.test_case_by_name
          WHERE repository_full_name = {repo:String}
            AND (name, classname, file) IN
            (
                SELECT name, classname, file
                FROM {database}.test_failure
                WHERE repository_full_name = {repo:String}
                  AND reported_at >= toDateTime({since:UInt64}, 'UTC')
            )
            AND reported_at >= toDateTime({since:UInt64}, 'UTC')
      )
    ORDER BY id, version DESC
    LIMIT 1 BY id
) AS jobs USING (job_id)
WHERE {branch:String} = '' OR head_branch = {branch:String}
ORDER BY file, classname, name, job_id
