//! `GET /api/failures/{owner}/{repo}/similar?job_id=&days=`: the other failed jobs that failed
//! the way job `job_id` did — the same failure signature (`schemas/src/signature.rs`) in their
//! newest verdict — in the last `days` (7 by default): which commits, branches and PRs, first
//! and last seen, and how many passed when rerun.
//!
//! `GET /api/failures/{owner}/{repo}/clusters?days=&page&per_page`: the most frequent
//! signatures of a window with their pattern (the failure line masked) and jobs per day —
//! the failure cluster page's data. `/api/failures` (by captures, torchci's
//! `log_captures_count`) stays as it was.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use hudstream_runtime::clickhouse::{ClickHouse, Param};

use hudstream_projections::job_classification::JobClassificationRow;

use crate::error::ApiError;
use crate::job_rows::{column_name, unix_instant};
use crate::params::{self, now_unix, QueryParams, RawPath, RawQuery};
use crate::queries::{fetch, FAILURE_CLUSTERS, JOB_CLASSIFICATION_BY_ID, SIMILAR_FAILURES};

/// The longest window a request may ask for.
const MAX_DAYS: u64 = 90;
/// At most this many similar jobs are listed.
const MAX_JOBS: u64 = 200;

/// A row of `similar_failures`: a job with the signature (`matched`), or a rerun that passed
/// on one of their commits.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct SimilarRow {
    id: i64,
    matched: u8,
    head_sha: String,
    head_branch: String,
    workflow_name: String,
    name: String,
    conclusion: String,
    run_id: i64,
    run_attempt: i64,
    completed_at_unix: u32,
    pull_request_numbers: Vec<i64>,
}

/// A job that failed the same way.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimilarJob {
    pub id: i64,
    pub name: String,
    pub head_sha: String,
    pub branch: String,
    pub pull_requests: Vec<i64>,
    pub conclusion: String,
    pub run_id: i64,
    pub run_attempt: i64,
    pub completed_at: Option<String>,
    /// A later attempt of the same job on the same run passed.
    pub passed_on_rerun: bool,
    pub html_url: String,
}

/// The answer of `/similar`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Similar {
    pub repository: String,
    pub job_id: i64,
    pub days: u64,
    /// '' when the job has no signature (no verdict, or no rule matched): nothing is similar.
    pub signature: String,
    pub rule: String,
    pub pattern: String,
    pub captures: Vec<String>,
    /// Other jobs (the job itself excluded), newest first.
    pub jobs: Vec<SimilarJob>,
    pub commits: u64,
    pub branches: Vec<String>,
    pub pull_requests: Vec<i64>,
    pub passed_on_rerun: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

/// Jobs with job `job_id`'s signature in the last `days`.
pub async fn similar(
    clickhouse: &ClickHouse,
    repository: &str,
    job_id: i64,
    days: u64,
) -> Result<Similar, ApiError> {
    let verdict: Option<JobClassificationRow> = fetch(
        clickhouse,
        &JOB_CLASSIFICATION_BY_ID,
        &[
            ("repo", Param::Str(repository.to_string())),
            ("job_id", Param::Int(job_id)),
        ],
    )
    .await?
    .into_iter()
    .next();
    let Some(verdict) = verdict else {
        return Err(ApiError::NotFound(format!(
            "job {job_id} of {repository} has no log verdict (yet): nothing to compare"
        )));
    };
    let mut answer = Similar {
        repository: repository.to_string(),
        job_id,
        days,
        signature: verdict.signature.clone(),
        rule: verdict.rule,
        pattern: verdict.pattern,
        captures: verdict.captures,
        jobs: Vec::new(),
        commits: 0,
        branches: Vec::new(),
        pull_requests: Vec::new(),
        passed_on_rerun: 0,
        first_seen: None,
        last_seen: None,
    };
    if verdict.outcome != "matched" || verdict.signature.is_empty() {
        return Ok(answer);
    }
    let until = now_unix().max(0) as u64;
    let rows: Vec<SimilarRow> = fetch(
        clickhouse,
        &SIMILAR_FAILURES,
        &[
            ("repo", Param::Str(repository.to_string())),
            ("signature", Param::Str(verdict.signature)),
            ("since", Param::UInt(until.saturating_sub(days * 86_400))),
            ("until", Param::UInt(until)),
            ("page_size", Param::UInt(MAX_JOBS + 1)),
        ],
    )
    .await?;
    let (rows, reruns): (Vec<SimilarRow>, Vec<SimilarRow>) =
        rows.into_iter().partition(|r| r.matched != 0);
    // The attempts that passed, by (run, job name): a failure passed on rerun when a later
    // attempt of the same job of the same run did.
    let mut passed: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for r in reruns {
        let best = passed.entry((r.run_id, r.name)).or_insert(0);
        *best = (*best).max(r.run_attempt);
    }
    let mut commits = BTreeSet::new();
    let mut branches = BTreeSet::new();
    let mut prs = BTreeSet::new();
    let (mut first, mut last) = (u32::MAX, 0u32);
    for row in rows
        .into_iter()
        .filter(|r| r.id != job_id)
        .take(MAX_JOBS as usize)
    {
        commits.insert(row.head_sha.clone());
        if !row.head_branch.is_empty() {
            branches.insert(row.head_branch.clone());
        }
        prs.extend(row.pull_request_numbers.iter().copied());
        first = first.min(row.completed_at_unix);
        last = last.max(row.completed_at_unix);
        let passed_on_rerun = passed
            .get(&(row.run_id, row.name.clone()))
            .is_some_and(|attempt| *attempt > row.run_attempt);
        answer.passed_on_rerun += u64::from(passed_on_rerun);
        answer.jobs.push(SimilarJob {
            id: row.id,
            name: column_name(&row.workflow_name, &row.name),
            head_sha: row.head_sha,
            branch: row.head_branch,
            pull_requests: row.pull_request_numbers,
            conclusion: row.conclusion,
            run_id: row.run_id,
            run_attempt: row.run_attempt,
            completed_at: unix_instant(i64::from(row.completed_at_unix)),
            passed_on_rerun,
            html_url: format!(
                "https://github.com/{repository}/actions/runs/{}/job/{}",
                row.run_id, row.id
            ),
        });
    }
    answer.commits = commits.len() as u64;
    answer.branches = branches.into_iter().collect();
    answer.pull_requests = prs.into_iter().collect();
    if !answer.jobs.is_empty() {
        answer.first_seen = unix_instant(i64::from(first));
        answer.last_seen = unix_instant(i64::from(last));
    }
    Ok(answer)
}

/// `/similar` as a request asks for it.
pub async fn similar_from_request(
    clickhouse: &ClickHouse,
    path: RawPath<(String, String)>,
    query: RawQuery,
) -> Result<Similar, ApiError> {
    let (owner, repo) = params::path(path)?;
    let query = QueryParams::parse(query, &["job_id", "days"])?;
    let repository = params::repository(&owner, &repo)?;
    let job_id = match query.text("job_id") {
        Some(text) => params::positive("job_id", text)?,
        None => {
            return Err(ApiError::BadRequest(
                "job_id is required: the failed job to compare".into(),
            ))
        }
    };
    let days = query.number("days", 7, 1, MAX_DAYS)?;
    similar(clickhouse, repository.as_str(), job_id, days).await
}

/// A row of `failure_clusters`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct ClusterRow {
    signature: String,
    rule: String,
    pattern: String,
    captures: Vec<String>,
    jobs: u64,
    commits: u64,
    per_day: (Vec<u16>, Vec<u64>),
    first_seen_unix: u32,
    last_seen_unix: u32,
    example_job_id: i64,
}

/// One failure cluster: a signature and how often it was seen.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cluster {
    pub signature: String,
    pub rule: String,
    pub pattern: String,
    pub captures: Vec<String>,
    pub jobs: u64,
    pub commits: u64,
    /// Jobs per day of the window, oldest first (`days` entries, zeros included).
    pub trend: Vec<u64>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub example_job_id: i64,
}

/// The answer of `/clusters`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Clusters {
    pub repository: String,
    pub days: u64,
    /// The first day of `trend`, `YYYY-MM-DD`.
    pub first_day: String,
    pub page: u64,
    pub per_page: u64,
    pub has_more: bool,
    pub clusters: Vec<Cluster>,
}

/// The most frequent failure signatures of the last `days`.
pub async fn clusters(
    clickhouse: &ClickHouse,
    repository: &str,
    days: u64,
    paging: params::Paging,
) -> Result<Clusters, ApiError> {
    let until = now_unix().max(0) as u64;
    let since = until.saturating_sub(days * 86_400);
    let rows: Vec<ClusterRow> = fetch(
        clickhouse,
        &FAILURE_CLUSTERS,
        &[
            ("repo", Param::Str(repository.to_string())),
            ("since", Param::UInt(since)),
            ("until", Param::UInt(until)),
            ("offset", Param::UInt(paging.offset())),
            ("page_size", Param::UInt(paging.per_page + 1)),
        ],
    )
    .await?;
    let (rows, has_more) = paging.trim(rows);
    let first_day = (since / 86_400) as i64;
    let last_day = (until / 86_400) as i64;
    let clusters = rows
        .into_iter()
        .map(|r| {
            let mut trend = vec![0u64; (last_day - first_day + 1).max(1) as usize];
            for (day, n) in r.per_day.0.iter().zip(r.per_day.1.iter()) {
                let index = i64::from(*day) - first_day;
                if let Some(slot) = usize::try_from(index).ok().and_then(|i| trend.get_mut(i)) {
                    *slot += n;
                }
            }
            Cluster {
                signature: r.signature,
                rule: r.rule,
                pattern: r.pattern,
                captures: r.captures,
                jobs: r.jobs,
                commits: r.commits,
                trend,
                first_seen: unix_instant(i64::from(r.first_seen_unix)),
                last_seen: unix_instant(i64::from(r.last_seen_unix)),
                example_job_id: r.example_job_id,
            }
        })
        .collect();
    Ok(Clusters {
        repository: repository.to_string(),
        days,
        first_day: unix_instant(first_day * 86_400)
            .map(|d| d[..10].to_string())
            .unwrap_or_default(),
        page: paging.page,
        per_page: paging.per_page,
        has_more,
        clusters,
    })
}

/// `/clusters` as a request asks for it.
pub async fn clusters_from_request(
    clickhouse: &ClickHouse,
    path: RawPath<(String, String)>,
    query: RawQuery,
) -> Result<Clusters, ApiError> {
    let (owner, repo) = params::path(path)?;
    let query = QueryParams::parse(query, &["days", "page", "per_page"])?;
    let repository = params::repository(&owner, &repo)?;
    let days = query.number("days", 7, 1, MAX_DAYS)?;
    clusters(clickhouse, &repository, days, query.paging(50, 500)?).await
}
