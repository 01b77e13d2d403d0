//! Trunk health, per branch (`reference/test-reports.md` §5):
//!
//! - `GET /api/trunk/{owner}/{repo}/signal?branch&days` — time to signal per commit: push →
//!   last job done, and push → first failure (torchci's `time_to_signal` / time to red);
//! - `GET /api/trunk/{owner}/{repo}/red?branch&days` — red rate per day: the share of commits
//!   with a real failure (a cell that failed and did not pass on rerun) and of commits red only
//!   through flaky cells (failed, then passed on rerun); unstable jobs do not count;
//! - `GET /api/trunk/{owner}/{repo}/queue?days` — queue time percentiles per runner label and
//!   day (all branches: runners are shared);
//! - `GET /api/trunk/{owner}/{repo}/broken?branch&days` — "broken trunk": a job (shard
//!   suffix removed) that failed for real on ≥ 3 consecutive commits of the branch among those
//!   that ran it; `broken_now` when such a run reaches the newest commit that ran the job.
//!
//! A commit's time is when it was pushed (our push stream). The API also keeps
//! `hudstream_trunk_broken_jobs{repository,branch}` current for the branches
//! `[api] watch_trunks` names, which the shipped Prometheus alert reads.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use hudstream_runtime::clickhouse::{ClickHouse, Param};
use hudstream_runtime::shutdown::CancellationToken;

use crate::error::ApiError;
use crate::job_rows::unix_instant;
use crate::params::{self, now_unix, QueryParams, RawPath, RawQuery};
use crate::queries::{
    fetch, BRANCH_PUSHES, QUEUE_TIMES, TRUNK_FAILING_JOBS, TRUNK_RED, TRUNK_SIGNAL,
    TRUNK_WORKFLOW_RUNS,
};
use crate::unstable::{open_unstable_issues, sql_prefixes};

/// Consecutive failing commits that make a job "broken trunk" (torchci's alert: 3).
pub const BROKEN_AFTER: u64 = 3;
const MAX_DAYS: u64 = 90;
/// Most commits a window may hold.
const MAX_COMMITS: u64 = 20_000;

/// A checked trunk request.
#[derive(Debug, Clone)]
pub struct TrunkQuery {
    pub repository: String,
    pub branch: String,
    pub days: u64,
    pub since: u64,
    pub until: u64,
}

impl TrunkQuery {
    pub fn from_request(
        path: RawPath<(String, String)>,
        query: RawQuery,
    ) -> Result<Self, ApiError> {
        let (owner, repo) = params::path(path)?;
        let query = QueryParams::parse(query, &["branch", "days"])?;
        let repository = params::repository(&owner, &repo)?;
        let branch = params::branch(query.text("branch").unwrap_or("main"))?;
        let days = query.number("days", 30, 1, MAX_DAYS)?;
        Ok(Self::new(repository, branch, days))
    }

    pub fn new(repository: String, branch: String, days: u64) -> Self {
        let until = now_unix().max(0) as u64 + 1;
        Self {
            repository,
            branch,
            days,
            since: until.saturating_sub(days * 86_400),
            until,
        }
    }

    fn params(&self) -> Vec<(&'static str, Param)> {
        vec![
            ("repo", Param::Str(self.repository.clone())),
            ("ref", Param::Str(format!("refs/heads/{}", self.branch))),
            ("since", Param::UInt(self.since)),
            ("until", Param::UInt(self.until)),
        ]
    }
}

fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

// ---------------------------------------------------------------------------------- signal

#[derive(Debug, clickhouse::Row, Deserialize)]
struct SignalRow {
    sha: String,
    pushed_at_unix: u32,
    jobs: u64,
    completed: u64,
    last_completed_unix: u32,
    first_failure_unix: u32,
}

/// One commit's time to signal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommitSignal {
    pub sha: String,
    pub pushed_at: Option<String>,
    pub jobs: u64,
    pub completed: u64,
    /// Push → last job completed, once every job has; `null` while any runs.
    pub time_to_signal_s: Option<i64>,
    /// Push → first failure; `null` without one.
    pub time_to_red_s: Option<i64>,
}

/// Percentiles of a duration, seconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: Option<i64>,
    pub p90: Option<i64>,
    pub max: Option<i64>,
}

impl Percentiles {
    fn of(mut values: Vec<i64>) -> Self {
        values.sort_unstable();
        Self {
            count: values.len() as u64,
            p50: percentile(&values, 0.5),
            p90: percentile(&values, 0.9),
            max: values.last().copied(),
        }
    }
}

/// `/signal`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Signal {
    pub repository: String,
    pub branch: String,
    pub days: u64,
    pub time_to_signal: Percentiles,
    pub time_to_red: Percentiles,
    /// Newest first.
    pub commits: Vec<CommitSignal>,
}

pub async fn signal(clickhouse: &ClickHouse, q: &TrunkQuery) -> Result<Signal, ApiError> {
    let rows: Vec<SignalRow> = fetch(clickhouse, &TRUNK_SIGNAL, &q.params()).await?;
    let commits: Vec<CommitSignal> = rows
        .into_iter()
        .map(|r| {
            let pushed = i64::from(r.pushed_at_unix);
            let done = r.jobs > 0 && r.completed == r.jobs && r.last_completed_unix > 0;
            CommitSignal {
                sha: r.sha,
                pushed_at: unix_instant(pushed),
                jobs: r.jobs,
                completed: r.completed,
                time_to_signal_s: done.then(|| (i64::from(r.last_completed_unix) - pushed).max(0)),
                time_to_red_s: (r.first_failure_unix > 0)
                    .then(|| (i64::from(r.first_failure_unix) - pushed).max(0)),
            }
        })
        .collect();
    Ok(Signal {
        repository: q.repository.clone(),
        branch: q.branch.clone(),
        days: q.days,
        time_to_signal: Percentiles::of(
            commits.iter().filter_map(|c| c.time_to_signal_s).collect(),
        ),
        time_to_red: Percentiles::of(commits.iter().filter_map(|c| c.time_to_red_s).collect()),
        commits,
    })
}

// ---------------------------------------------------------------------------------- red

#[derive(Debug, clickhouse::Row, Deserialize)]
struct RedRow {
    sha: String,
    real_jobs: u64,
    flaky_jobs: u64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct PushRow {
    sha: String,
    pushed_at_unix: u32,
}

/// One day's red rate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RedDay {
    /// `YYYY-MM-DD` (UTC), by push time.
    pub day: String,
    /// Commits pushed that day that ran jobs.
    pub commits: u64,
    /// With a real failure.
    pub red: u64,
    /// Red only through flaky cells.
    pub flaky: u64,
    pub red_rate: f64,
    pub flaky_rate: f64,
}

/// `/red`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Red {
    pub repository: String,
    pub branch: String,
    pub days: u64,
    /// Over the whole window.
    pub commits: u64,
    pub red: u64,
    pub flaky: u64,
    pub red_rate: f64,
    pub flaky_rate: f64,
    /// Oldest first.
    pub per_day: Vec<RedDay>,
    /// The open UNSTABLE issues whose jobs were left out.
    pub unstable_issues: Vec<i64>,
}

fn rate(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        (n as f64 / of as f64 * 10_000.0).round() / 10_000.0
    }
}

async fn pushes(clickhouse: &ClickHouse, q: &TrunkQuery) -> Result<Vec<PushRow>, ApiError> {
    let mut params = q.params();
    params.push(("limit", Param::UInt(MAX_COMMITS)));
    fetch(clickhouse, &BRANCH_PUSHES, &params).await
}

pub async fn red(clickhouse: &ClickHouse, q: &TrunkQuery) -> Result<Red, ApiError> {
    let unstable = open_unstable_issues(clickhouse, &q.repository).await?;
    let mut params = q.params();
    params.push(("unstable", Param::StrArray(sql_prefixes(&unstable))));
    let (cells, pushes) = tokio::join!(
        fetch::<RedRow>(clickhouse, &TRUNK_RED, &params),
        pushes(clickhouse, q)
    );
    let (cells, pushes) = (cells?, pushes?);
    let pushed: BTreeMap<String, i64> = pushes
        .into_iter()
        .map(|p| (p.sha, i64::from(p.pushed_at_unix)))
        .collect();
    let mut days: BTreeMap<i64, RedDay> = BTreeMap::new();
    for c in cells {
        let Some(at) = pushed.get(&c.sha) else {
            continue;
        };
        let day_index = at.div_euclid(86_400);
        let day = days.entry(day_index).or_insert_with(|| RedDay {
            day: unix_instant(day_index * 86_400)
                .map(|d| d[..10].to_string())
                .unwrap_or_default(),
            commits: 0,
            red: 0,
            flaky: 0,
            red_rate: 0.0,
            flaky_rate: 0.0,
        });
        day.commits += 1;
        if c.real_jobs > 0 {
            day.red += 1;
        } else if c.flaky_jobs > 0 {
            day.flaky += 1;
        }
    }
    let mut per_day: Vec<RedDay> = days.into_values().collect();
    for d in &mut per_day {
        d.red_rate = rate(d.red, d.commits);
        d.flaky_rate = rate(d.flaky, d.commits);
    }
    let commits = per_day.iter().map(|d| d.commits).sum();
    let red = per_day.iter().map(|d| d.red).sum();
    let flaky = per_day.iter().map(|d| d.flaky).sum();
    Ok(Red {
        repository: q.repository.clone(),
        branch: q.branch.clone(),
        days: q.days,
        commits,
        red,
        flaky,
        red_rate: rate(red, commits),
        flaky_rate: rate(flaky, commits),
        per_day,
        unstable_issues: unstable.iter().map(|i| i.number).collect(),
    })
}

// ---------------------------------------------------------------------------------- queue

#[derive(Debug, clickhouse::Row, Deserialize)]
struct QueueRow {
    label: String,
    day_unix: u32,
    jobs: u64,
    percentiles: Vec<f64>,
    max_s: f64,
}

/// Queue times of one runner label on one day.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QueueDay {
    pub day: String,
    pub jobs: u64,
    pub p50_s: f64,
    pub p90_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
}

/// One runner label's queue times.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QueueLabel {
    pub label: String,
    pub jobs: u64,
    /// Oldest first.
    pub per_day: Vec<QueueDay>,
}

/// `/queue`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Queue {
    pub repository: String,
    pub days: u64,
    /// Busiest label first.
    pub labels: Vec<QueueLabel>,
}

pub async fn queue(clickhouse: &ClickHouse, q: &TrunkQuery) -> Result<Queue, ApiError> {
    let rows: Vec<QueueRow> = fetch(
        clickhouse,
        &QUEUE_TIMES,
        &[
            ("repo", Param::Str(q.repository.clone())),
            ("since", Param::UInt(q.since)),
            ("until", Param::UInt(q.until)),
        ],
    )
    .await?;
    let mut labels: BTreeMap<String, QueueLabel> = BTreeMap::new();
    for r in rows {
        let at = |i: usize| r.percentiles.get(i).copied().unwrap_or(0.0);
        let day = QueueDay {
            day: unix_instant(i64::from(r.day_unix))
                .map(|d| d[..10].to_string())
                .unwrap_or_default(),
            jobs: r.jobs,
            p50_s: at(0),
            p90_s: at(1),
            p99_s: at(2),
            max_s: r.max_s,
        };
        let label = labels.entry(r.label.clone()).or_insert_with(|| QueueLabel {
            label: r.label,
            jobs: 0,
            per_day: Vec::new(),
        });
        label.jobs += day.jobs;
        label.per_day.push(day);
    }
    let mut labels: Vec<QueueLabel> = labels.into_values().collect();
    labels.sort_by(|a, b| b.jobs.cmp(&a.jobs).then_with(|| a.label.cmp(&b.label)));
    Ok(Queue {
        repository: q.repository.clone(),
        days: q.days,
        labels,
    })
}

// ---------------------------------------------------------------------------------- broken

#[derive(Debug, clickhouse::Row, Deserialize)]
struct FailingJobRow {
    workflow: String,
    cell: String,
    failed_shas: Vec<String>,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct WorkflowRunsRow {
    workflow: String,
    shas: Vec<String>,
}

/// A run of consecutive failing commits of one job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BrokenRun {
    /// `workflow / job (config)`, shard suffix removed.
    pub job: String,
    /// Consecutive commits (among those that ran the job) it failed on.
    pub commits: u64,
    pub first_sha: String,
    pub last_sha: String,
    pub first_pushed_at: Option<String>,
    pub last_pushed_at: Option<String>,
    /// The run reaches the newest commit that ran the job: trunk is broken now.
    pub ongoing: bool,
}

/// `/broken`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Broken {
    pub repository: String,
    pub branch: String,
    pub days: u64,
    pub threshold: u64,
    pub broken_now: bool,
    /// Ongoing runs first, then the longest.
    pub runs: Vec<BrokenRun>,
}

/// A job's failures and the commits it ran on (`None`: every commit of the branch).
pub struct JobRecord<'a> {
    pub job: String,
    pub failed: BTreeSet<String>,
    pub ran: Option<&'a BTreeSet<String>>,
}

/// The runs of ≥ `threshold` consecutive failures of each job, among the commits it ran on,
/// commits ordered by push.
pub fn broken_runs(
    jobs: &[JobRecord<'_>],
    pushes_newest_first: &[(String, i64)],
    threshold: u64,
) -> Vec<BrokenRun> {
    let mut out = Vec::new();
    for JobRecord { job, failed, ran } in jobs {
        // Oldest first, only commits that ran the job.
        let ran: Vec<&(String, i64)> = pushes_newest_first
            .iter()
            .rev()
            .filter(|(sha, _)| failed.contains(sha) || ran.is_none_or(|r| r.contains(sha)))
            .collect();
        let mut i = 0;
        while i < ran.len() {
            if !failed.contains(&ran[i].0) {
                i += 1;
                continue;
            }
            let start = i;
            while i < ran.len() && failed.contains(&ran[i].0) {
                i += 1;
            }
            let length = (i - start) as u64;
            if length >= threshold {
                out.push(BrokenRun {
                    job: job.clone(),
                    commits: length,
                    first_sha: ran[start].0.clone(),
                    last_sha: ran[i - 1].0.clone(),
                    first_pushed_at: unix_instant(ran[start].1),
                    last_pushed_at: unix_instant(ran[i - 1].1),
                    ongoing: i == ran.len(),
                });
            }
        }
    }
    out.sort_by(|a, b| {
        b.ongoing
            .cmp(&a.ongoing)
            .then_with(|| b.commits.cmp(&a.commits))
            .then_with(|| a.job.cmp(&b.job))
    });
    out
}

pub async fn broken(clickhouse: &ClickHouse, q: &TrunkQuery) -> Result<Broken, ApiError> {
    let unstable = open_unstable_issues(clickhouse, &q.repository).await?;
    let mut params = q.params();
    params.push(("unstable", Param::StrArray(sql_prefixes(&unstable))));
    params.push(("min_failures", Param::UInt(BROKEN_AFTER)));
    let run_params = q.params();
    let (jobs, runs, pushes) = tokio::join!(
        fetch::<FailingJobRow>(clickhouse, &TRUNK_FAILING_JOBS, &params),
        fetch::<WorkflowRunsRow>(clickhouse, &TRUNK_WORKFLOW_RUNS, &run_params),
        pushes(clickhouse, q)
    );
    let (jobs, runs, pushes) = (jobs?, runs?, pushes?);
    // A job ran on the commits its workflow ran on; a workflow with no run known (runs are
    // optional: webhooks for them may not be configured) counts every commit.
    let ran_by_workflow: BTreeMap<String, BTreeSet<String>> = runs
        .into_iter()
        .map(|r| (r.workflow, r.shas.into_iter().collect()))
        .collect();
    let jobs: Vec<JobRecord<'_>> = jobs
        .into_iter()
        .map(|j| JobRecord {
            job: format!("{} / {}", j.workflow, j.cell),
            ran: ran_by_workflow.get(&j.workflow),
            failed: j.failed_shas.into_iter().collect(),
        })
        .collect();
    let pushes: Vec<(String, i64)> = pushes
        .into_iter()
        .map(|p| (p.sha, i64::from(p.pushed_at_unix)))
        .collect();
    let runs = broken_runs(&jobs, &pushes, BROKEN_AFTER);
    Ok(Broken {
        repository: q.repository.clone(),
        branch: q.branch.clone(),
        days: q.days,
        threshold: BROKEN_AFTER,
        broken_now: runs.iter().any(|r| r.ongoing),
        runs,
    })
}

/// Keeps `hudstream_trunk_broken_jobs{repository,branch}` (jobs broken now) current for each
/// `owner/repo:branch` in `watches`, every `every`, until `shutdown`.
pub async fn watch_trunks(
    clickhouse: ClickHouse,
    watches: Vec<String>,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        for watch in &watches {
            let Some((repository, branch)) = watch.split_once(':') else {
                tracing::error!(%watch, "api.watch_trunks entries are owner/repo:branch");
                continue;
            };
            let q = TrunkQuery::new(repository.to_string(), branch.to_string(), 7);
            match broken(&clickhouse, &q).await {
                Ok(b) => {
                    let now = b.runs.iter().filter(|r| r.ongoing).count();
                    metrics::gauge!("hudstream_trunk_broken_jobs", "repository" => repository.to_string(), "branch" => branch.to_string())
                        .set(now as f64);
                }
                Err(e) => tracing::warn!(%watch, error = %e, "trunk health check failed"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
#[path = "trunk_tests.rs"]
mod tests;
