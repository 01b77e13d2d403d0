-- Every dead letter of every stage, for browsing and dashboards. The topic hud.dead_letters.v1
-- stays the record of truth (full bytes, `hudstream dead-letters list|redrive`); here a payload
-- is cut to its first 1 MiB so no row is too large for the server.
-- Topic: hud.dead_letters.v1. Writer: projections/src/dead_letter.rs.
--
-- One row per (stage, source record). A record dead-lettered twice (a batch retried after a
-- crash) is one row; version prefers the earliest dead letter, so a replay keeps the same row.
CREATE TABLE IF NOT EXISTS {database}.dead_letter
(
    stage String,
    source_topic String,
    source_partition Int32,
    source_offset Int64,
    version UInt64,
    reason String,
    key String,
    payload String,
    payload_size UInt64,
    payload_truncated UInt8,
    github_event String,
    github_delivery String,
    dead_lettered_at DateTime('UTC'),
    headers Nested(
        name String,
        value String
    ),
    _inserted_at DateTime MATERIALIZED now()
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (stage, source_topic, source_partition, source_offset);
