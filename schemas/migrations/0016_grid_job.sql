-- The grid's jobs (issue #18): each job as a grid cell needs it, keyed and stored for reading
-- the jobs of 50 commits. workflow_job is ordered by (repository, head sha, id) too, but a
-- commit's ~800 rows (400 jobs × their versions) are a tenth of one of its 8,192-row granules,
-- and its rows are wide (steps, labels, runner): a page of 50 commits read ~1.1 M rows and
-- 330–390 MiB of it at a million jobs (the server's own log), the same at ten million. Here a
-- granule is 1,024 rows of eleven narrow columns. Same key and version rule as workflow_job.
-- Topic: hud.workflow_job.v1. Writer: projections/src/workflow_job.rs (`GridJobProjection`).
-- Readers: api/queries/grid_jobs.sql, hot_window_jobs.sql.
-- A deployment that upgrades gets an empty table, and the new projection reads the topic from
-- its start (a new consumer group): older commits' cells appear as it catches up; `hudstream
-- replay grid_job` (or `--from-archive`) rebuilds it like any other table.
CREATE TABLE IF NOT EXISTS {database}.grid_job
(
    repository_full_name String,
    head_sha String,
    id Int64,
    version UInt64,
    run_attempt Int64,
    workflow_name String,
    name String,
    status String,
    conclusion String,
    duration_s Nullable(Float64),
    html_url String,
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR id = 0)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (repository_full_name, head_sha, id)
SETTINGS index_granularity = 1024;
