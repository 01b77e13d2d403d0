-- Jobs by id (issue #18): the same rows as workflow_job, keyed for looking one job up. The job
-- page asks for one job by (repository, id); workflow_job is ordered by (repository, head sha,
-- id) for the grid, so an id alone scans the repository's part of it (121 ms at a million
-- jobs). Same columns and checks as workflow_job, so the job page reads it as the same row.
-- Topic: hud.workflow_job.v1. Writer: projections/src/workflow_job.rs
-- (`WorkflowJobByIdProjection`). Readers: api/queries/job_by_id.sql, jobs_by_ids.sql.
-- A deployment that upgrades gets an empty table, and the new projection reads the topic from
-- its start (a new consumer group): older jobs appear as it catches up; `hudstream replay
-- workflow_job_by_id` (or `--from-archive`) rebuilds it like any other table.
CREATE TABLE IF NOT EXISTS {database}.workflow_job_by_id
(
    repository_full_name String,
    id Int64,
    version UInt64,
    run_id Int64,
    run_attempt Int64,
    node_id String,
    head_sha String,
    head_branch String,
    workflow_name String,
    name String,
    status String,
    conclusion String,
    created_at DateTime('UTC'),
    started_at DateTime('UTC'),
    completed_at DateTime('UTC'),
    queue_time_s Nullable(Float64),
    duration_s Nullable(Float64),
    labels Array(String),
    runner_id Int64,
    runner_name String,
    runner_group_id Int64,
    runner_group_name String,
    steps Nested(
        number Int64,
        name String,
        status String,
        conclusion String,
        started_at DateTime('UTC'),
        completed_at DateTime('UTC')
    ),
    url String,
    html_url String,
    run_url String,
    check_run_url String,
    dynamoKey String ALIAS concat(repository_full_name, '/', toString(id)),
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR id = 0)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (repository_full_name, id);
