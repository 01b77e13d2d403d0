-- torchci's `oot_summary`: per downstream repository, the completed OOT jobs of the last `days`
-- days — successes, failures, all completed (cancelled and timed out count), pass rate and
-- mean duration — worst pass rate first. Each job is first merged from its callbacks field by
-- field (as in oot_jobs_window.sql). Unlike torchci, a job whose in_progress callback was lost
-- is placed in time by its completed_at instead of dropping out of the window.
-- Params: days UInt64.
SELECT
    downstream_repo,
    argMax(downstream_repo_level, last_version) AS downstream_repo_level,
    countIf(ifNull(conclusion, '') = 'success') AS successes,
    countIf(ifNull(conclusion, '') = 'failure') AS failures,
    count() AS completed,
    if(completed = 0, 0, successes / completed) AS pass_rate,
    -- Mean over the jobs that reported both times (a lost in_progress callback is not 0 s);
    -- sumIf/countIf rather than avgIf, which gives nan for an empty group on 18.16.
    sumIf(toInt64(toUInt32(assumeNotNull(completed_at))) - toInt64(toUInt32(assumeNotNull(started_at))),
          isNotNull(started_at) AND isNotNull(completed_at))
      / greatest(countIf(isNotNull(started_at) AND isNotNull(completed_at)), 1) AS avg_duration_s,
    toUInt32(ifNull(max(ifNull(started_at, completed_at)), toDateTime(0, 'UTC'))) AS last_run_unix
FROM
(
    SELECT
        dynamoKey,
        max(version) AS last_version,
        argMax(status, version) AS status,
        argMax(downstream_repo, version) AS downstream_repo,
        ifNull(argMaxIf(downstream_repo_level, version, isNotNull(downstream_repo_level)), '') AS downstream_repo_level,
        argMaxIf(started_at, version, isNotNull(started_at)) AS started_at,
        argMaxIf(completed_at, version, isNotNull(completed_at)) AS completed_at,
        argMaxIf(conclusion, version, isNotNull(conclusion)) AS conclusion
    FROM {database}.oot_workflow_job
    GROUP BY dynamoKey
)
WHERE status = 'completed'
  AND toUInt32(ifNull(started_at, completed_at)) > toUInt32(now()) - {days:UInt64} * 86400
GROUP BY downstream_repo
ORDER BY pass_rate, downstream_repo
