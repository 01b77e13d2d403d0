-- What pushes tell us: every commit on every branch, and where each ref points now.
-- Topics: hud.commit.v1, hud.ref_update.v1. Writers: projections/src/push.rs.
--
-- `commit`: one row per (repository, ref, sha). The HUD grid lists a branch's commits newest
-- first (WHERE repository_full_name = … AND ref = … ORDER BY timestamp DESC); the same sha on
-- two branches is two rows. `is_head` marks the commit a push moved the ref to.
CREATE TABLE IF NOT EXISTS {database}.commit
(
    repository_full_name String,
    ref String,
    sha String,
    version UInt64,
    branch String,
    is_head UInt8,
    is_distinct UInt8,
    message String,
    timestamp DateTime('UTC'),
    pushed_at DateTime('UTC'),
    author_name String,
    author_email String,
    author_username String,
    committer_name String,
    committer_email String,
    url String,
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR ref = '' OR sha = '')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (repository_full_name, ref, sha);

-- `ref_update`: the latest push to each ref (version: push time first), so a branch's head and
-- whether it was force-pushed are one lookup.
CREATE TABLE IF NOT EXISTS {database}.ref_update
(
    repository_full_name String,
    ref String,
    version UInt64,
    before String,
    after String,
    created UInt8,
    deleted UInt8,
    forced UInt8,
    commit_count Int64,
    pusher_name String,
    pushed_at DateTime('UTC'),
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR ref = '')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (repository_full_name, ref);
