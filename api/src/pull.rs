//! The PR page's data: `GET /api/{owner}/{repo}/pull/{number}?page&per_page` — the PR, every
//! head it has had (heads force-pushed away included, from the workflow runs that name the
//! PR), the jobs of each, and the PR's OOT results.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use hudstream_runtime::clickhouse::{ClickHouse, DateTime, Param};

use crate::commit::jobs_of;
use crate::error::ApiError;
use crate::job_rows::{instant_of, title, JobSummary};
use crate::oot::{pr_results, PrResults};
use crate::params::{self, Paging, QueryParams, RawPath, RawQuery};
use crate::queries::{fetch, PR_COMMITS, PULL_REQUEST};

/// The PR's current state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PullRequestInfo {
    pub number: i64,
    pub title: String,
    pub state: String,
    pub draft: bool,
    pub merged: bool,
    pub author: String,
    pub head_sha: String,
    pub head_ref: String,
    pub base_ref: String,
    pub labels: Vec<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub closed_at: Option<String>,
    pub html_url: String,
}

/// A row of `pull_request`.
#[derive(Debug, clickhouse::Row, Deserialize)]
pub(crate) struct PullRequestRow {
    pub number: i64,
    #[allow(dead_code)] // a column of the query: rows are read by position
    pub version: u64,
    pub state: String,
    pub draft: u8,
    pub merged: u8,
    pub title: String,
    pub author_login: String,
    pub head_sha: String,
    pub head_ref: String,
    pub base_ref: String,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    pub closed_at: DateTime,
    pub html_url: String,
    pub labels: Vec<String>,
    /// The base branch's tip when GitHub last described the PR.
    pub base_sha: String,
}

/// A row of `pr_commits`.
#[derive(Debug, clickhouse::Row, Deserialize)]
pub(crate) struct PrCommitRow {
    pub sha: String,
    pub first_seen: DateTime,
    #[allow(dead_code)] // a column of the query: rows are read by position
    pub last_seen: DateTime,
    pub sources: Vec<String>,
    pub message: String,
}

/// How many of a head's jobs ended each way.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Counts {
    pub success: u64,
    pub failure: u64,
    pub pending: u64,
    pub other: u64,
}

/// One head of the PR and its jobs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PrCommit {
    pub sha: String,
    pub title: String,
    pub first_seen: Option<String>,
    /// Where the head was learnt of: `workflow_run`, `pull_request` (the current head).
    pub sources: Vec<String>,
    /// The PR's head now.
    pub is_head: bool,
    pub counts: Counts,
    pub jobs: Vec<JobSummary>,
}

/// The PR page.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct PullPage {
    pub repository: String,
    pub number: i64,
    /// `null` when no pull_request event was seen, only runs naming it.
    pub pull_request: Option<PullRequestInfo>,
    pub page: u64,
    pub per_page: u64,
    pub has_more: bool,
    /// Newest first.
    pub commits: Vec<PrCommit>,
    pub oot: PrResults,
}

fn counts(jobs: &[JobSummary]) -> Counts {
    let mut c = Counts::default();
    for j in jobs {
        match j.conclusion.as_str() {
            "success" => c.success += 1,
            "failure" | "timed_out" => c.failure += 1,
            "queued" | "pending" => c.pending += 1,
            _ => c.other += 1,
        }
    }
    c
}

pub async fn pull_page(
    clickhouse: &ClickHouse,
    repository: &str,
    number: i64,
    paging: Paging,
) -> Result<PullPage, ApiError> {
    let params = [
        ("repo", Param::Str(repository.to_string())),
        ("number", Param::Int(number)),
    ];
    let oot_paging = Paging {
        page: 1,
        per_page: 1000,
    };
    // The page's heads' jobs are asked for as soon as the heads are known, while the PR and
    // its OOT results are still being read (the jobs are the page's longest read).
    let heads_and_jobs = async {
        let heads = fetch::<PrCommitRow>(clickhouse, &PR_COMMITS, &params).await?;
        let known = !heads.is_empty();
        let (heads, has_more) = paging.slice(heads);
        let jobs = if heads.is_empty() {
            Vec::new()
        } else {
            jobs_of(
                clickhouse,
                repository,
                heads.iter().map(|h| h.sha.clone()).collect(),
            )
            .await?
        };
        Ok::<_, ApiError>((known, heads, has_more, jobs))
    };
    let (pr, heads_and_jobs, oot) = tokio::join!(
        fetch::<PullRequestRow>(clickhouse, &PULL_REQUEST, &params),
        heads_and_jobs,
        pr_results(clickhouse, repository, number, oot_paging),
    );
    let (pr, (known_heads, heads, has_more, jobs), oot) =
        (pr?.into_iter().next(), heads_and_jobs?, oot?);
    if pr.is_none() && !known_heads && oot.jobs.is_empty() {
        return Err(ApiError::NotFound(format!(
            "nothing is known of pull request #{number} in {repository}"
        )));
    }
    let head_now = pr.as_ref().map(|p| p.head_sha.clone()).unwrap_or_default();
    let mut jobs_by_sha: BTreeMap<String, Vec<JobSummary>> = BTreeMap::new();
    for job in jobs {
        jobs_by_sha
            .entry(job.head_sha.clone())
            .or_default()
            .push(job);
    }
    let commits = heads
        .into_iter()
        .map(|h| {
            let jobs = jobs_by_sha.remove(&h.sha).unwrap_or_default();
            PrCommit {
                is_head: h.sha == head_now,
                title: title(&h.message),
                first_seen: instant_of(h.first_seen),
                sources: h.sources,
                counts: counts(&jobs),
                jobs,
                sha: h.sha,
            }
        })
        .collect();
    Ok(PullPage {
        repository: repository.to_string(),
        number,
        pull_request: pr.map(|p| PullRequestInfo {
            number: p.number,
            title: p.title,
            state: p.state,
            draft: p.draft != 0,
            merged: p.merged != 0,
            author: p.author_login,
            head_sha: p.head_sha,
            head_ref: p.head_ref,
            base_ref: p.base_ref,
            labels: p.labels,
            created_at: instant_of(p.created_at),
            updated_at: instant_of(p.updated_at),
            closed_at: instant_of(p.closed_at),
            html_url: p.html_url,
        }),
        page: paging.page,
        per_page: paging.per_page,
        has_more,
        commits,
        oot,
    })
}

/// The PR page a request asks for: 20 heads a page by default.
pub async fn from_request(
    clickhouse: &ClickHouse,
    path: RawPath<(String, String, String)>,
    query: RawQuery,
) -> Result<PullPage, ApiError> {
    let (owner, repo, number) = params::path(path)?;
    let query = QueryParams::parse(query, &["page", "per_page"])?;
    let repository = params::repository(&owner, &repo)?;
    let number = params::positive("the pull request number", &number)?;
    pull_page(clickhouse, &repository, number, query.paging(20, 100)?).await
}
