//! `hud.test_cases.v1` → `test_case`, `test_case_by_name` and `test_failure` (DDL:
//! `schemas/migrations/0011_test_results.sql`): one record is a page of up to 1,000 cases, each
//! a row. Three tables, each ordered for its readers: by job (the job and commit pages), by test
//! (a test's history), and the failed, errored or retried cases by time (flaky tests).
//!
//! A report's pages share its key and version, so "newest record per key" does not apply
//! (`LATEST_VERSION_WINS = false`): every page is written, and the rows' identity — report,
//! its SHA-256, the case's index — makes a rewritten page replace itself.

use hudstream_runtime::worker::InRecord;
use hudstream_schemas::test_report::{name_id, test_id, TestCase, TestCases};
use hudstream_schemas::wire::RecordType;

use crate::row::{DateTime, IntoColumn};
use crate::writer::Projection;

crate::row! {
    pub struct TestCaseRow {
        repository_full_name: String,
        job_id: i64,
        report: String,
        report_sha256: String,
        case_index: i64,
        version: u64,
        invoking_file: String,
        head_sha: String,
        run_id: i64,
        run_attempt: i64,
        reported_at: DateTime,
        suite: String,
        file: String,
        classname: String,
        name: String,
        test_id: u64,
        line: Option<i64>,
        time_s: Option<f64>,
        outcome: String,
        problem_type: String,
        problem_message: String,
        problem_text: String,
        skip_message: String,
        reruns: i32,
        rerun_message: String,
        truncated: bool,
    }
}

crate::row! {
    pub struct TestCaseByNameRow {
        repository_full_name: String,
        name_id: u64,
        test_id: u64,
        reported_at: DateTime,
        job_id: i64,
        report: String,
        report_sha256: String,
        case_index: i64,
        version: u64,
        name: String,
        classname: String,
        file: String,
        invoking_file: String,
        head_sha: String,
        time_s: Option<f64>,
        outcome: String,
        reruns: i32,
        problem_message: String,
    }
}

crate::row! {
    pub struct TestFailureRow {
        repository_full_name: String,
        reported_at: DateTime,
        job_id: i64,
        report: String,
        report_sha256: String,
        case_index: i64,
        version: u64,
        invoking_file: String,
        head_sha: String,
        file: String,
        classname: String,
        name: String,
        name_id: u64,
        test_id: u64,
        time_s: Option<f64>,
        outcome: String,
        reruns: i32,
        problem_type: String,
        problem_message: String,
        rerun_message: String,
    }
}

/// Whether a case goes into `test_failure`: it failed, errored, or was retried.
pub fn is_failure(case: &TestCase) -> bool {
    case.outcome == "failed" || case.outcome == "errored" || case.reruns > 0
}

/// The rows of one page's cases that `keep` selects, each made by `row`.
fn page_rows<R>(
    record: &InRecord,
    keep: impl Fn(&TestCase) -> bool,
    row: impl Fn(&TestCases, TestCase) -> R,
) -> Result<Vec<R>, String> {
    let mut page = record.decode::<TestCases>()?;
    let cases = std::mem::take(&mut page.cases);
    Ok(cases
        .into_iter()
        .filter(|c| keep(c))
        .map(|c| row(&page, c))
        .collect())
}

/// `test_case`: every case, ordered by job.
pub struct TestCaseProjection;

impl Projection for TestCaseProjection {
    type Row = TestCaseRow;
    const TABLE: &'static str = "test_case";
    const TOPIC: &'static str = TestCases::TOPIC;
    const STAGE: &'static str = "project.test_case";
    const LATEST_VERSION_WINS: bool = false;

    fn rows(&self, record: &InRecord) -> Result<Vec<TestCaseRow>, String> {
        page_rows(
            record,
            |_| true,
            |p, c| TestCaseRow {
                repository_full_name: p.repository_full_name.clone(),
                job_id: p.job_id,
                report: p.report.clone(),
                report_sha256: p.report_sha256.clone(),
                case_index: c.index,
                version: p.version.into_column(),
                invoking_file: p.invoking_file.clone(),
                head_sha: p.head_sha.clone(),
                run_id: p.run_id,
                run_attempt: p.run_attempt,
                reported_at: p.reported_at.into_column(),
                suite: c.suite,
                test_id: test_id(&c.file, &c.classname, &c.name),
                file: c.file,
                classname: c.classname,
                name: c.name,
                line: c.line,
                time_s: c.time_s,
                outcome: c.outcome,
                problem_type: c.problem_type,
                problem_message: c.problem_message,
                problem_text: c.problem_text,
                skip_message: c.skip_message,
                reruns: c.reruns,
                rerun_message: c.rerun_message,
                truncated: c.truncated,
            },
        )
    }
}

/// `test_case_by_name`: every case, ordered by test.
pub struct TestCaseByNameProjection;

impl Projection for TestCaseByNameProjection {
    type Row = TestCaseByNameRow;
    const TABLE: &'static str = "test_case_by_name";
    const TOPIC: &'static str = TestCases::TOPIC;
    const STAGE: &'static str = "project.test_case_by_name";
    const LATEST_VERSION_WINS: bool = false;

    fn rows(&self, record: &InRecord) -> Result<Vec<TestCaseByNameRow>, String> {
        page_rows(
            record,
            |_| true,
            |p, c| TestCaseByNameRow {
                repository_full_name: p.repository_full_name.clone(),
                name_id: name_id(&c.name),
                test_id: test_id(&c.file, &c.classname, &c.name),
                reported_at: p.reported_at.into_column(),
                job_id: p.job_id,
                report: p.report.clone(),
                report_sha256: p.report_sha256.clone(),
                case_index: c.index,
                version: p.version.into_column(),
                name: c.name,
                classname: c.classname,
                file: c.file,
                invoking_file: p.invoking_file.clone(),
                head_sha: p.head_sha.clone(),
                time_s: c.time_s,
                outcome: c.outcome,
                reruns: c.reruns,
                problem_message: c.problem_message,
            },
        )
    }
}

/// `test_failure`: the failed, errored and retried cases, ordered by time.
pub struct TestFailureProjection;

impl Projection for TestFailureProjection {
    type Row = TestFailureRow;
    const TABLE: &'static str = "test_failure";
    const TOPIC: &'static str = TestCases::TOPIC;
    const STAGE: &'static str = "project.test_failure";
    const LATEST_VERSION_WINS: bool = false;

    fn rows(&self, record: &InRecord) -> Result<Vec<TestFailureRow>, String> {
        page_rows(record, is_failure, |p, c| TestFailureRow {
            repository_full_name: p.repository_full_name.clone(),
            reported_at: p.reported_at.into_column(),
            job_id: p.job_id,
            report: p.report.clone(),
            report_sha256: p.report_sha256.clone(),
            case_index: c.index,
            version: p.version.into_column(),
            invoking_file: p.invoking_file.clone(),
            head_sha: p.head_sha.clone(),
            name_id: name_id(&c.name),
            test_id: test_id(&c.file, &c.classname, &c.name),
            file: c.file,
            classname: c.classname,
            name: c.name,
            time_s: c.time_s,
            outcome: c.outcome,
            reruns: c.reruns,
            problem_type: c.problem_type,
            problem_message: c.problem_message,
            rerun_message: c.rerun_message,
        })
    }
}
