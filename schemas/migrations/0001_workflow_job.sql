-- Jobs, one row per (job, version); the highest version is the job's current state.
-- Topic: hud.workflow_job.v1. Writer: projections/src/workflow_job.rs. Readers: api/queries/*.sql.
--
-- ReplacingMergeTree(version) collapses versions in background merges; readers that need the
-- current state before a merge use `ORDER BY version DESC LIMIT 1 BY ...` or argMax(…, version),
-- not FINAL. ORDER BY starts with (repository, head sha): the HUD grid, the commit page and the
-- PR page all ask for "the jobs of these commits". A job's head sha never changes, so the key
-- still names one job.
-- Timestamps that have not happened yet are stored as 0 (torchci's convention), not NULL.
--
-- `_check_*` columns are integrity checks evaluated by the server on every insert (ClickHouse
-- 18.16 has no CHECK constraints): a row without its key would silently collapse with every
-- other keyless row, so the server refuses it and the projection dead-letters that row alone.
CREATE TABLE IF NOT EXISTS {database}.workflow_job
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
ORDER BY (repository_full_name, head_sha, id);
