-- One test's runs over a window, one row per job it ran in, newest first: how its runs in the
-- job went (for torchci's status rule, see test_job_tests.sql), with the job's name, commit and
-- branch. Read from test_case_by_name by the name's id (`name_id`, the key's second column: a
-- range read), the name itself compared too; only parsed current report versions count.
-- `classname` and `file` '' mean any; `branch` '' means every branch.
-- Params: repo String, name String, name_id UInt64 (its id, `test_report::name_id`),
-- classname String, file String, since UInt64 (unix seconds), branch String.
SELECT
    job_id,
    job_name,
    workflow_name,
    if(reported_sha != '', reported_sha, job_sha) AS commit_sha,
    head_branch,
    toUInt32(last_reported_at) AS reported_at_unix,
    runs, failures, skips, marked, retries, seconds, failure_message
FROM
(
    SELECT
        job_id,
        any(head_sha) AS reported_sha,
        max(reported_at) AS last_reported_at,
        toUInt64(count()) AS runs,
        toUInt64(countIf(outcome IN ('failed', 'errored'))) AS failures,
        toUInt64(countIf(outcome = 'skipped')) AS skips,
        toUInt64(countIf(outcome != 'passed' OR reruns > 0)) AS marked,
        toInt64(sum(reruns)) AS retries,
        sum(ifNull(time_s, 0.)) AS seconds,
        anyIf(problem_message, outcome IN ('failed', 'errored')) AS failure_message
    FROM
    (
        SELECT job_id, report, report_sha256, case_index, head_sha, reported_at, outcome, reruns, time_s, problem_message
        FROM {database}.test_case_by_name
        WHERE repository_full_name = {repo:String}
          AND name_id = {name_id:UInt64}
          AND name = {name:String}
          AND ({classname:String} = '' OR classname = {classname:String})
          AND ({file:String} = '' OR file = {file:String})
          AND reported_at >= toDateTime({since:UInt64}, 'UTC')
          AND (job_id, report, report_sha256) IN
          (
              SELECT job_id, report, argMax(report_sha256, version)
              FROM {database}.test_report
              WHERE repository_full_name = {repo:String}
                AND job_id IN
                (
                    SELECT job_id FROM {database}.test_case_by_name
                    WHERE repository_full_name = {repo:String}
                      AND name_id = {name_id:UInt64}
                      AND reported_at >= toDateTime({since:UInt64}, 'UTC')
                )
              GROUP BY job_id, report
              HAVING argMax(state, version) = 'parsed'
          )
        LIMIT 1 BY job_id, report, report_sha256, case_index
    )
    GROUP BY job_id
) AS runs
ANY LEFT JOIN
(
    SELECT id AS job_id, name AS job_name, workflow_name, head_sha AS job_sha, head_branch
    FROM {database}.workflow_job
    WHERE repository_full_name = {repo:String}
      AND id IN
      (
          SELECT job_id FROM {database}.test_case_by_name
          WHERE repository_full_name = {repo:String}
            AND name_id = {name_id:UInt64}
            AND reported_at >= toDateTime({since:UInt64}, 'UTC')
      )
    ORDER BY id, version DESC
    LIMIT 1 BY id
) AS jobs USING (job_id)
WHERE {branch:String} = '' OR head_branch = {branch:String}
ORDER BY reported_at_unix DESC, job_id DESC
