-- Issues and their comments (PR conversation comments arrive as issue comments too).
-- Topics: hud.issue.v1, hud.issue_comment.v1. Writers: projections/src/issues.rs.
CREATE TABLE IF NOT EXISTS {database}.issues
(
    repository_full_name String,
    number Int64,
    version UInt64,
    id Int64,
    title String,
    body String,
    state String,
    labels Array(String),
    author_login String,
    author_association String,
    is_pull_request UInt8,
    deleted UInt8,
    created_at DateTime('UTC'),
    updated_at DateTime('UTC'),
    closed_at DateTime('UTC'),
    html_url String,
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR number = 0)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (repository_full_name, number);

CREATE TABLE IF NOT EXISTS {database}.issue_comment
(
    repository_full_name String,
    number Int64,
    id Int64,
    version UInt64,
    body String,
    author_login String,
    author_association String,
    is_pull_request UInt8,
    deleted UInt8,
    created_at DateTime('UTC'),
    updated_at DateTime('UTC'),
    html_url String,
    issue_url String,
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR number = 0 OR id = 0)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (repository_full_name, number, id);
