//! `GET /api/tests/{owner}/{repo}/flaky?days=&branch=`: the tests that were flaky in a window.
//!
//! A test was flaky when, in the window,
//! - **in a job**, its status by torchci's rule was `flaky`: it passed on a retry inside a case
//!   (pytest-rerunfailures' `<rerun>`, Surefire's `flakyFailure`), or it failed in one run and
//!   passed in another of the same job (repeated cases, file-level reruns); or
//! - **on a commit**, it failed in one job and passed in another job of the same commit (a
//!   re-run attempt, or another shard of the same configuration): CircleCI's definition.
//!
//! Each comes with how often (jobs and commits), the jobs it was flaky on, when it was last
//! seen, and the open DISABLED issue that skips it, if any. Most flaky first.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use hudstream_junit::status::Status;
use hudstream_runtime::clickhouse::{ClickHouse, Param};

use crate::disabled::{disabled_issues, disabling_issue, issue_link, DisablingIssue};
use crate::error::ApiError;
use crate::job_rows::{column_name, unix_instant};
use crate::params::{self, QueryParams, RawPath, RawQuery};
use crate::queries::{fetch, JOBS_BY_IDS, REPORT_SHAS_BY_JOBS, TEST_FLAKY, TEST_FLAKY_NAMES};
use crate::test_results::status_of;

/// The longest window, in days.
pub const MAX_DAYS: u64 = 30;
/// Job names listed per test at most.
const JOB_NAMES: usize = 10;

/// A row of `test_flaky`: one test (by id) in one job.
#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
struct TestInJobRow {
    test_id: u64,
    job_id: i64,
    reported_at_unix: u32,
    runs: u64,
    failures: u64,
    skips: u64,
    marked: u64,
}

/// A row of `test_flaky_names`.
#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
struct TestNameRow {
    test_id: u64,
    file: String,
    classname: String,
    name: String,
}

/// A row of `report_shas_by_jobs`.
#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
struct ReportedShaRow {
    job_id: i64,
    reported_sha: String,
}

/// A row of `jobs_by_ids`.
#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
struct JobRow {
    id: i64,
    workflow_name: String,
    name: String,
    head_sha: String,
    head_branch: String,
}

/// One test in one job, with the job's name, commit and branch as far as they are known.
#[derive(Debug, Clone, PartialEq)]
pub struct FlakyRow {
    pub file: String,
    pub classname: String,
    pub name: String,
    pub job_id: i64,
    /// `"{workflow} / {job}"`, '' when no webhook told of the job.
    pub job_name: String,
    /// The job's commit, else the one its report named, else ''.
    pub commit_sha: String,
    pub head_branch: String,
    pub reported_at_unix: u32,
    pub runs: u64,
    pub failures: u64,
    pub skips: u64,
    pub marked: u64,
}

/// One flaky test.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FlakyTest {
    pub file: String,
    pub classname: String,
    pub name: String,
    /// Jobs whose status for it was `flaky`.
    pub flaky_jobs: u64,
    /// Commits where it failed in one job and passed in another.
    pub flaky_commits: u64,
    /// Jobs where it failed on every run.
    pub failed_jobs: u64,
    /// Jobs it ran in.
    pub jobs: u64,
    /// `in_job` and/or `same_commit`.
    pub how: Vec<String>,
    pub last_seen: Option<String>,
    /// The jobs it was flaky or failed on (at most 10 names).
    pub job_names: Vec<String>,
    /// The job ids of its flaky jobs (at most 10), newest first.
    pub example_job_ids: Vec<i64>,
    /// The open DISABLED issue that skips it.
    pub disabled_by: Option<DisablingIssue>,
}

/// The flaky tests of a window.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct FlakyTests {
    pub repository: String,
    pub days: u64,
    pub branch: Option<String>,
    pub page: u64,
    pub per_page: u64,
    pub has_more: bool,
    pub tests: Vec<FlakyTest>,
}

/// Decides which tests were flaky from their runs per job (the rows of one test contiguous or
/// not); most flaky first, then most recently seen.
pub fn flaky_tests(rows: Vec<FlakyRow>) -> Vec<FlakyTest> {
    let mut by_test: BTreeMap<(String, String, String), Vec<FlakyRow>> = BTreeMap::new();
    for row in rows {
        by_test
            .entry((row.file.clone(), row.classname.clone(), row.name.clone()))
            .or_default()
            .push(row);
    }
    let mut out = Vec::new();
    for ((file, classname, name), mut jobs) in by_test {
        jobs.sort_by(|a, b| {
            b.reported_at_unix
                .cmp(&a.reported_at_unix)
                .then(b.job_id.cmp(&a.job_id))
        });
        let statuses: Vec<Status> = jobs
            .iter()
            .map(|j| status_of(j.runs, j.failures, j.skips, j.marked))
            .collect();
        let flaky_jobs = statuses.iter().filter(|s| **s == Status::Flaky).count() as u64;
        let failed_jobs = statuses.iter().filter(|s| **s == Status::Failure).count() as u64;
        // Per commit: did it fail somewhere and pass somewhere?
        let mut commits: BTreeMap<&str, (bool, bool)> = BTreeMap::new();
        for (job, status) in jobs.iter().zip(&statuses) {
            if job.commit_sha.is_empty() {
                continue;
            }
            let seen = commits.entry(&job.commit_sha).or_default();
            seen.0 |= *status == Status::Failure;
            seen.1 |= matches!(status, Status::Success | Status::Flaky);
        }
        let flaky_commits = commits.values().filter(|(f, p)| *f && *p).count() as u64;
        if flaky_jobs == 0 && flaky_commits == 0 {
            continue;
        }
        let mut how = Vec::new();
        if flaky_jobs > 0 {
            how.push("in_job".to_string());
        }
        if flaky_commits > 0 {
            how.push("same_commit".to_string());
        }
        let flaky_commit_shas: BTreeSet<&str> = commits
            .iter()
            .filter(|(_, (f, p))| *f && *p)
            .map(|(sha, _)| *sha)
            .collect();
        let mut job_names = Vec::new();
        let mut example_job_ids = Vec::new();
        for (job, status) in jobs.iter().zip(&statuses) {
            let involved = *status == Status::Flaky
                || (flaky_commit_shas.contains(job.commit_sha.as_str())
                    && *status == Status::Failure);
            if !involved {
                continue;
            }
            if example_job_ids.len() < JOB_NAMES {
                example_job_ids.push(job.job_id);
            }
            if !job.job_name.is_empty()
                && !job_names.contains(&job.job_name)
                && job_names.len() < JOB_NAMES
            {
                job_names.push(job.job_name.clone());
            }
        }
        let last_seen = jobs.iter().map(|j| j.reported_at_unix).max().unwrap_or(0);
        out.push(FlakyTest {
            file,
            classname,
            name,
            flaky_jobs,
            flaky_commits,
            failed_jobs,
            jobs: jobs.len() as u64,
            how,
            last_seen: unix_instant(i64::from(last_seen)),
            job_names,
            example_job_ids,
            disabled_by: None,
        });
    }
    out.sort_by(|a, b| {
        (b.flaky_jobs + b.flaky_commits)
            .cmp(&(a.flaky_jobs + a.flaky_commits))
            .then(b.last_seen.cmp(&a.last_seen))
            .then(a.name.cmp(&b.name))
    });
    out
}

/// The flaky tests a request asks for: `days` (7, at most 30), `branch`, `page`, `per_page`.
pub async fn from_request(
    clickhouse: &ClickHouse,
    path: RawPath<(String, String)>,
    query: RawQuery,
) -> Result<FlakyTests, ApiError> {
    let (owner, repo) = params::path(path)?;
    let query = QueryParams::parse(query, &["days", "branch", "page", "per_page"])?;
    let repository = params::repository(&owner, &repo)?;
    let days = query.number("days", 7, 1, MAX_DAYS)?;
    let branch = query.text("branch").map(params::branch).transpose()?;
    let paging = query.paging(100, 1000)?;
    let since = (params::now_unix() - days as i64 * 86_400).max(0);
    let params = [
        ("repo", Param::Str(repository.clone())),
        ("since", Param::UInt(since as u64)),
    ];
    let (rows, names, issues) = tokio::join!(
        fetch::<TestInJobRow>(clickhouse, &TEST_FLAKY, &params),
        fetch::<TestNameRow>(clickhouse, &TEST_FLAKY_NAMES, &params),
        disabled_issues(clickhouse, &repository)
    );
    let (rows, issues) = (rows?, issues?);
    let names: HashMap<u64, TestNameRow> = names?.into_iter().map(|n| (n.test_id, n)).collect();
    let mut ids: Vec<i64> = rows.iter().map(|r| r.job_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let (jobs, reported): (HashMap<i64, JobRow>, HashMap<i64, String>) = if ids.is_empty() {
        Default::default()
    } else {
        let params = [
            ("repo", Param::Str(repository.clone())),
            ("ids", Param::IntArray(ids)),
        ];
        let (jobs, reported) = tokio::join!(
            fetch::<JobRow>(clickhouse, &JOBS_BY_IDS, &params),
            fetch::<ReportedShaRow>(clickhouse, &REPORT_SHAS_BY_JOBS, &params)
        );
        (
            jobs?.into_iter().map(|j| (j.id, j)).collect(),
            reported?
                .into_iter()
                .map(|r| (r.job_id, r.reported_sha))
                .collect(),
        )
    };
    let rows = rows
        .into_iter()
        .filter_map(|r| {
            let job = jobs.get(&r.job_id);
            // Every candidate id is a failing test's, so its name is known.
            let test = names.get(&r.test_id)?;
            Some(FlakyRow {
                job_name: job.map_or_else(String::new, |j| column_name(&j.workflow_name, &j.name)),
                commit_sha: job
                    .map(|j| j.head_sha.clone())
                    .filter(|s| !s.is_empty())
                    .or_else(|| reported.get(&r.job_id).cloned())
                    .unwrap_or_default(),
                head_branch: job.map(|j| j.head_branch.clone()).unwrap_or_default(),
                file: test.file.clone(),
                classname: test.classname.clone(),
                name: test.name.clone(),
                job_id: r.job_id,
                reported_at_unix: r.reported_at_unix,
                runs: r.runs,
                failures: r.failures,
                skips: r.skips,
                marked: r.marked,
            })
        })
        .filter(|r| branch.as_ref().is_none_or(|b| &r.head_branch == b))
        .collect();
    let mut tests = flaky_tests(rows);
    for test in &mut tests {
        test.disabled_by = disabling_issue(&issues, &test.name, &test.classname).map(issue_link);
    }
    let (tests, has_more) = paging.slice(tests);
    Ok(FlakyTests {
        repository,
        days,
        branch,
        page: paging.page,
        per_page: paging.per_page,
        has_more,
        tests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, job: i64, sha: &str, runs: u64, failures: u64, marked: u64) -> FlakyRow {
        FlakyRow {
            file: "test_x.py".into(),
            classname: "test_x.TestX".into(),
            name: name.into(),
            job_id: job,
            job_name: format!("pull / linux-test ({job})"),
            commit_sha: sha.into(),
            head_branch: "main".into(),
            reported_at_unix: 1_700_000_000 + job as u32,
            runs,
            failures,
            skips: 0,
            marked,
        }
    }

    #[test]
    fn flaky_in_a_job_or_on_a_commit_and_nothing_else() {
        let tests = flaky_tests(vec![
            // Failed, then passed, in one job.
            row("test_retried", 1, "a", 2, 1, 1),
            // Failed in job 2, passed in job 3, same commit.
            row("test_commit", 2, "b", 1, 1, 1),
            row("test_commit", 3, "b", 1, 0, 0),
            // Failed everywhere: broken, not flaky.
            row("test_broken", 4, "c", 1, 1, 1),
            row("test_broken", 5, "c", 1, 1, 1),
            // Failed on one commit, passed on another: not flaky by either rule.
            row("test_fixed", 6, "d", 1, 1, 1),
            row("test_fixed", 7, "e", 1, 0, 0),
        ]);
        let names: Vec<&str> = tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let retried = tests.iter().find(|t| t.name == "test_retried").unwrap();
        assert_eq!(
            (retried.flaky_jobs, retried.how.clone()),
            (1, vec!["in_job".to_string()])
        );
        let commit = tests.iter().find(|t| t.name == "test_commit").unwrap();
        assert_eq!(
            (commit.flaky_commits, commit.failed_jobs, commit.how.clone()),
            (1, 1, vec!["same_commit".to_string()])
        );
        assert_eq!(commit.example_job_ids, vec![2]);
    }
}
