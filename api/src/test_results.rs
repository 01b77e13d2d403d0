//! `GET /api/tests/{owner}/{repo}/jobs/{job_id}`: the tests of one job — per test (file,
//! classname, name) its status over all its runs in the job by torchci's rule (`success`,
//! `skipped`, `flaky`, `failure`; `junit::status`), failed and flaky first, paged — with the
//! counts per status and the job's reports (current versions, refused ones with the reason).
//!
//! The shared pieces of the test views live here too: a test's status from the counts the
//! saved queries aggregate, and a message's first line.

use serde::{Deserialize, Serialize};

use hudstream_junit::status::{from_counts, Counts, Status};
use hudstream_projections::test_report::TestReportRow;
use hudstream_runtime::clickhouse::{ClickHouse, Param};

use crate::error::ApiError;
use crate::job_rows::{instant_of, non_empty};
use crate::params::{self, QueryParams, RawPath, RawQuery};
use crate::queries::{fetch, TEST_JOB_REPORTS, TEST_JOB_TESTS};

/// A test's status as the API names it.
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Success => "passed",
        Status::Skipped => "skipped",
        Status::Flaky => "flaky",
        Status::Failure => "failed",
    }
}

/// The status of a test from the counts of its runs in one job (`failed` for none: a query
/// only answers tests that ran).
pub fn status_of(runs: u64, failures: u64, skips: u64, marked: u64) -> Status {
    from_counts(Counts {
        runs,
        failures,
        skips,
        marked,
    })
    .unwrap_or(Status::Failure)
}

/// Failed first, then flaky, skipped and passed.
pub fn status_rank(status: Status) -> u8 {
    match status {
        Status::Failure => 0,
        Status::Flaky => 1,
        Status::Skipped => 2,
        Status::Success => 3,
    }
}

/// A message's first line, trimmed (the history and lists show no more).
pub fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or("").trim().to_string()
}

/// Tests counted by status.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StatusCounts {
    pub passed: u64,
    pub failed: u64,
    pub flaky: u64,
    pub skipped: u64,
    pub total: u64,
}

impl StatusCounts {
    pub fn add(&mut self, status: Status) {
        self.total += 1;
        match status {
            Status::Success => self.passed += 1,
            Status::Failure => self.failed += 1,
            Status::Flaky => self.flaky += 1,
            Status::Skipped => self.skipped += 1,
        }
    }
}

/// A row of `test_job_tests`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct JobTestRow {
    file: String,
    classname: String,
    name: String,
    invoking_file: String,
    runs: u64,
    failures: u64,
    skips: u64,
    marked: u64,
    retries: i64,
    seconds: f64,
    failure_type: String,
    failure_message: String,
    failure_text: String,
    skipped_because: String,
    retried_because: String,
}

/// How a test failed (its first failing run's failure or error).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestFailure {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub message: String,
    /// The traceback, cut at 16 KiB by the parser.
    pub text: String,
}

/// One test of a job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobTest {
    pub file: String,
    pub classname: String,
    pub name: String,
    /// The report's folder (torchci's invoking file).
    pub invoking_file: String,
    /// `passed`, `failed`, `flaky` or `skipped`: torchci's rule over all its runs in the job.
    pub status: String,
    /// Runs in the job (repeated cases and the same test in several reports each count).
    pub runs: u64,
    /// Runs that failed or errored.
    pub failures: u64,
    /// Retries recorded inside its cases (`<rerun>`, `flakyFailure`, …).
    pub retries: i64,
    pub time_s: f64,
    pub failure: Option<TestFailure>,
    pub skip_message: Option<String>,
    pub rerun_message: Option<String>,
}

/// A report of the job, at its current version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobReport {
    pub report: String,
    pub invoking_file: String,
    /// `parsed`, `refused` (not a readable report: `reason`, at byte `position`) or `gone`.
    pub state: String,
    pub reason: Option<String>,
    pub position: i64,
    pub cases: i64,
    pub passed: i64,
    pub failed: i64,
    pub errored: i64,
    pub skipped: i64,
    pub rerun: i64,
    pub truncated: i64,
    pub bytes: i64,
    pub sha256: String,
    /// `upload` or `artifact`.
    pub source: String,
    pub reported_at: Option<String>,
}

impl From<TestReportRow> for JobReport {
    fn from(r: TestReportRow) -> Self {
        JobReport {
            report: r.report,
            invoking_file: r.invoking_file,
            state: r.state,
            reason: non_empty(r.reason),
            position: r.position,
            cases: r.cases,
            passed: r.passed,
            failed: r.failed,
            errored: r.errored,
            skipped: r.skipped,
            rerun: r.rerun,
            truncated: r.truncated,
            bytes: r.bytes,
            sha256: r.report_sha256,
            source: r.source,
            reported_at: instant_of(r.reported_at),
        }
    }
}

/// The tests of one job.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct JobTests {
    pub repository: String,
    pub job_id: i64,
    /// Distinct tests of the job by status.
    pub summary: StatusCounts,
    pub reports: Vec<JobReport>,
    pub page: u64,
    pub per_page: u64,
    pub has_more: bool,
    /// Failed first, then flaky, skipped and passed; by file, class and name within each.
    pub cases: Vec<JobTest>,
}

/// Every test of a job with its status, failed and flaky first; and the job's reports.
pub async fn job_tests(
    clickhouse: &ClickHouse,
    repository: &str,
    job_id: i64,
) -> Result<(StatusCounts, Vec<JobTest>, Vec<JobReport>), ApiError> {
    let params = [
        ("repo", Param::Str(repository.to_string())),
        ("job_id", Param::Int(job_id)),
    ];
    let (rows, reports) = tokio::join!(
        fetch::<JobTestRow>(clickhouse, &TEST_JOB_TESTS, &params),
        fetch::<TestReportRow>(clickhouse, &TEST_JOB_REPORTS, &params)
    );
    let mut summary = StatusCounts::default();
    let mut tests: Vec<(Status, JobTest)> = rows?
        .into_iter()
        .map(|r| {
            let status = status_of(r.runs, r.failures, r.skips, r.marked);
            summary.add(status);
            let failure = (r.failures > 0).then(|| TestFailure {
                kind: non_empty(r.failure_type),
                message: r.failure_message,
                text: r.failure_text,
            });
            let test = JobTest {
                file: r.file,
                classname: r.classname,
                name: r.name,
                invoking_file: r.invoking_file,
                status: status_name(status).to_string(),
                runs: r.runs,
                failures: r.failures,
                retries: r.retries,
                time_s: r.seconds,
                failure,
                skip_message: non_empty(r.skipped_because),
                rerun_message: non_empty(r.retried_because),
            };
            (status, test)
        })
        .collect();
    // The query orders by file, class and name; a stable sort keeps that within a status.
    tests.sort_by_key(|(status, _)| status_rank(*status));
    let reports = reports?.into_iter().map(JobReport::from).collect();
    Ok((
        summary,
        tests.into_iter().map(|(_, t)| t).collect(),
        reports,
    ))
}

/// The job's tests a request asks for: `page`, `per_page` (100, at most 5000) and `status`
/// (`failed`, `flaky`, `skipped` or `passed`; all when absent).
pub async fn from_request(
    clickhouse: &ClickHouse,
    path: RawPath<(String, String, String)>,
    query: RawQuery,
) -> Result<JobTests, ApiError> {
    let (owner, repo, job_id) = params::path(path)?;
    let query = QueryParams::parse(query, &["page", "per_page", "status"])?;
    let repository = params::repository(&owner, &repo)?;
    let job_id = params::positive("the job id", &job_id)?;
    let paging = query.paging(100, 5000)?;
    let wanted = match query.text("status") {
        None => None,
        Some(s @ ("failed" | "flaky" | "skipped" | "passed")) => Some(s.to_string()),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "status must be failed, flaky, skipped or passed, not {other:?}"
            )))
        }
    };
    let (summary, tests, reports) = job_tests(clickhouse, &repository, job_id).await?;
    if tests.is_empty() && reports.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no test report of job {job_id} in {repository}"
        )));
    }
    let tests = tests
        .into_iter()
        .filter(|t| wanted.as_ref().is_none_or(|w| &t.status == w))
        .collect();
    let (cases, has_more) = paging.slice(tests);
    Ok(JobTests {
        repository,
        job_id,
        summary,
        reports,
        page: paging.page,
        per_page: paging.per_page,
        has_more,
        cases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_by_torchcis_rule_and_their_order() {
        assert_eq!(status_of(2, 0, 0, 0), Status::Success);
        assert_eq!(status_of(3, 2, 0, 2), Status::Flaky, "failed, then passed");
        assert_eq!(status_of(1, 0, 0, 1), Status::Flaky, "passed on a retry");
        assert_eq!(status_of(2, 2, 0, 2), Status::Failure);
        assert_eq!(status_of(2, 1, 1, 2), Status::Skipped);
        assert!(status_rank(Status::Failure) < status_rank(Status::Flaky));
        assert!(status_rank(Status::Flaky) < status_rank(Status::Success));
        assert_eq!(
            first_line("  AssertionError: no\nmore"),
            "AssertionError: no"
        );
    }
}
