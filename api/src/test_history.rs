//! `GET /api/tests/{owner}/{repo}/history?name=&classname=&file=&branch=&days=`: one test's
//! runs, one per job it ran in, newest first — job, job name, commit, branch, time, status by
//! torchci's rule over its runs in the job, duration, the first line of its failure — and its
//! fail and flaky rates over the window (failed or flaky jobs among the jobs it ran in).

use serde::{Deserialize, Serialize};

use hudstream_junit::status::Status;
use hudstream_runtime::clickhouse::{ClickHouse, Param};
use hudstream_schemas::test_report::name_id;

use crate::error::ApiError;
use crate::job_rows::{column_name, non_empty, unix_instant};
use crate::params::{self, QueryParams, RawPath, RawQuery};
use crate::queries::{fetch, TEST_HISTORY};
use crate::test_results::{first_line, status_name, status_of, StatusCounts};

/// The longest window a history covers, in days.
pub const MAX_DAYS: u64 = 90;
/// The longest test name, class name or file asked about.
const MAX_NAME: usize = 1024;

/// A row of `test_history`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct HistoryRow {
    job_id: i64,
    job_name: String,
    workflow_name: String,
    commit_sha: String,
    head_branch: String,
    reported_at_unix: u32,
    runs: u64,
    failures: u64,
    skips: u64,
    marked: u64,
    retries: i64,
    seconds: f64,
    failure_message: String,
}

/// The test a history is of: its name, and the class and file when given.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestId {
    pub name: String,
    pub classname: Option<String>,
    pub file: Option<String>,
}

/// The test in one job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestRun {
    pub job_id: i64,
    /// `"{workflow} / {job}"`, when the job is known.
    pub job_name: Option<String>,
    pub sha: Option<String>,
    pub branch: Option<String>,
    /// When its report was received.
    pub time: Option<String>,
    /// `passed`, `failed`, `flaky` or `skipped`.
    pub status: String,
    pub runs: u64,
    pub retries: i64,
    pub duration_s: f64,
    /// The first line of its failure's message.
    pub message: Option<String>,
}

/// A test's history.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct TestHistory {
    pub repository: String,
    pub test: TestId,
    pub branch: Option<String>,
    pub days: u64,
    /// Jobs it ran in, by status.
    pub jobs: StatusCounts,
    /// Failed jobs among the jobs it ran in (0 when it did not run).
    pub fail_rate: f64,
    /// Flaky jobs among the jobs it ran in.
    pub flaky_rate: f64,
    pub page: u64,
    pub per_page: u64,
    pub has_more: bool,
    /// Newest first.
    pub runs: Vec<TestRun>,
}

/// A required text parameter: present, not empty, not too long.
pub fn required_text(query: &QueryParams, name: &str) -> Result<String, ApiError> {
    let text = query
        .text(name)
        .ok_or_else(|| ApiError::BadRequest(format!("{name} is required")))?;
    optional_text(Some(text), name)?
        .ok_or_else(|| ApiError::BadRequest(format!("{name} must not be empty")))
}

/// An optional text parameter: absent or empty means "any".
pub fn optional_text(text: Option<&str>, name: &str) -> Result<Option<String>, ApiError> {
    match text {
        None | Some("") => Ok(None),
        Some(t) if t.len() > MAX_NAME => Err(ApiError::BadRequest(format!(
            "{name} is {} bytes long; at most {MAX_NAME}",
            t.len()
        ))),
        Some(t) if t.chars().any(char::is_control) => Err(ApiError::BadRequest(format!(
            "{name} contains control characters"
        ))),
        Some(t) => Ok(Some(t.to_string())),
    }
}

/// The history a request asks for.
pub async fn from_request(
    clickhouse: &ClickHouse,
    path: RawPath<(String, String)>,
    query: RawQuery,
) -> Result<TestHistory, ApiError> {
    let (owner, repo) = params::path(path)?;
    let query = QueryParams::parse(
        query,
        &[
            "name",
            "classname",
            "file",
            "branch",
            "days",
            "page",
            "per_page",
        ],
    )?;
    let repository = params::repository(&owner, &repo)?;
    let name = required_text(&query, "name")?;
    let classname = optional_text(query.text("classname"), "classname")?;
    let file = optional_text(query.text("file"), "file")?;
    let branch = query.text("branch").map(params::branch).transpose()?;
    let days = query.number("days", 30, 1, MAX_DAYS)?;
    let paging = query.paging(100, 1000)?;
    let since = (params::now_unix() - (days as i64) * 86_400).max(0);
    let rows: Vec<HistoryRow> = fetch(
        clickhouse,
        &TEST_HISTORY,
        &[
            ("repo", Param::Str(repository.clone())),
            ("name", Param::Str(name.clone())),
            ("name_id", Param::UInt(name_id(&name))),
            (
                "classname",
                Param::Str(classname.clone().unwrap_or_default()),
            ),
            ("file", Param::Str(file.clone().unwrap_or_default())),
            ("since", Param::UInt(since as u64)),
            ("branch", Param::Str(branch.clone().unwrap_or_default())),
        ],
    )
    .await?;
    let mut jobs = StatusCounts::default();
    let runs: Vec<TestRun> = rows
        .into_iter()
        .map(|r| {
            let status = status_of(r.runs, r.failures, r.skips, r.marked);
            jobs.add(status);
            TestRun {
                job_id: r.job_id,
                job_name: (!r.job_name.is_empty())
                    .then(|| column_name(&r.workflow_name, &r.job_name)),
                sha: non_empty(r.commit_sha),
                branch: non_empty(r.head_branch),
                time: unix_instant(i64::from(r.reported_at_unix)),
                status: status_name(status).to_string(),
                runs: r.runs,
                retries: r.retries,
                duration_s: r.seconds,
                message: (status != Status::Success)
                    .then(|| first_line(&r.failure_message))
                    .filter(|m| !m.is_empty()),
            }
        })
        .collect();
    let rate = |n: u64| {
        if jobs.total == 0 {
            0.0
        } else {
            n as f64 / jobs.total as f64
        }
    };
    let (fail_rate, flaky_rate) = (rate(jobs.failed), rate(jobs.flaky));
    let (runs, has_more) = paging.slice(runs);
    Ok(TestHistory {
        repository,
        test: TestId {
            name,
            classname,
            file,
        },
        branch,
        days,
        jobs,
        fail_rate,
        flaky_rate,
        page: paging.page,
        per_page: paging.per_page,
        has_more,
        runs,
    })
}
