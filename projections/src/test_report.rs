//! `hud.test_report.v1` → `test_report` (DDL: `schemas/migrations/0011_test_results.sql`).
//! One row per (job, report), the highest version winning: the latest upload of a report name.
//! Readers count a report's cases (`test_case*`) only when this row says `parsed`.

use hudstream_schemas::test_report::TestReport;

use crate::row::DateTime;

crate::row! {
    pub struct TestReportRow from TestReport as r {
        repository_full_name: String,
        job_id: i64,
        report: String,
        version: u64,
        report_sha256: String,
        invoking_file: String,
        head_sha: String,
        run_id: i64,
        run_attempt: i64,
        reported_at: DateTime,
        source: String,
        store_key: String,
        state: String,
        reason: String,
        position: i64,
        parts: i32,
        cases: i64,
        passed: i64,
        failed: i64,
        errored: i64,
        skipped: i64,
        rerun: i64,
        truncated: i64,
        suites: i64,
        time_s: f64,
        bytes: i64,
    }
}

crate::avro_projection! {
    pub struct TestReportProjection: TestReport => TestReportRow {
        table: "test_report",
    }
}
