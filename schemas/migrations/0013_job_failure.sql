-- Failed jobs and reruns that passed (issue #17): every completed version of a job that ended
-- failure, timed_out or cancelled, and of a rerun (attempt > 1) that passed — the few percent
-- of workflow_job's rows that trunk health (red rate, broken trunk) reads. Keyed like
-- workflow_job, in granules of 1,024 rows (a commit's failures are a few rows, not the 8,192
-- of a default granule). Topic: hud.workflow_job.v1. Writer: projections/src/job_failure.rs.
-- Readers: api/queries/trunk_red.sql, trunk_failing_jobs.sql.
CREATE TABLE IF NOT EXISTS {database}.job_failure
(
    repository_full_name String,
    head_sha String,
    id Int64,
    version UInt64,
    run_id Int64,
    run_attempt Int64,
    head_branch String,
    workflow_name String,
    name String,
    conclusion String,
    created_at DateTime('UTC'),
    completed_at DateTime('UTC'),
    runner_name String,
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR id = 0)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (repository_full_name, head_sha, id)
SETTINGS index_granularity = 1024;
