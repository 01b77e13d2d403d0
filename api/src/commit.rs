//! The commit page's data: `GET /api/{owner}/{repo}/commit/{sha}?page&per_page` — every job of
//! the commit with its duration, queue time, runner, attempt and verdict, and the workflow runs
//! that failed without starting a job (startup failures: GitHub sends no job event for them,
//! so they are only visible from the run) — and the tests that failed or were flaky in its jobs.
//! Four queries, run concurrently.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use hudstream_runtime::clickhouse::{ClickHouse, DateTime, Param};

use crate::error::ApiError;
use crate::job_rows::{display_conclusion, instant_of, non_empty, title, JobSummary};
use crate::params::{self, Paging, QueryParams, RawPath, RawQuery};
use crate::queries::{
    fetch, COMMIT_BY_SHA, COMMIT_FAILED_TESTS, JOBS_FOR_COMMITS, RUNS_FOR_COMMIT,
};
use crate::test_results::{first_line, status_name, status_of, status_rank};
use hudstream_junit::status::Status;

/// A commit's header.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommitInfo {
    pub sha: String,
    pub title: String,
    pub message: String,
    pub author: String,
    pub author_username: Option<String>,
    pub timestamp: Option<String>,
    pub url: Option<String>,
}

/// A workflow run as the commit page shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunSummary {
    pub id: i64,
    pub name: String,
    pub run_attempt: i64,
    pub event: String,
    pub status: String,
    /// GitHub's conclusion, or `queued`/`pending` while there is none.
    pub conclusion: String,
    pub head_branch: String,
    pub created_at: Option<String>,
    pub started_at: Option<String>,
    pub html_url: String,
    pub pull_request_numbers: Vec<i64>,
}

/// The commit page.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct CommitPage {
    pub repository: String,
    pub sha: String,
    /// From the push that brought the commit, else from a workflow run's head commit.
    pub commit: Option<CommitInfo>,
    pub page: u64,
    pub per_page: u64,
    pub has_more: bool,
    /// Sorted by name, then id.
    pub jobs: Vec<JobSummary>,
    /// Runs of this commit that failed without starting a job.
    pub startup_failures: Vec<RunSummary>,
    /// The tests that failed or were flaky in the commit's jobs (by torchci's status rule over
    /// their runs in each job), failed first.
    pub failed_tests: Vec<CommitTest>,
    pub workflow_runs: Vec<RunSummary>,
}

/// A test that failed or was flaky in one job of the commit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommitTest {
    pub job_id: i64,
    /// `"{workflow} / {job}"`.
    pub job_name: String,
    pub file: String,
    pub classname: String,
    pub name: String,
    /// `failed` or `flaky`.
    pub status: String,
    pub runs: u64,
    pub failures: u64,
    /// The first line of its failure.
    pub message: String,
}

/// A row of `commit_failed_tests`.
#[derive(Debug, clickhouse::Row, Deserialize)]
pub(crate) struct FailedTestRow {
    pub job_id: i64,
    pub file: String,
    pub classname: String,
    pub name: String,
    pub runs: u64,
    pub failures: u64,
    pub skips: u64,
    pub marked: u64,
    pub failure_message: String,
}

/// A row of `commit_by_sha` and of `branch_commits`.
#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
pub struct CommitRow {
    pub sha: String,
    pub message: String,
    pub author_name: String,
    pub author_username: String,
    pub timestamp: DateTime,
    pub pushed_at: DateTime,
    pub url: String,
}

impl From<CommitRow> for CommitInfo {
    fn from(c: CommitRow) -> Self {
        CommitInfo {
            title: title(&c.message),
            sha: c.sha,
            message: c.message,
            author: c.author_name,
            author_username: non_empty(c.author_username),
            timestamp: instant_of(c.timestamp),
            url: non_empty(c.url),
        }
    }
}

/// A row of `runs_for_commit`.
#[derive(Debug, clickhouse::Row, Deserialize)]
pub(crate) struct RunRow {
    pub id: i64,
    #[allow(dead_code)] // a column of the query: rows are read by position
    pub version: u64,
    pub run_attempt: i64,
    pub name: String,
    pub event: String,
    pub status: String,
    pub conclusion: String,
    pub head_branch: String,
    pub created_at: DateTime,
    pub run_started_at: DateTime,
    pub html_url: String,
    pub pull_request_numbers: Vec<i64>,
    pub head_commit_message: String,
    pub head_commit_author_name: String,
    pub head_commit_timestamp: DateTime,
}

impl From<&RunRow> for RunSummary {
    fn from(r: &RunRow) -> Self {
        RunSummary {
            id: r.id,
            name: r.name.clone(),
            run_attempt: r.run_attempt,
            event: r.event.clone(),
            status: r.status.clone(),
            conclusion: display_conclusion(&r.status, &r.conclusion),
            head_branch: r.head_branch.clone(),
            created_at: instant_of(r.created_at),
            started_at: instant_of(r.run_started_at),
            html_url: r.html_url.clone(),
            pull_request_numbers: r.pull_request_numbers.clone(),
        }
    }
}

/// A run that ended badly without a job: GitHub's `startup_failure`, or a failure or timeout
/// before any job was created (a bad workflow file). A run still queued or in progress may
/// simply not have sent its first job yet, and a cancelled, skipped or approval-waiting run did
/// not fail, so none of those counts.
fn is_startup_failure(run: &RunRow) -> bool {
    run.status == "completed"
        && matches!(
            run.conclusion.as_str(),
            "failure" | "startup_failure" | "timed_out"
        )
}

/// The jobs of some commits, with their verdicts, sorted by name then id.
pub async fn jobs_of(
    clickhouse: &ClickHouse,
    repository: &str,
    shas: Vec<String>,
) -> Result<Vec<JobSummary>, ApiError> {
    if shas.is_empty() {
        return Ok(Vec::new());
    }
    let rows =
        crate::job_rows::with_verdicts(clickhouse, &JOBS_FOR_COMMITS, repository, shas).await?;
    let mut jobs: Vec<JobSummary> = rows.into_iter().map(JobSummary::from).collect();
    jobs.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(jobs)
}

/// Commit headers for some shas.
pub async fn commits_by_sha(
    clickhouse: &ClickHouse,
    repository: &str,
    shas: Vec<String>,
) -> Result<Vec<CommitInfo>, ApiError> {
    if shas.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<CommitRow> = fetch(
        clickhouse,
        &COMMIT_BY_SHA,
        &[
            ("repo", Param::Str(repository.to_string())),
            ("shas", Param::StrArray(shas)),
        ],
    )
    .await?;
    Ok(rows.into_iter().map(CommitInfo::from).collect())
}

/// The commit page for `sha`; `NotFound` when nothing at all is known of it.
pub async fn commit_page(
    clickhouse: &ClickHouse,
    repository: &str,
    sha: &str,
    paging: Paging,
) -> Result<CommitPage, ApiError> {
    let run_params = [
        ("repo", Param::Str(repository.to_string())),
        ("sha", Param::Str(sha.to_string())),
    ];
    let (commits, jobs, runs, tests) = tokio::join!(
        commits_by_sha(clickhouse, repository, vec![sha.to_string()]),
        jobs_of(clickhouse, repository, vec![sha.to_string()]),
        fetch::<RunRow>(clickhouse, &RUNS_FOR_COMMIT, &run_params),
        fetch::<FailedTestRow>(clickhouse, &COMMIT_FAILED_TESTS, &run_params),
    );
    let (commits, jobs, runs, tests) = (commits?, jobs?, runs?, tests?);
    if commits.is_empty() && jobs.is_empty() && runs.is_empty() {
        return Err(ApiError::NotFound(format!(
            "nothing is known of commit {sha} in {repository}: no push, job or workflow run names it"
        )));
    }
    let commit = commits.into_iter().next().or_else(|| {
        runs.iter()
            .find(|r| !r.head_commit_message.is_empty())
            .map(|r| CommitInfo {
                sha: sha.to_string(),
                title: title(&r.head_commit_message),
                message: r.head_commit_message.clone(),
                author: r.head_commit_author_name.clone(),
                author_username: None,
                timestamp: instant_of(r.head_commit_timestamp),
                url: None,
            })
    });
    let runs_with_jobs: BTreeSet<i64> = jobs.iter().map(|j| j.run_id).collect();
    let startup_failures = runs
        .iter()
        .filter(|r| !runs_with_jobs.contains(&r.id) && is_startup_failure(r))
        .map(RunSummary::from)
        .collect();
    let workflow_runs = runs.iter().map(RunSummary::from).collect();
    let job_names: std::collections::HashMap<i64, &str> =
        jobs.iter().map(|j| (j.id, j.name.as_str())).collect();
    let mut failed_tests: Vec<(Status, CommitTest)> = tests
        .into_iter()
        .map(|t| (status_of(t.runs, t.failures, t.skips, t.marked), t))
        .filter(|(status, _)| matches!(status, Status::Failure | Status::Flaky))
        .map(|(status, t)| {
            let test = CommitTest {
                job_name: job_names
                    .get(&t.job_id)
                    .map_or_else(String::new, |n| n.to_string()),
                job_id: t.job_id,
                file: t.file,
                classname: t.classname,
                name: t.name,
                status: status_name(status).to_string(),
                runs: t.runs,
                failures: t.failures,
                message: first_line(&t.failure_message),
            };
            (status, test)
        })
        .collect();
    failed_tests.sort_by(|(sa, a), (sb, b)| {
        status_rank(*sa)
            .cmp(&status_rank(*sb))
            .then(a.job_name.cmp(&b.job_name))
            .then(a.name.cmp(&b.name))
    });
    let failed_tests = failed_tests.into_iter().map(|(_, t)| t).collect();
    let (jobs, has_more) = paging.slice(jobs);
    Ok(CommitPage {
        repository: repository.to_string(),
        sha: sha.to_string(),
        commit,
        page: paging.page,
        per_page: paging.per_page,
        has_more,
        jobs,
        startup_failures,
        failed_tests,
        workflow_runs,
    })
}

/// The commit page a request asks for. A commit has a few hundred jobs: one page holds them all
/// by default.
pub async fn from_request(
    clickhouse: &ClickHouse,
    path: RawPath<(String, String, String)>,
    query: RawQuery,
) -> Result<CommitPage, ApiError> {
    let (owner, repo, sha) = params::path(path)?;
    let query = QueryParams::parse(query, &["page", "per_page"])?;
    let repository = params::repository(&owner, &repo)?;
    let sha = params::commit_sha(&sha)?;
    commit_page(clickhouse, &repository, &sha, query.paging(1000, 5000)?).await
}
