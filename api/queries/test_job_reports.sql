-- The reports of one job, each at its current version (the latest upload of its name), with
-- what became of it: parsed with its counts, refused with the reason, or gone.
-- Params: repo String, job_id Int64.
SELECT
    repository_full_name, job_id, report, version, report_sha256, invoking_file, head_sha,
    run_id, run_attempt, reported_at, source, store_key, state, reason, position, parts, cases,
    passed, failed, errored, skipped, rerun, truncated, suites, time_s, bytes
FROM {database}.test_report
WHERE repository_full_name = {repo:String} AND job_id = {job_id:Int64}
ORDER BY report, version DESC
LIMIT 1 BY report
