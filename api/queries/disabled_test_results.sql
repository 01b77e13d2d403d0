-- Recent results of some tests by name, per (name, classname): runs that passed cleanly
-- (green) and runs that failed, errored or needed a retry (red) — what torchci's re-enable rule
-- counts — and when last seen. Found by the names' ids (`test_report::name_id`), the names
-- compared too. Params: repo String, names Array(String), name_ids Array(UInt64),
-- since UInt64 (unix seconds).
SELECT
    name, classname,
    toUInt64(countIf(outcome = 'passed' AND reruns = 0)) AS green,
    toUInt64(countIf(outcome IN ('failed', 'errored') OR reruns > 0)) AS red,
    toUInt64(countIf(outcome = 'skipped')) AS skipped,
    toUInt32(max(reported_at)) AS last_seen_unix
FROM
(
    SELECT name, classname, job_id, report, report_sha256, case_index, outcome, reruns, reported_at
    FROM {database}.test_case_by_name
    WHERE repository_full_name = {repo:String}
      AND name_id IN (SELECT arrayJoin({name_ids:Array(UInt64)}))
      AND name IN (SELECT arrayJoin({names:Array(String)}))
      AND reported_at >= toDateTime({since:UInt64}, 'UTC')
    LIMIT 1 BY job_id, report, report_sha256, case_index
)
GROUP BY name, classname
ORDER BY name, classname
