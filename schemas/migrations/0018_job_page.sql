-- The job page's row (issue #18): each version of a job as one JSON document — the row of
-- workflow_job (`WorkflowJobRow`, as `JSONEachRow` writes it) — keyed by (repository, id), in
-- granules of 256 rows. A point lookup in workflow_job_by_id read one 8,192-row granule of each
-- of its 32 columns in every part (24–33 k rows, 12–16 MiB, 11–20 ms on the server at a
-- million jobs); the server's time grows with the columns a lookup opens, not with the bytes
-- (the same lookup with 256-row granules still took 11–14 ms, with 8 columns 4 ms). Here a
-- lookup opens four columns and reads ~500 rows: 2 ms.
-- Topic: hud.workflow_job.v1. Writer: projections/src/workflow_job.rs (`JobPageProjection`).
-- Reader: api/queries/job_page.sql (the API parses `document` back into the row).
-- A deployment that upgrades gets an empty table, and the new projection reads the topic from
-- its start (a new consumer group). Until it has caught up the job page reads a job it lacks
-- from workflow_job_by_id, but a job it holds at an older version is shown at that version:
-- fill it with `hudstream replay job_page` (or `--from-archive`) before the API rolls out.
CREATE TABLE IF NOT EXISTS {database}.job_page
(
    repository_full_name String,
    id Int64,
    version UInt64,
    document String,
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR id = 0)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (repository_full_name, id)
SETTINGS index_granularity = 256;
