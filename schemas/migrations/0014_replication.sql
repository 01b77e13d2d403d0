-- `replication`: when each job and run was last written by a webhook (via = 'webhook') and by
-- GitHub's API (via = 'api': the reconciler, a backfill), from `hud.replication.v1`. The
-- newest write of each kind wins (version: the moment). The job page shows both, so a row that
-- no webhook has touched for long, or that only the API keeps alive, is visible.
CREATE TABLE IF NOT EXISTS {database}.replication
(
    repository_full_name String,
    kind String,
    id Int64,
    via String,
    version UInt64,
    origin String,
    at DateTime('UTC'),
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR kind = '' OR via = '')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (repository_full_name, kind, id, via);
