-- The OOT jobs of one upstream PR, each merged from its callbacks field by field: every field
-- takes the value of the highest-version callback that set it — processors/src/oot.rs
-- `merge_all` in SQL (tests/tests/projections.rs compares the two). Equal versions mean equal
-- content, so argMax has no ties to break. Params: upstream_repo String, pr_number Int64.
SELECT
    dynamoKey,
    max(version) AS latest_version,
    argMax(status, version) AS status,
    argMax(downstream_repo, version) AS downstream_repo,
    argMax(workflow_name, version) AS workflow_name,
    argMax(job_name, version) AS job_name,
    argMax(run_attempt, version) AS run_attempt,
    argMaxIf(downstream_repo_level, version, isNotNull(downstream_repo_level)) AS downstream_repo_level,
    argMaxIf(queue_time, version, isNotNull(queue_time)) AS queue_time,
    argMaxIf(execution_time, version, isNotNull(execution_time)) AS execution_time,
    argMaxIf(started_at, version, isNotNull(started_at)) AS started_at,
    argMaxIf(completed_at, version, isNotNull(completed_at)) AS completed_at,
    argMaxIf(conclusion, version, isNotNull(conclusion)) AS conclusion,
    argMaxIf(passed_tests, version, isNotNull(passed_tests)) AS passed_tests,
    argMaxIf(failed_tests, version, isNotNull(failed_tests)) AS failed_tests,
    argMaxIf(skipped_tests, version, isNotNull(skipped_tests)) AS skipped_tests,
    argMaxIf(total_tests, version, isNotNull(total_tests)) AS total_tests,
    argMaxIf(artifact_url, version, isNotNull(artifact_url)) AS artifact_url
FROM {database}.oot_workflow_job
WHERE upstream_repo = {upstream_repo:String} AND pr_number = {pr_number:Int64}
GROUP BY dynamoKey
ORDER BY dynamoKey
