-- Test results (issue #16): every test case of every uploaded or fetched report.
--
-- Three tables from one stream (hud.test_cases.v1, pages of a report's cases), each ordered for
-- its readers, and one from the reports' summaries (hud.test_report.v1):
--   test_report        one row per (job, report): its current content (highest version), its
--                      state and counts. Readers count a report's cases only when its current
--                      version is `parsed`; a re-uploaded report supersedes the old one.
--   test_case          every case, ordered by job: the job and commit pages.
--   test_case_by_name  every case, fewer columns, ordered by test — by `name_id` and
--                      `test_id`, 64-bit ids of the name and of (file, classname, name)
--                      (`hudstream_schemas::test_report::test_id`: the first 8 bytes of MD5,
--                      which ClickHouse computes too): a test's history, and the runs of the
--                      tests that failed, read by id rather than by comparing strings.
--   test_failure       the cases that failed, errored or were retried (torchci's
--                      failed_test_runs), ordered by time: flaky tests, failed-test names.
-- A case's identity is (report, report_sha256, case_index); rows of one report version share
-- its version, so a replay or a retried batch rewrites the same rows. Partitioned by month of
-- `reported_at` (a report's rows never span two). The two big tables read a job's or a test's
-- few thousand rows at a time: granules of 1,024 rows (not 8,192) make those reads 8× smaller.
CREATE TABLE IF NOT EXISTS {database}.test_report
(
    repository_full_name String,
    job_id Int64,
    report String,
    version UInt64,
    report_sha256 String,
    invoking_file String,
    head_sha String,
    run_id Int64,
    run_attempt Int64,
    reported_at DateTime('UTC'),
    source String,
    store_key String,
    state String,
    reason String,
    position Int64,
    parts Int32,
    cases Int64,
    passed Int64,
    failed Int64,
    errored Int64,
    skipped Int64,
    rerun Int64,
    truncated Int64,
    suites Int64,
    time_s Float64,
    bytes Int64,
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR job_id = 0 OR report = '')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (repository_full_name, job_id, report);

CREATE TABLE IF NOT EXISTS {database}.test_case
(
    repository_full_name String,
    job_id Int64,
    report String,
    report_sha256 String,
    case_index Int64,
    version UInt64,
    invoking_file String,
    head_sha String,
    run_id Int64,
    run_attempt Int64,
    reported_at DateTime('UTC'),
    suite String,
    file String,
    classname String,
    name String,
    test_id UInt64,
    line Nullable(Int64),
    time_s Nullable(Float64),
    outcome String,
    problem_type String,
    problem_message String,
    problem_text String,
    skip_message String,
    reruns Int32,
    rerun_message String,
    truncated UInt8,
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR job_id = 0 OR report = '')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(reported_at)
ORDER BY (repository_full_name, job_id, report, report_sha256, case_index)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS {database}.test_case_by_name
(
    repository_full_name String,
    name_id UInt64,
    test_id UInt64,
    reported_at DateTime('UTC'),
    job_id Int64,
    report String,
    report_sha256 String,
    case_index Int64,
    version UInt64,
    name String,
    classname String,
    file String,
    invoking_file String,
    head_sha String,
    time_s Nullable(Float64),
    outcome String,
    reruns Int32,
    problem_message String,
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR job_id = 0 OR report = '')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(reported_at)
ORDER BY (repository_full_name, name_id, test_id, reported_at, job_id, report, report_sha256, case_index)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS {database}.test_failure
(
    repository_full_name String,
    reported_at DateTime('UTC'),
    job_id Int64,
    report String,
    report_sha256 String,
    case_index Int64,
    version UInt64,
    invoking_file String,
    head_sha String,
    file String,
    classname String,
    name String,
    name_id UInt64,
    test_id UInt64,
    time_s Nullable(Float64),
    outcome String,
    reruns Int32,
    problem_type String,
    problem_message String,
    rerun_message String,
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR job_id = 0 OR report = '')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(reported_at)
ORDER BY (repository_full_name, reported_at, job_id, report, report_sha256, case_index);
