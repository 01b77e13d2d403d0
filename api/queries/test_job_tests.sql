-- The tests of one job: per test (file, classname, name), how its runs in the job went, for
-- torchci's status rule (applied in `junit::status::from_counts`): `runs`, `failures` (failed
-- or errored), `skips`, `marked` (anything but a clean pass: failed, errored, skipped or
-- retried). Only each report's current version counts, and only once it was parsed
-- (test_report); rows are deduplicated by their identity first, so a page written twice
-- counts once. Params: repo String, job_id Int64.
SELECT
    file,
    classname,
    name,
    any(invoking_file) AS test_invoking_file,
    toUInt64(count()) AS runs,
    toUInt64(countIf(outcome IN ('failed', 'errored'))) AS failures,
    toUInt64(countIf(outcome = 'skipped')) AS skips,
    toUInt64(countIf(outcome != 'passed' OR reruns > 0)) AS marked,
    toInt64(sum(reruns)) AS retries,
    sum(ifNull(time_s, 0.)) AS seconds,
    anyIf(problem_type, outcome IN ('failed', 'errored')) AS failure_type,
    anyIf(problem_message, outcome IN ('failed', 'errored')) AS failure_message,
    anyIf(problem_text, outcome IN ('failed', 'errored')) AS failure_text,
    anyIf(skip_message, outcome = 'skipped') AS skipped_because,
    anyIf(rerun_message, reruns > 0) AS retried_because
FROM
(
    SELECT
        report, report_sha256, case_index, file, classname, name, invoking_file, outcome,
        reruns, time_s, problem_type, problem_message, problem_text, skip_message, rerun_message
    FROM {database}.test_case
    WHERE repository_full_name = {repo:String}
      AND job_id = {job_id:Int64}
      AND (report, report_sha256) IN
      (
          SELECT report, argMax(report_sha256, version)
          FROM {database}.test_report
          WHERE repository_full_name = {repo:String} AND job_id = {job_id:Int64}
          GROUP BY report
          HAVING argMax(state, version) = 'parsed'
      )
    LIMIT 1 BY report, report_sha256, case_index
)
GROUP BY file, classname, name
ORDER BY file, classname, name
