-- Workflow runs, one row per (run, version); a re-run keeps its id and raises run_attempt.
-- Topic: hud.workflow_run.v1. Writer: projections/src/workflow_run.rs.
-- Keyed by (repository, head sha, id) for the commit page, whose startup failures are runs
-- that never started a job. See 0001 for the conventions (epoch 0 = not yet, _check_*).
CREATE TABLE IF NOT EXISTS {database}.workflow_run
(
    repository_full_name String,
    head_sha String,
    id Int64,
    version UInt64,
    run_attempt Int64,
    run_number Int64,
    workflow_id Int64,
    check_suite_id Int64,
    name String,
    display_title String,
    path String,
    event String,
    status String,
    conclusion String,
    head_branch String,
    head_repository_full_name String,
    pull_request_numbers Array(Int64),
    actor_login String,
    triggering_actor_login String,
    head_commit_message String,
    head_commit_timestamp DateTime('UTC'),
    head_commit_author_name String,
    head_commit_author_email String,
    created_at DateTime('UTC'),
    updated_at DateTime('UTC'),
    run_started_at DateTime('UTC'),
    url String,
    html_url String,
    jobs_url String,
    logs_url String,
    previous_attempt_url String,
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR id = 0)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (repository_full_name, head_sha, id);
