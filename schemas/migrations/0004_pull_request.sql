-- Pull requests and the label state of PRs and issues.
-- Topics: hud.pull_request.v1, hud.label_event.v1. Writers: projections/src/pull_request.rs.
CREATE TABLE IF NOT EXISTS {database}.pull_request
(
    repository_full_name String,
    number Int64,
    version UInt64,
    id Int64,
    node_id String,
    state String,
    draft UInt8,
    merged UInt8,
    locked UInt8,
    title String,
    body String,
    author_login String,
    author_association String,
    labels Array(String),
    head_sha String,
    head_ref String,
    head_repository_full_name String,
    base_sha String,
    base_ref String,
    merge_commit_sha String,
    created_at DateTime('UTC'),
    updated_at DateTime('UTC'),
    closed_at DateTime('UTC'),
    merged_at DateTime('UTC'),
    html_url String,
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR number = 0)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (repository_full_name, number);

-- One row per (repository, number, label): whether the label is on now (`action` of the latest
-- labeled/unlabeled event). `kind` says whether the number is a PR or an issue; they share the
-- repository's number space.
CREATE TABLE IF NOT EXISTS {database}.label_event
(
    repository_full_name String,
    number Int64,
    label_name String,
    version UInt64,
    kind String,
    action String,
    event_time DateTime('UTC'),
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR number = 0 OR label_name = '')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (repository_full_name, number, label_name);
