-- Out-of-tree CI results: every distinct callback of every OOT job, not one merged row.
-- Topic: hud.oot_result.v1. Writer: projections/src/oot.rs. Reader: api/queries/oot_jobs_for_pr.sql.
--
-- torchci merges callbacks in arrival order (DynamoDB SET), which depends on delivery order.
-- Here a job's state is merged when read, field by field, from the highest-version callback
-- that set the field: `argMaxIf(field, version, isNotNull(field))` (processors/src/oot.rs has the
-- same rule as `merge_all`). So fields torchci sets "only if truthy/not null" are Nullable, and
-- `version` is part of ORDER BY: identical callbacks (same content, same version) collapse,
-- distinct ones are all kept.
CREATE TABLE IF NOT EXISTS {database}.oot_workflow_job
(
    upstream_repo String,
    pr_number Int64,
    dynamoKey String,
    version UInt64,
    status String,
    downstream_repo String,
    pytorch_head_sha String,
    delivery_id String,
    workflow_run_url String,
    workflow_name String,
    job_name String,
    check_run_id String,
    run_id String,
    run_attempt Int64,
    event_type String,
    downstream_repo_level Nullable(String),
    queue_time Nullable(Float64),
    execution_time Nullable(Float64),
    started_at Nullable(DateTime('UTC')),
    completed_at Nullable(DateTime('UTC')),
    conclusion Nullable(String),
    passed_tests Nullable(Int64),
    failed_tests Nullable(Int64),
    skipped_tests Nullable(Int64),
    total_tests Nullable(Int64),
    artifact_url Nullable(String),
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(dynamoKey = '' OR downstream_repo = '')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (upstream_repo, pr_number, dynamoKey, version);
