-- Check runs (GitHub Actions jobs appear here too, as do other apps' checks), by commit.
-- Topic: hud.check_run.v1. Writer: projections/src/check_run.rs.
CREATE TABLE IF NOT EXISTS {database}.check_run
(
    repository_full_name String,
    head_sha String,
    id Int64,
    version UInt64,
    name String,
    status String,
    conclusion String,
    started_at DateTime('UTC'),
    completed_at DateTime('UTC'),
    check_suite_id Int64,
    app_slug String,
    external_id String,
    pull_request_numbers Array(Int64),
    html_url String,
    details_url String,
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR id = 0)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (repository_full_name, head_sha, id);
