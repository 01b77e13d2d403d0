//! Out-of-tree CI results (torchci.md §7.5): the summary per downstream backend
//! (`GET /api/oot/summary?days`), one backend's matrix of PR × job name
//! (`GET /api/oot/{org}/{repo}?days&page&per_page`) and one upstream PR's OOT jobs
//! (`GET /api/oot/pr/{number}?repo`, also the PR page's OOT section).
//!
//! Each OOT job is merged from its callbacks in SQL (`oot_jobs_window.sql`); the matrix is
//! torchci's `buildMatrix`, here in [`build_matrix`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use hudstream_runtime::clickhouse::{ClickHouse, Param};

use crate::error::ApiError;
use crate::job_rows::unix_instant;
use crate::params::{self, Paging, QueryParams, RawPath, RawQuery};
use crate::queries::{fetch, OOT_JOBS_WINDOW, OOT_SUMMARY};

/// How many merged jobs a backend's window reads at most (torchci: 500).
const MAX_BACKEND_ROWS: u64 = 20_000;
/// How many OOT jobs a PR view reads at most.
const MAX_PR_ROWS: u64 = 5_000;

/// One backend's line of the summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackendSummary {
    pub downstream_repo: String,
    pub downstream_repo_level: Option<String>,
    pub successes: u64,
    pub failures: u64,
    /// Completed jobs, cancelled and timed out included.
    pub completed: u64,
    /// successes / completed; 0 with no completed job.
    pub pass_rate: f64,
    /// Green at 95 % and above, yellow at 80 %, red below (torchci's chips).
    pub health: String,
    pub avg_duration_s: f64,
    pub last_run: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub days: u64,
    /// Worst pass rate first.
    pub backends: Vec<BackendSummary>,
}

/// A row of `oot_summary`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct SummaryRow {
    downstream_repo: String,
    downstream_repo_level: String,
    successes: u64,
    failures: u64,
    completed: u64,
    pass_rate: f64,
    avg_duration_s: f64,
    last_run_unix: u32,
}

/// The `days` parameter: 1 to 365, 7 by default (torchci's default window).
fn days(params: &QueryParams) -> Result<u64, ApiError> {
    params.number("days", 7, 1, 365)
}

/// The summary a request asks for (`/api/oot/summary`, the page `/oot`).
pub async fn summary_from_request(
    clickhouse: &ClickHouse,
    query: RawQuery,
) -> Result<Summary, ApiError> {
    let query = QueryParams::parse(query, &["days"])?;
    summary(clickhouse, days(&query)?).await
}

/// The backend matrix a request asks for (`/api/oot/{org}/{repo}`, the page `/oot/{org}/{repo}`).
pub async fn matrix_from_request(
    clickhouse: &ClickHouse,
    path: RawPath<(String, String)>,
    query: RawQuery,
) -> Result<Matrix, ApiError> {
    let (org, repo) = params::path(path)?;
    let query = QueryParams::parse(query, &["days", "page", "per_page"])?;
    let repository = params::repository(&org, &repo)?;
    matrix(
        clickhouse,
        &repository,
        days(&query)?,
        query.paging(50, 200)?,
    )
    .await
}

/// The PR results a request asks for (`/api/oot/pr/{number}?repo`; the upstream repository is
/// torchci's default, `pytorch/pytorch`, unless named).
pub async fn pr_from_request(
    clickhouse: &ClickHouse,
    path: RawPath<String>,
    query: RawQuery,
) -> Result<PrResults, ApiError> {
    let number = params::positive("the pull request number", &params::path(path)?)?;
    let query = QueryParams::parse(query, &["repo", "page", "per_page"])?;
    let upstream =
        params::repository_full_name("repo", query.text("repo").unwrap_or("pytorch/pytorch"))?;
    pr_results(clickhouse, &upstream, number, query.paging(100, 1000)?).await
}

/// torchci's pass-rate chip.
pub fn health(pass_rate: f64) -> &'static str {
    if pass_rate >= 0.95 {
        "green"
    } else if pass_rate >= 0.80 {
        "yellow"
    } else {
        "red"
    }
}

pub async fn summary(clickhouse: &ClickHouse, days: u64) -> Result<Summary, ApiError> {
    let rows: Vec<SummaryRow> =
        fetch(clickhouse, &OOT_SUMMARY, &[("days", Param::UInt(days))]).await?;
    Ok(Summary {
        days,
        backends: rows
            .into_iter()
            .map(|r| BackendSummary {
                health: health(r.pass_rate).to_string(),
                downstream_repo: r.downstream_repo,
                downstream_repo_level: (!r.downstream_repo_level.is_empty())
                    .then_some(r.downstream_repo_level),
                successes: r.successes,
                failures: r.failures,
                completed: r.completed,
                pass_rate: r.pass_rate,
                avg_duration_s: r.avg_duration_s,
                last_run: unix_instant(i64::from(r.last_run_unix)),
            })
            .collect(),
    })
}

/// One OOT job, merged from its callbacks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OotJob {
    pub dynamo_key: String,
    pub downstream_repo: String,
    pub downstream_repo_level: Option<String>,
    pub upstream_repo: String,
    pub pr_number: i64,
    pub sha: String,
    pub workflow_name: String,
    pub workflow_run_url: String,
    pub job_name: String,
    pub run_id: String,
    pub run_attempt: i64,
    pub status: String,
    pub conclusion: Option<String>,
    /// `running` while in progress, else the conclusion (or status) — torchci's chip label.
    pub label: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub duration_s: Option<f64>,
    pub queue_time_s: Option<f64>,
    pub execution_time_s: Option<f64>,
    pub passed_tests: Option<i64>,
    pub failed_tests: Option<i64>,
    pub skipped_tests: Option<i64>,
    pub total_tests: Option<i64>,
    pub artifact_url: Option<String>,
}

/// A row of `oot_jobs_window`: one OOT job, its callbacks merged.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct OotRow {
    #[serde(rename = "dynamoKey")]
    dynamo_key: String,
    #[allow(dead_code)] // a column of the query: rows are read by position
    latest_version: u64,
    status: String,
    upstream_repo: String,
    pr_number: i64,
    pytorch_head_sha: String,
    downstream_repo: String,
    workflow_name: String,
    workflow_run_url: String,
    job_name: String,
    run_id: String,
    run_attempt: i64,
    downstream_repo_level: Option<String>,
    queue_time: Option<f64>,
    execution_time: Option<f64>,
    started_unix: u32,
    completed_unix: u32,
    conclusion: Option<String>,
    passed_tests: Option<i64>,
    failed_tests: Option<i64>,
    skipped_tests: Option<i64>,
    total_tests: Option<i64>,
    artifact_url: Option<String>,
}

impl From<OotRow> for OotJob {
    fn from(r: OotRow) -> Self {
        let label = if r.status == "in_progress" {
            "running".to_string()
        } else {
            r.conclusion.clone().unwrap_or_else(|| r.status.clone())
        };
        OotJob {
            duration_s: (r.started_unix > 0 && r.completed_unix >= r.started_unix)
                .then(|| (r.completed_unix - r.started_unix) as f64),
            started_at: unix_instant(i64::from(r.started_unix)),
            completed_at: unix_instant(i64::from(r.completed_unix)),
            label,
            dynamo_key: r.dynamo_key,
            downstream_repo: r.downstream_repo,
            downstream_repo_level: r.downstream_repo_level,
            upstream_repo: r.upstream_repo,
            pr_number: r.pr_number,
            sha: r.pytorch_head_sha,
            workflow_name: r.workflow_name,
            workflow_run_url: r.workflow_run_url,
            job_name: r.job_name,
            run_id: r.run_id,
            run_attempt: r.run_attempt,
            status: r.status,
            conclusion: r.conclusion,
            queue_time_s: r.queue_time,
            execution_time_s: r.execution_time,
            passed_tests: r.passed_tests,
            failed_tests: r.failed_tests,
            skipped_tests: r.skipped_tests,
            total_tests: r.total_tests,
            artifact_url: r.artifact_url,
        }
    }
}

/// Merged OOT jobs, newest first.
async fn jobs_window(
    clickhouse: &ClickHouse,
    downstream_repo: &str,
    upstream_repo: &str,
    pr_number: i64,
    days: u64,
    max_rows: u64,
) -> Result<Vec<OotJob>, ApiError> {
    let rows: Vec<OotRow> = fetch(
        clickhouse,
        &OOT_JOBS_WINDOW,
        &[
            ("repo", Param::Str(downstream_repo.to_string())),
            ("upstream_repo", Param::Str(upstream_repo.to_string())),
            ("pr_number", Param::Int(pr_number)),
            ("days", Param::UInt(days)),
            ("max_rows", Param::UInt(max_rows)),
        ],
    )
    .await?;
    Ok(rows.into_iter().map(OotJob::from).collect())
}

/// One row of a backend's matrix: a PR, and per column the winning job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MatrixRow {
    pub pr_number: i64,
    /// The first-seen (most recent) job's upstream head sha.
    pub sha: String,
    pub jobs: Vec<Option<OotJob>>,
}

/// A backend's matrix.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Matrix {
    pub downstream_repo: String,
    pub days: u64,
    pub page: u64,
    pub per_page: u64,
    pub has_more: bool,
    /// Successful jobs and completed jobs in the window (all runs, not only the winners).
    pub successes: u64,
    pub completed: u64,
    pub pass_rate: f64,
    pub health: String,
    pub job_names: Vec<String>,
    pub rows: Vec<MatrixRow>,
}

/// torchci's `buildMatrix` over jobs ordered newest first: rows are PR numbers (descending),
/// columns the sorted distinct job names; a cell keeps the job with the strictly highest
/// `run_attempt`, so on a tie the first seen (most recent) stays; a row's sha is its first
/// seen job's.
pub fn build_matrix(jobs: &[OotJob]) -> (Vec<String>, Vec<MatrixRow>) {
    let names: Vec<String> = jobs
        .iter()
        .map(|j| j.job_name.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut rows: BTreeMap<i64, (String, BTreeMap<&str, &OotJob>)> = BTreeMap::new();
    for job in jobs {
        let (_, cells) = rows
            .entry(job.pr_number)
            .or_insert_with(|| (job.sha.clone(), BTreeMap::new()));
        match cells.get(job.job_name.as_str()) {
            Some(kept) if kept.run_attempt >= job.run_attempt => {}
            _ => {
                cells.insert(job.job_name.as_str(), job);
            }
        }
    }
    let rows = rows
        .into_iter()
        .rev()
        .map(|(pr_number, (sha, cells))| MatrixRow {
            pr_number,
            sha,
            jobs: names
                .iter()
                .map(|n| cells.get(n.as_str()).map(|j| (*j).clone()))
                .collect(),
        })
        .collect();
    (names, rows)
}

pub async fn matrix(
    clickhouse: &ClickHouse,
    downstream_repo: &str,
    days: u64,
    paging: Paging,
) -> Result<Matrix, ApiError> {
    let jobs = jobs_window(clickhouse, downstream_repo, "", 0, days, MAX_BACKEND_ROWS).await?;
    let completed = jobs.iter().filter(|j| j.status == "completed").count() as u64;
    let successes = jobs
        .iter()
        .filter(|j| j.status == "completed" && j.conclusion.as_deref() == Some("success"))
        .count() as u64;
    let pass_rate = if completed == 0 {
        0.0
    } else {
        successes as f64 / completed as f64
    };
    let (job_names, rows) = build_matrix(&jobs);
    let (rows, has_more) = paging.slice(rows);
    Ok(Matrix {
        downstream_repo: downstream_repo.to_string(),
        days,
        page: paging.page,
        per_page: paging.per_page,
        has_more,
        successes,
        completed,
        pass_rate,
        health: health(pass_rate).to_string(),
        job_names,
        rows,
    })
}

/// One upstream PR's OOT jobs, with torchci's "X/Y passed, Z running".
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct PrResults {
    pub upstream_repo: String,
    pub pr_number: i64,
    /// Completed jobs that succeeded.
    pub passed: u64,
    /// Completed jobs.
    pub completed: u64,
    /// Jobs in progress.
    pub running: u64,
    pub page: u64,
    pub per_page: u64,
    pub has_more: bool,
    /// By downstream repository, then newest first.
    pub jobs: Vec<OotJob>,
}

pub async fn pr_results(
    clickhouse: &ClickHouse,
    upstream_repo: &str,
    pr_number: i64,
    paging: Paging,
) -> Result<PrResults, ApiError> {
    let mut jobs = jobs_window(clickhouse, "", upstream_repo, pr_number, 0, MAX_PR_ROWS).await?;
    // Stable: newest first within each downstream repository.
    jobs.sort_by(|a, b| a.downstream_repo.cmp(&b.downstream_repo));
    let completed = jobs.iter().filter(|j| j.status == "completed").count() as u64;
    let passed = jobs
        .iter()
        .filter(|j| j.status == "completed" && j.conclusion.as_deref() == Some("success"))
        .count() as u64;
    let running = jobs.iter().filter(|j| j.status == "in_progress").count() as u64;
    let (jobs, has_more) = paging.slice(jobs);
    Ok(PrResults {
        upstream_repo: upstream_repo.to_string(),
        pr_number,
        passed,
        completed,
        running,
        page: paging.page,
        per_page: paging.per_page,
        has_more,
        jobs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(pr: i64, name: &str, attempt: i64, conclusion: &str, key: &str) -> OotJob {
        OotJob {
            dynamo_key: key.into(),
            downstream_repo: "intel/torch-xpu-ops".into(),
            downstream_repo_level: None,
            upstream_repo: "pytorch/pytorch".into(),
            pr_number: pr,
            sha: format!("sha-{key}"),
            workflow_name: "xpu".into(),
            workflow_run_url: String::new(),
            job_name: name.into(),
            run_id: "1".into(),
            run_attempt: attempt,
            status: "completed".into(),
            conclusion: Some(conclusion.into()),
            label: conclusion.into(),
            started_at: None,
            completed_at: None,
            duration_s: None,
            queue_time_s: None,
            execution_time_s: None,
            passed_tests: None,
            failed_tests: None,
            skipped_tests: None,
            total_tests: None,
            artifact_url: None,
        }
    }

    #[test]
    fn the_highest_attempt_wins_and_ties_keep_the_most_recent() {
        // Newest first, as the query orders them.
        let jobs = vec![
            job(7, "test", 1, "failure", "newest-attempt-1"),
            job(7, "test", 2, "success", "attempt-2"),
            job(7, "build", 1, "success", "build-recent"),
            job(7, "build", 1, "failure", "build-older"),
            job(9, "test", 1, "success", "pr-9"),
        ];
        let (names, rows) = build_matrix(&jobs);
        assert_eq!(names, ["build", "test"]);
        assert_eq!(rows.iter().map(|r| r.pr_number).collect::<Vec<_>>(), [9, 7]);
        let pr7 = &rows[1];
        assert_eq!(pr7.sha, "sha-newest-attempt-1");
        let key = |i: usize| pr7.jobs[i].as_ref().map(|j| j.dynamo_key.as_str());
        assert_eq!(key(0), Some("build-recent"));
        assert_eq!(key(1), Some("attempt-2"));
        assert_eq!(rows[0].jobs[0], None);
    }

    #[test]
    fn chips() {
        assert_eq!(health(0.95), "green");
        assert_eq!(health(0.80), "yellow");
        assert_eq!(health(0.79), "red");
    }
}
