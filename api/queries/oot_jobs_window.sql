-- The OOT jobs of one downstream repository (or every one, with repo '') that started in the
-- last `days` days, or of one upstream PR (upstream_repo '' = any; pr_number 0 = any; with
-- days 0 a PR's jobs are not limited in time), newest first. Each job is merged from its
-- callbacks field by field: every field takes the value of the highest-version callback that
-- set it (processors/src/oot.rs `merge_all`; tests/tests/projections.rs compares the two).
-- The backend matrix (torchci's `oot_backend_dashboard`) and the OOT PR view
-- (`oot_pr_results`) are built from it.
-- A job that never reported a start is placed in time by its completion.
-- Params: repo String, upstream_repo String, pr_number Int64, days UInt64, max_rows UInt64.
SELECT *
FROM
(
    SELECT
        dynamoKey,
        max(version) AS latest_version,
        argMax(status, version) AS status,
        argMax(upstream_repo, version) AS upstream_repo,
        argMax(pr_number, version) AS pr_number,
        argMax(pytorch_head_sha, version) AS pytorch_head_sha,
        argMax(downstream_repo, version) AS downstream_repo,
        argMax(workflow_name, version) AS workflow_name,
        argMax(workflow_run_url, version) AS workflow_run_url,
        argMax(job_name, version) AS job_name,
        argMax(run_id, version) AS run_id,
        argMax(run_attempt, version) AS run_attempt,
        argMaxIf(downstream_repo_level, version, isNotNull(downstream_repo_level)) AS downstream_repo_level,
        argMaxIf(queue_time, version, isNotNull(queue_time)) AS queue_time,
        argMaxIf(execution_time, version, isNotNull(execution_time)) AS execution_time,
        toUInt32(ifNull(argMaxIf(started_at, version, isNotNull(started_at)), toDateTime(0, 'UTC'))) AS started_unix,
        toUInt32(ifNull(argMaxIf(completed_at, version, isNotNull(completed_at)), toDateTime(0, 'UTC'))) AS completed_unix,
        argMaxIf(conclusion, version, isNotNull(conclusion)) AS conclusion,
        argMaxIf(passed_tests, version, isNotNull(passed_tests)) AS passed_tests,
        argMaxIf(failed_tests, version, isNotNull(failed_tests)) AS failed_tests,
        argMaxIf(skipped_tests, version, isNotNull(skipped_tests)) AS skipped_tests,
        argMaxIf(total_tests, version, isNotNull(total_tests)) AS total_tests,
        argMaxIf(artifact_url, version, isNotNull(artifact_url)) AS artifact_url
    FROM
    (
        -- Filtered before merging: the merged columns' aliases shadow the stored ones.
        SELECT *
        FROM {database}.oot_workflow_job
        WHERE ({repo:String} = '' OR downstream_repo = {repo:String})
          AND ({upstream_repo:String} = '' OR upstream_repo = {upstream_repo:String})
          AND ({pr_number:Int64} = 0 OR pr_number = {pr_number:Int64})
    )
    GROUP BY dynamoKey
)
WHERE if(started_unix = 0, completed_unix, started_unix) > toUInt32(now()) - {days:UInt64} * 86400
   OR ({pr_number:Int64} != 0 AND {days:UInt64} = 0)
ORDER BY if(started_unix = 0, completed_unix, started_unix) DESC, dynamoKey
LIMIT {max_rows:UInt64}
