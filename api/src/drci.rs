//! `GET /api/drci/{owner}/{repo}/{number}`: Dr.CI — for each head of a PR (the newest first,
//! earlier heads too), every job with its class and the reason in words, with the evidence.
//! The rules are `drci_rules.rs`; this file gathers what they read and renders the answer.
//!
//! **The merge base** comes from hudstream's own data, not from GitHub's compare API: for a
//! head first seen at time T, it is the newest commit of the PR's base branch pushed at or
//! before T (from our push stream); with no push of the base branch known, the PR's
//! `base.sha` (the base branch's tip when GitHub last described the PR). GitHub's compare
//! gives the true common ancestor; ours is the base branch as it stood when the head was
//! pushed — the same when the author rebased or merged the base, newer otherwise, in which
//! case a failure introduced on the base after the true merge base also counts as broken
//! trunk (which is what the author wants to know: it is not theirs).
//!
//! **Similar failures** are looked for among the verdicts made from the earliest merge base's
//! push minus 24 hours (and at most 7 days back, torchci's
//! `MAX_SEARCH_HOURS_FOR_QUERYING_SIMILAR_FAILURES`) until now, on commits other than the PR's
//! own heads. torchci stops at the head's commit time; hudstream keeps looking until now, so a
//! failure that appears elsewhere after the PR was pushed also clears it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use hudstream_runtime::clickhouse::{ClickHouse, Param};

use crate::commit::{FailedTestRow, RunRow};
use crate::disabled::{disabled_issues, disabling_issue};
pub use crate::drci_answer::{Drci, DrciFailure, DrciHead, DrciJob, MergeBase, Summary};
use crate::drci_rules::{classify, DisabledBy, Job, Known, SignatureSeen, Verdict};
use crate::error::ApiError;
use crate::job_rows::{column_name, display_conclusion, unix_instant};
use crate::params::{self, now_unix, QueryParams, RawPath, RawQuery};
use crate::pull::{PrCommitRow, PullRequestRow};
use crate::queries::{
    fetch, BRANCH_PUSHES, COMMIT_FAILED_TESTS, DRCI_JOBS, PR_COMMITS, PULL_REQUEST,
    RUNS_FOR_COMMIT, SIGNATURE_MATCHES, TESTS_FAILED_ELSEWHERE,
};
use crate::test_results::status_of;
use crate::unstable::open_unstable_issues;
use hudstream_junit::status::Status;
use hudstream_schemas::test_report::test_id;

/// The longest a similar-failure search looks back (torchci: 7 days).
pub const SIMILAR_MAX_DAYS: i64 = 7;
/// How far before the merge base a similar failure may be (torchci: 24 hours).
const SIMILAR_BEFORE_BASE_S: i64 = 86_400;
/// At most this many heads are classified (newest first).
const MAX_HEADS: usize = 10;

/// A row of `drci_jobs`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct DrciJobRow {
    head_sha: String,
    id: i64,
    run_id: i64,
    run_attempt: i64,
    workflow_name: String,
    name: String,
    status: String,
    conclusion: String,
    created_at_unix: u32,
    #[allow(dead_code)] // read by position
    completed_at_unix: u32,
    runner_name: String,
    html_url: String,
    failure_outcome: String,
    failure_rule: String,
    failure_line: String,
    failure_captures: Vec<String>,
    failure_context: Vec<String>,
    failure_signature: String,
}

/// A row of `tests_failed_elsewhere`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct TestSeenRow {
    test_id: u64,
    jobs: u64,
    commits: u64,
}

/// A row of `branch_pushes`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct PushRow {
    sha: String,
    pushed_at_unix: u32,
}

/// A row of `signature_matches`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct MatchRow {
    signature: String,
    jobs: u64,
    commits: u64,
    branches: Vec<String>,
    example_job_ids: Vec<i64>,
    first_seen_unix: u32,
    last_seen_unix: u32,
}

/// Dr.CI for PR `number` of `repository`.
pub async fn drci(
    clickhouse: &ClickHouse,
    repository: &str,
    number: i64,
) -> Result<Drci, ApiError> {
    let repo = || ("repo", Param::Str(repository.to_string()));
    let pr_params = [repo(), ("number", Param::Int(number))];
    let (pr, heads, unstable, disabled) = tokio::join!(
        fetch::<PullRequestRow>(clickhouse, &PULL_REQUEST, &pr_params),
        fetch::<PrCommitRow>(clickhouse, &PR_COMMITS, &pr_params),
        open_unstable_issues(clickhouse, repository),
        disabled_issues(clickhouse, repository),
    );
    let (pr, mut heads, unstable, disabled) =
        (pr?.into_iter().next(), heads?, unstable?, disabled?);
    if pr.is_none() && heads.is_empty() {
        return Err(ApiError::NotFound(format!(
            "nothing is known of pull request #{number} in {repository}"
        )));
    }
    heads.truncate(MAX_HEADS);
    let head_now = pr.as_ref().map(|p| p.head_sha.clone()).unwrap_or_default();
    let base_ref = pr
        .as_ref()
        .map(|p| p.base_ref.clone())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "main".into());
    let pr_base_sha = pr.as_ref().map(|p| p.base_sha.clone()).unwrap_or_default();
    let labels = pr.as_ref().map(|p| p.labels.clone()).unwrap_or_default();

    // Merge bases: the base branch's newest push at or before each head was first seen.
    let newest = heads
        .iter()
        .map(|h| h.first_seen.seconds())
        .max()
        .unwrap_or(0);
    let oldest = heads
        .iter()
        .map(|h| h.first_seen.seconds())
        .min()
        .unwrap_or(0);
    let pushes: Vec<PushRow> = fetch(
        clickhouse,
        &BRANCH_PUSHES,
        &[
            repo(),
            ("ref", Param::Str(format!("refs/heads/{base_ref}"))),
            (
                "since",
                Param::UInt((oldest - SIMILAR_MAX_DAYS * 86_400).max(0) as u64),
            ),
            ("until", Param::UInt(newest.max(0) as u64)),
            ("limit", Param::UInt(1000)),
        ],
    )
    .await?;
    // A head that is itself on the base branch (a PR landed, or pushed there too) is no base.
    let head_set: BTreeSet<&str> = heads.iter().map(|h| h.sha.as_str()).collect();
    let pushes: Vec<PushRow> = pushes
        .into_iter()
        .filter(|p| !head_set.contains(p.sha.as_str()))
        .collect();
    let merge_bases: Vec<Option<MergeBase>> = heads
        .iter()
        .map(|h| merge_base_of(h.first_seen.seconds(), &pushes, &pr_base_sha))
        .collect();

    // Every job of the heads and their merge bases, and the heads' failing tests.
    let mut shas: BTreeSet<String> = heads.iter().map(|h| h.sha.clone()).collect();
    shas.extend(merge_bases.iter().flatten().map(|b| b.sha.clone()));
    let rows: Vec<DrciJobRow> = fetch(
        clickhouse,
        &DRCI_JOBS,
        &[
            repo(),
            ("shas", Param::StrArray(shas.into_iter().collect())),
        ],
    )
    .await?;
    let tests = futures::future::try_join_all(heads.iter().map(|h| async {
        let params = [repo(), ("sha", Param::Str(h.sha.clone()))];
        fetch::<FailedTestRow>(clickhouse, &COMMIT_FAILED_TESTS, &params).await
    }))
    .await?;
    // Workflow runs waiting for approval (or that failed to start) have no job: each is one
    // pseudo-job, as torchci's `commit_jobs_query` adds them.
    let runs = futures::future::try_join_all(heads.iter().map(|h| async {
        let params = [repo(), ("sha", Param::Str(h.sha.clone()))];
        fetch::<RunRow>(clickhouse, &RUNS_FOR_COMMIT, &params).await
    }))
    .await?;
    let mut failing_tests: BTreeMap<i64, Vec<(String, String, String)>> = BTreeMap::new();
    for t in tests.into_iter().flatten() {
        if status_of(t.runs, t.failures, t.skips, t.marked) == Status::Failure {
            failing_tests
                .entry(t.job_id)
                .or_default()
                .push((t.file, t.classname, t.name));
        }
    }
    let mut by_sha = group_attempts(&rows);
    let rows_by_id: BTreeMap<i64, DrciJobRow> = rows.into_iter().map(|r| (r.id, r)).collect();
    let mut pseudo_jobs: BTreeMap<i64, (String, String)> = BTreeMap::new();
    let with_jobs: BTreeSet<i64> = rows_by_id.values().map(|r| r.run_id).collect();
    for (head, runs) in heads.iter().zip(runs) {
        for run in runs {
            if matches!(
                run.conclusion.as_str(),
                "action_required" | "startup_failure"
            ) && !with_jobs.contains(&run.id)
            {
                by_sha.entry(head.sha.clone()).or_default().push(Job {
                    id: run.id,
                    name: run.name.clone(),
                    conclusion: run.conclusion.clone(),
                    runner_name: String::new(),
                    verdict: Verdict::default(),
                    failed_attempts: Vec::new(),
                    run_attempt: run.run_attempt,
                    failing_tests: Vec::new(),
                });
                pseudo_jobs.insert(run.id, (run.conclusion, run.html_url));
            }
        }
    }
    for jobs in by_sha.values_mut() {
        for job in jobs.iter_mut() {
            if let Some(tests) = failing_tests.get(&job.id) {
                job.failing_tests = tests.clone();
            }
        }
    }

    // Where else the heads' failure signatures were seen.
    let head_shas: Vec<String> = heads.iter().map(|h| h.sha.clone()).collect();
    let signatures: BTreeSet<String> = head_shas
        .iter()
        .filter_map(|sha| by_sha.get(sha))
        .flatten()
        .map(|j| j.verdict.signature.clone())
        .filter(|s| !s.is_empty())
        .collect();
    let now = now_unix();
    // The earliest merge base's push (a base from the PR's base sha has no push time).
    let earliest_base = merge_bases
        .iter()
        .flatten()
        .filter_map(|b| pushes.iter().find(|p| p.sha == b.sha))
        .map(|p| i64::from(p.pushed_at_unix))
        .min()
        .unwrap_or(oldest);
    let since = (earliest_base - SIMILAR_BEFORE_BASE_S).max(now - SIMILAR_MAX_DAYS * 86_400);
    let similar_days = ((now - since) as f64 / 86_400.0).ceil().max(1.0) as i64;
    let similar: BTreeMap<String, SignatureSeen> = if signatures.is_empty() {
        BTreeMap::new()
    } else {
        fetch::<MatchRow>(
            clickhouse,
            &SIGNATURE_MATCHES,
            &[
                repo(),
                (
                    "signatures",
                    Param::StrArray(signatures.into_iter().collect()),
                ),
                ("exclude_shas", Param::StrArray(head_shas.clone())),
                ("since", Param::UInt(since.max(0) as u64)),
                ("until", Param::UInt(now.max(0) as u64)),
            ],
        )
        .await?
        .into_iter()
        .map(|m| {
            (
                m.signature,
                SignatureSeen {
                    jobs: m.jobs,
                    commits: m.commits,
                    branches: m.branches.into_iter().filter(|b| !b.is_empty()).collect(),
                    example_job_ids: m.example_job_ids,
                    first_seen: unix_instant(i64::from(m.first_seen_unix)),
                    last_seen: unix_instant(i64::from(m.last_seen_unix)),
                },
            )
        })
        .collect()
    };

    // Where else the heads' failing tests failed.
    let head_jobs: Vec<&Job> = head_shas
        .iter()
        .filter_map(|sha| by_sha.get(sha))
        .flatten()
        .collect();
    let test_ids: BTreeSet<u64> = head_jobs
        .iter()
        .flat_map(|j| j.failing_tests.iter())
        .map(|(file, class, name)| test_id(file, class, name))
        .collect();
    let tests_seen: BTreeMap<u64, (u64, u64)> = if test_ids.is_empty() {
        BTreeMap::new()
    } else {
        fetch::<TestSeenRow>(
            clickhouse,
            &TESTS_FAILED_ELSEWHERE,
            &[
                repo(),
                ("test_ids", Param::UIntArray(test_ids.into_iter().collect())),
                ("exclude_shas", Param::StrArray(head_shas.clone())),
                (
                    "exclude_jobs",
                    Param::IntArray(
                        rows_by_id
                            .values()
                            .filter(|r| head_shas.contains(&r.head_sha))
                            .map(|r| r.id)
                            .collect(),
                    ),
                ),
                ("since", Param::UInt(since.max(0) as u64)),
                ("until", Param::UInt(now.max(0) as u64)),
            ],
        )
        .await?
        .into_iter()
        .map(|r| (r.test_id, (r.jobs, r.commits)))
        .collect()
    };
    let tests_seen_by =
        |file: &str, class: &str, name: &str| tests_seen.get(&test_id(file, class, name)).copied();
    let disabled_by = |_file: &str, classname: &str, name: &str| {
        disabling_issue(&disabled, name, classname).map(|issue| DisabledBy {
            number: issue.number,
            title: issue.title.clone(),
            url: issue.html_url.clone(),
        })
    };
    let empty: Vec<Job> = Vec::new();
    let mut out_heads = Vec::new();
    for (head, merge_base) in heads.iter().zip(merge_bases) {
        let base_jobs = merge_base
            .as_ref()
            .map(|b| by_sha.get(&b.sha).unwrap_or(&empty));
        let known = Known {
            pr_labels: &labels,
            unstable: &unstable,
            merge_base: merge_base
                .as_ref()
                .zip(base_jobs)
                .map(|(b, jobs)| (b.sha.as_str(), jobs.as_slice())),
            similar: &similar,
            similar_days,
            disabled: &disabled_by,
            tests_seen: &tests_seen_by,
        };
        let mut summary = Summary::default();
        let mut jobs: Vec<DrciJob> = by_sha
            .get(&head.sha)
            .unwrap_or(&empty)
            .iter()
            .map(|job| {
                let decision = classify(job, &known);
                summary.add(decision.class);
                let row = rows_by_id.get(&job.id);
                let pseudo = pseudo_jobs.get(&job.id);
                DrciJob {
                    id: job.id,
                    name: job.name.clone(),
                    conclusion: row
                        .map(|r| display_conclusion(&r.status, &r.conclusion))
                        .or_else(|| pseudo.map(|p| p.0.clone()))
                        .unwrap_or_default(),
                    run_attempt: job.run_attempt,
                    class: decision.class,
                    reason: decision.reason,
                    evidence: decision.evidence,
                    failure: (job.verdict.outcome == "matched").then(|| DrciFailure {
                        rule: job.verdict.rule.clone(),
                        line: job.verdict.line.clone(),
                        captures: job.verdict.captures.clone(),
                        signature: job.verdict.signature.clone(),
                    }),
                    failing_tests: job
                        .failing_tests
                        .iter()
                        .map(|(file, class, name)| format!("{file}::{class}::{name}"))
                        .collect(),
                    html_url: row
                        .map(|r| r.html_url.clone())
                        .or_else(|| pseudo.map(|p| p.1.clone()))
                        .unwrap_or_default(),
                }
            })
            .collect();
        jobs.sort_by(|a, b| a.class.cmp(&b.class).then_with(|| a.name.cmp(&b.name)));
        out_heads.push(DrciHead {
            sha: head.sha.clone(),
            is_head: head.sha == head_now,
            first_seen: unix_instant(head.first_seen.seconds()),
            merge_base,
            summary,
            jobs,
        });
    }
    let current = out_heads
        .iter()
        .find(|h| h.is_head)
        .or(out_heads.first())
        .map(|h| (h.sha.clone(), h.summary.clone()))
        .unwrap_or_default();
    Ok(Drci {
        repository: repository.to_string(),
        number,
        title: pr.as_ref().map(|p| p.title.clone()).unwrap_or_default(),
        base_ref,
        head_sha: current.0,
        summary: current.1,
        heads: out_heads,
    })
}

/// The newest push of the base branch at or before `first_seen`; else the PR's base sha.
fn merge_base_of(first_seen: i64, pushes: &[PushRow], pr_base_sha: &str) -> Option<MergeBase> {
    // `pushes` is newest first.
    if let Some(p) = pushes
        .iter()
        .find(|p| i64::from(p.pushed_at_unix) <= first_seen)
    {
        return Some(MergeBase {
            sha: p.sha.clone(),
            pushed_at: unix_instant(i64::from(p.pushed_at_unix)),
            chosen_by: "base_branch_push".into(),
        });
    }
    (!pr_base_sha.is_empty()).then(|| MergeBase {
        sha: pr_base_sha.to_string(),
        pushed_at: None,
        chosen_by: "pull_request_base_sha".into(),
    })
}

/// Per commit, each job's newest attempt (by workflow and job name), with the ids of its
/// earlier failed attempts.
fn group_attempts(rows: &[DrciJobRow]) -> BTreeMap<String, Vec<Job>> {
    let mut cells: BTreeMap<(&str, &str, &str), Vec<&DrciJobRow>> = BTreeMap::new();
    for row in rows {
        cells
            .entry((&row.head_sha, &row.workflow_name, &row.name))
            .or_default()
            .push(row);
    }
    let mut out: BTreeMap<String, Vec<Job>> = BTreeMap::new();
    for ((sha, workflow, name), mut attempts) in cells {
        attempts.sort_by_key(|r| (r.run_attempt, r.created_at_unix, r.id));
        let Some(last) = attempts.pop() else { continue };
        let failed_attempts = attempts
            .iter()
            .filter(|r| matches!(r.conclusion.as_str(), "failure" | "timed_out" | "cancelled"))
            .map(|r| r.id)
            .collect();
        out.entry(sha.to_string()).or_default().push(Job {
            id: last.id,
            name: column_name(workflow, name),
            conclusion: last.conclusion.clone(),
            runner_name: last.runner_name.clone(),
            verdict: Verdict {
                outcome: last.failure_outcome.clone(),
                rule: last.failure_rule.clone(),
                line: last.failure_line.clone(),
                captures: last.failure_captures.clone(),
                context: last.failure_context.clone(),
                signature: last.failure_signature.clone(),
            },
            failed_attempts,
            run_attempt: last.run_attempt,
            failing_tests: Vec::new(),
        });
    }
    out
}

/// Dr.CI for the PR a request names.
pub async fn from_request(
    clickhouse: &ClickHouse,
    path: RawPath<(String, String, String)>,
    query: RawQuery,
) -> Result<Drci, ApiError> {
    let (owner, repo, number) = params::path(path)?;
    QueryParams::parse(query, &[])?;
    let repository = params::repository(&owner, &repo)?;
    let number = params::positive("the pull request number", &number)?;
    drci(clickhouse, &repository, number).await
}
