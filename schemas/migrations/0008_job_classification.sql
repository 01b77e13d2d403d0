-- Log classifications of jobs: the verdict of the rule engine over a job's log (issue #6).
-- One row per job; a newer verdict (a new ruleset, a re-classification) has a higher version.
-- Kept apart from workflow_job so that no job event can erase a verdict; readers join on
-- (repository_full_name, job_id). `rule` is empty for "no match".
CREATE TABLE IF NOT EXISTS {database}.job_classification
(
    repository_full_name String,
    job_id Int64,
    version UInt64,
    head_sha String,
    rule String,
    line String,
    line_number Int64,
    captures Array(String),
    context Array(String),
    ruleset_hash String,
    engine_version String,
    log_location String,
    classified_at DateTime('UTC'),
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR job_id = 0)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (repository_full_name, job_id);
