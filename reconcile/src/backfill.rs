//! The backfill: a repository's history, asked of GitHub's API and appended to the raw topics
//! as the webhooks GitHub would have sent, marked `hudstream-origin: backfill` — so history
//! flows through the same processors, versions and tables as live webhooks. Versions come from
//! content, so a later real webhook (a later state) always wins over a backfilled one, and a
//! backfilled state never displaces a newer one already stored.
//!
//! What it asks, for `since..now`:
//! 1. the repository (its default branch, unless a branch is given);
//! 2. the branch's commits (`GET commits?sha&since&until`), oldest first, each as a `push` of
//!    that one commit, pushed when it was committed (the nearest GitHub tells);
//! 3. the workflow runs created in the window (`GET actions/runs?created=a..b`), a day at a time
//!    — GitHub lists at most 1,000 runs per query, so a window that holds more is halved until
//!    none does — each with every job of every attempt (`GET actions/runs/{id}/jobs?filter=all`);
//! 4. the pull requests updated in the window (`GET pulls?state=all&sort=updated`).
//!
//! **Resumable.** A checkpoint (a JSON file per repository) says which commits, runs (at which
//! `updated_at`) and pull requests (likewise) were appended and acknowledged. A backfill that is
//! interrupted — Ctrl-C, GitHub failing, the rate limit — saves it and stops; run again, it
//! skips what is done and appends nothing twice. An unchanged run or PR is never appended again;
//! one that changed since is appended whole (its unchanged jobs included: the same bytes, the
//! same versions, no row changes). After a SIGKILL the units of the last two seconds may be
//! appended again, which changes no row either.
//!
//! **Rate limits.** The client waits out a 403/429 as GitHub tells it. Beyond that, once
//! GitHub says fewer than `min_rate_limit_remaining` requests are left this hour, the backfill
//! waits for the renewal if that is within `max_wait`, and otherwise stops (checkpoint saved)
//! saying when to run it again — the log fetcher and the reconciler share the credentials.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use hudstream_github::{GitHub, GitHubError, JsonAnswer};
use hudstream_runtime::kafka::Appender;
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::worker::OutRecord;

use crate::delivery::{job_action, push_of, run_action, synthetic, wrap};

/// The value of the `hudstream-origin` header on every record the backfill appends.
pub const ORIGIN: &str = "backfill";

/// What to backfill.
#[derive(Debug, Clone)]
pub struct Plan {
    pub repository: String,
    /// Unix seconds: history from here to now.
    pub since_s: i64,
    /// The branch whose commits to append; `None`: the repository's default branch.
    pub branch: Option<String>,
    /// Count what would be appended; append and save nothing.
    pub dry_run: bool,
    /// Items per page asked of GitHub (its maximum, 100, unless testing).
    pub per_page: usize,
    /// The most results GitHub lists for one runs query (1,000).
    pub max_listed: usize,
}

impl Plan {
    pub fn new(repository: &str, since_s: i64) -> Self {
        Plan {
            repository: repository.to_string(),
            since_s,
            branch: None,
            dry_run: false,
            per_page: 100,
            max_listed: 1000,
        }
    }
}

/// `7d`, `12h`, `30m`, a date (`2026-11-28`) or an instant (RFC 3339): unix seconds.
pub fn parse_since(text: &str, now_s: i64) -> Result<i64, String> {
    let t = text.trim();
    let unit = |suffix: char, seconds: i64| {
        t.strip_suffix(suffix)
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n > 0)
            .map(|n| now_s - n * seconds)
    };
    if let Some(s) = unit('d', 86_400)
        .or_else(|| unit('h', 3_600))
        .or_else(|| unit('m', 60))
    {
        return Ok(s);
    }
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(at.timestamp());
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(day
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .timestamp());
    }
    Err(format!(
        "--since {text:?}: expected a duration back from now (7d, 12h, 30m), a date (2026-11-28) or an RFC 3339 instant"
    ))
}

/// What has been appended and acknowledged, per repository.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub repository: String,
    pub commits: BTreeSet<String>,
    /// Run id → the `updated_at` it was appended at.
    pub runs: BTreeMap<i64, String>,
    /// PR number → the `updated_at` it was appended at.
    pub pulls: BTreeMap<i64, String>,
    /// Records appended over every session.
    pub appended: u64,
}

/// Where a backfill is, for its progress line and its final word.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Progress {
    /// What it is asking GitHub for now.
    pub doing: String,
    pub requests: u64,
    pub commits: u64,
    pub runs_listed: u64,
    pub runs: u64,
    pub jobs: u64,
    pub pulls: u64,
    /// Records appended (or, in a dry run, that would be) in this session.
    pub appended: u64,
    /// Commits, runs and PRs skipped: already appended, unchanged.
    pub skipped: u64,
    pub rate_limit_remaining: Option<u64>,
    /// Why it stopped before the end, if it did.
    pub stopped: Option<String>,
    pub dry_run: bool,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} records ({} commits, {} runs of {} listed, {} jobs, {} PRs; {} unchanged skipped) in {} requests",
            if self.dry_run { "would append" } else { "appended" },
            self.appended,
            self.commits,
            self.runs,
            self.runs_listed,
            self.jobs,
            self.pulls,
            self.skipped,
            self.requests
        )?;
        if let Some(left) = self.rate_limit_remaining {
            write!(f, "; {left} GitHub requests left this hour")?;
        }
        if let Some(why) = &self.stopped {
            write!(f, "; stopped: {why}")?;
        }
        Ok(())
    }
}

/// Why a backfill stopped early: saved, to be run again.
#[derive(Debug)]
struct Stop(String);

impl From<GitHubError> for Stop {
    fn from(e: GitHubError) -> Self {
        Stop(format!("GitHub failed: {e}"))
    }
}

/// Runs backfills.
pub struct Backfill<'a> {
    pub github: &'a GitHub,
    /// `None` in a dry run.
    pub appender: Option<&'a Appender>,
    /// The checkpoint file (`None`: nothing is kept).
    pub checkpoint: Option<PathBuf>,
    pub min_rate_limit_remaining: u64,
    /// The longest wait for GitHub's budget to renew before stopping instead.
    pub max_wait: Duration,
    pub shutdown: CancellationToken,
}

struct Session<'b, 'a> {
    backfill: &'b Backfill<'a>,
    plan: &'b Plan,
    state: Checkpoint,
    progress: Progress,
    on_progress: &'b mut (dyn FnMut(&Progress) + Send),
    last_save: Instant,
}

impl Backfill<'_> {
    /// Runs `plan` to its end or until it must stop; `on_progress` hears of every step. The
    /// answer says what was appended and why it stopped, if it did; an `Err` is a checkpoint
    /// that could not be read or written, or the broker refusing an append.
    pub async fn run(
        &self,
        plan: &Plan,
        on_progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> anyhow::Result<Progress> {
        let state = match &self.checkpoint {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("reading the checkpoint {}: {e}", path.display())
                })?;
                let state: Checkpoint = serde_json::from_str(&text).map_err(|e| {
                    anyhow::anyhow!(
                        "the checkpoint {} is not one: {e} (delete it to start over)",
                        path.display()
                    )
                })?;
                anyhow::ensure!(
                    state.repository == plan.repository,
                    "the checkpoint {} is {}'s, not {}'s",
                    path.display(),
                    state.repository,
                    plan.repository
                );
                state
            }
            _ => Checkpoint {
                repository: plan.repository.clone(),
                ..Default::default()
            },
        };
        let mut session = Session {
            backfill: self,
            plan,
            state,
            progress: Progress {
                dry_run: plan.dry_run,
                ..Default::default()
            },
            on_progress,
            last_save: Instant::now(),
        };
        let until_s = chrono::Utc::now().timestamp();
        let outcome = session.all(until_s).await;
        match outcome {
            Ok(()) => {}
            Err(Ok(Stop(why))) => session.progress.stopped = Some(why),
            Err(Err(e)) => {
                // The broker refused: what was acknowledged before is kept.
                session.save()?;
                return Err(e);
            }
        }
        session.save()?;
        session.progress.doing = "done".into();
        (session.on_progress)(&session.progress);
        Ok(session.progress)
    }
}

type Outcome = Result<(), Result<Stop, anyhow::Error>>;

fn stop(e: impl Into<Stop>) -> Result<Stop, anyhow::Error> {
    Ok(e.into())
}

impl Session<'_, '_> {
    fn save(&mut self) -> anyhow::Result<()> {
        if self.plan.dry_run {
            return Ok(());
        }
        let Some(path) = &self.backfill.checkpoint else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Written beside, then renamed: a crash leaves the old checkpoint or the new one.
        let staged = path.with_extension("json.tmp");
        std::fs::write(&staged, serde_json::to_vec_pretty(&self.state)?)
            .map_err(|e| anyhow::anyhow!("writing the checkpoint {}: {e}", staged.display()))?;
        std::fs::rename(&staged, path)
            .map_err(|e| anyhow::anyhow!("writing the checkpoint {}: {e}", path.display()))?;
        self.last_save = Instant::now();
        Ok(())
    }

    async fn all(&mut self, until_s: i64) -> Outcome {
        let repo = self.get("").await?.unwrap_or(Value::Null);
        let branch = match &self.plan.branch {
            Some(b) => b.clone(),
            None => repo["default_branch"]
                .as_str()
                .unwrap_or("main")
                .to_string(),
        };
        self.commits(&branch, until_s).await?;
        self.runs(until_s).await?;
        self.pulls().await
    }

    /// Waits for GitHub's budget or stops, then asks; `None` for GitHub's final "no".
    async fn get(&mut self, path: &str) -> Result<Option<Value>, Result<Stop, anyhow::Error>> {
        if self.backfill.shutdown.is_cancelled() {
            return Err(stop(Stop("interrupted".into())));
        }
        let github = self.backfill.github;
        if let Some(left) = github.rate_limit_remaining() {
            if left < self.backfill.min_rate_limit_remaining {
                let now = chrono::Utc::now().timestamp();
                let reset = github.rate_limit_reset().unwrap_or(now);
                let wait = Duration::from_secs((reset - now).max(0) as u64 + 1);
                let at = chrono::DateTime::from_timestamp(reset, 0).unwrap_or_default();
                if wait > self.backfill.max_wait {
                    return Err(stop(Stop(format!(
                        "GitHub says {left} requests are left this hour (the floor is {}), renewed at {at}: run the same command again then to resume",
                        self.backfill.min_rate_limit_remaining
                    ))));
                }
                self.progress.doing = format!("waiting for GitHub's rate limit to renew at {at}");
                (self.on_progress)(&self.progress);
                tokio::select! {
                    _ = self.backfill.shutdown.cancelled() => return Err(stop(Stop("interrupted".into()))),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
        self.progress.requests += 1;
        let answer = github
            .repository_json(&self.plan.repository, path)
            .await
            .map_err(stop)?;
        self.progress.rate_limit_remaining = github.rate_limit_remaining();
        (self.on_progress)(&self.progress);
        Ok(match answer {
            JsonAnswer::Found(v) => Some(v),
            JsonAnswer::Gone { .. } => None,
            JsonAnswer::Refused { status, message } => {
                return Err(stop(Stop(format!(
                    "GitHub refused {path:?}: {status} {message}"
                ))))
            }
        })
    }

    /// Appends `records` (all acknowledged before it returns), or counts them in a dry run.
    async fn append(&mut self, records: &[OutRecord]) -> Result<(), Result<Stop, anyhow::Error>> {
        if let Some(appender) = self.backfill.appender.filter(|_| !self.plan.dry_run) {
            let appended =
                futures::future::join_all(records.iter().map(|r| appender.append(r))).await;
            if let Some(Err(e)) = appended.into_iter().find(|a| a.is_err()) {
                return Err(Err(anyhow::Error::new(e).context(
                    "appending backfilled deliveries; what was acknowledged before is kept in the checkpoint",
                )));
            }
        }
        self.progress.appended += records.len() as u64;
        if !self.plan.dry_run {
            self.state.appended += records.len() as u64;
        }
        Ok(())
    }

    fn maybe_save(&mut self) -> Result<(), Result<Stop, anyhow::Error>> {
        if self.last_save.elapsed() >= Duration::from_secs(2) {
            self.save().map_err(Err)?;
        }
        Ok(())
    }

    fn iso(s: i64) -> String {
        chrono::DateTime::from_timestamp(s, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    async fn commits(&mut self, branch: &str, until_s: i64) -> Outcome {
        let mut listed = Vec::new();
        for page in 1.. {
            self.progress.doing = format!("commits of {branch}, page {page}");
            let path = format!(
                "commits?sha={branch}&since={}&until={}&per_page={}&page={page}",
                Self::iso(self.plan.since_s),
                Self::iso(until_s),
                self.plan.per_page
            );
            let items = self
                .get(&path)
                .await?
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default();
            let n = items.len();
            listed.extend(items);
            if n < self.plan.per_page {
                break;
            }
        }
        // GitHub lists newest first; pushes are appended oldest first.
        for commit in listed.into_iter().rev() {
            let Some(sha) = commit["sha"].as_str().map(str::to_string) else {
                continue;
            };
            if self.state.commits.contains(&sha) {
                self.progress.skipped += 1;
                continue;
            }
            let body = push_of(&self.plan.repository, branch, &commit);
            self.append(&[synthetic("push", "", &body, ORIGIN)]).await?;
            self.progress.commits += 1;
            if !self.plan.dry_run {
                self.state.commits.insert(sha);
            }
            self.maybe_save()?;
        }
        Ok(())
    }

    async fn runs(&mut self, until_s: i64) -> Outcome {
        // Day windows, oldest first; a window GitHub cannot list whole is halved.
        let mut windows: Vec<(i64, i64)> = Vec::new();
        let mut start = self.plan.since_s;
        while start < until_s {
            let end = (start + 86_400).min(until_s);
            windows.push((start, end));
            start = end;
        }
        windows.reverse();
        while let Some((a, b)) = windows.pop() {
            let mut page = 1;
            loop {
                self.progress.doing = format!(
                    "runs created {}..{}, page {page}",
                    Self::iso(a),
                    Self::iso(b)
                );
                let path = format!(
                    "actions/runs?created={}..{}&per_page={}&page={page}",
                    Self::iso(a),
                    Self::iso(b - 1),
                    self.plan.per_page
                );
                let listing = self.get(&path).await?.unwrap_or(Value::Null);
                let total = listing["total_count"].as_u64().unwrap_or(0) as usize;
                if page == 1 && total > self.plan.max_listed && b - a > 1 {
                    let mid = a + (b - a) / 2;
                    windows.push((mid, b));
                    windows.push((a, mid));
                    break;
                }
                let runs = listing["workflow_runs"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let n = runs.len();
                self.progress.runs_listed += n as u64;
                for run in runs {
                    self.run(run).await?;
                }
                if n < self.plan.per_page || page * self.plan.per_page >= total {
                    break;
                }
                page += 1;
            }
        }
        Ok(())
    }

    /// One run with every job of every attempt, appended together.
    async fn run(&mut self, run: Value) -> Outcome {
        let (Some(id), updated) = (
            run["id"].as_i64(),
            run["updated_at"].as_str().unwrap_or("").to_string(),
        ) else {
            return Ok(());
        };
        if self.state.runs.get(&id) == Some(&updated) {
            self.progress.skipped += 1;
            return Ok(());
        }
        let repository = self.plan.repository.clone();
        let status = run["status"].as_str().unwrap_or("").to_string();
        let mut records = vec![synthetic(
            "workflow_run",
            run_action(&status),
            &wrap("workflow_run", run_action(&status), run, &repository),
            ORIGIN,
        )];
        for page in 1.. {
            self.progress.doing = format!("jobs of run {id}, page {page}");
            let path = format!(
                "actions/runs/{id}/jobs?filter=all&per_page={}&page={page}",
                self.plan.per_page
            );
            let listing = self.get(&path).await?.unwrap_or(Value::Null);
            let jobs = listing["jobs"].as_array().cloned().unwrap_or_default();
            let n = jobs.len();
            for job in jobs {
                let status = job["status"].as_str().unwrap_or("").to_string();
                if status.is_empty() {
                    continue;
                }
                let action = job_action(&status);
                records.push(synthetic(
                    "workflow_job",
                    action,
                    &wrap("workflow_job", action, job, &repository),
                    ORIGIN,
                ));
                self.progress.jobs += 1;
            }
            let total = listing["total_count"].as_u64().unwrap_or(0) as usize;
            if n < self.plan.per_page || page * self.plan.per_page >= total {
                break;
            }
        }
        self.append(&records).await?;
        self.progress.runs += 1;
        if !self.plan.dry_run {
            self.state.runs.insert(id, updated);
        }
        self.maybe_save()
    }

    async fn pulls(&mut self) -> Outcome {
        for page in 1.. {
            self.progress.doing = format!("pull requests, page {page}");
            let path = format!(
                "pulls?state=all&sort=updated&direction=desc&per_page={}&page={page}",
                self.plan.per_page
            );
            let pulls = self
                .get(&path)
                .await?
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default();
            let n = pulls.len();
            let mut older = false;
            for pull in pulls {
                let updated = pull["updated_at"].as_str().unwrap_or("").to_string();
                let updated_s = chrono::DateTime::parse_from_rfc3339(&updated)
                    .map(|t| t.timestamp())
                    .unwrap_or(0);
                if updated_s < self.plan.since_s {
                    older = true;
                    break;
                }
                let Some(number) = pull["number"].as_i64() else {
                    continue;
                };
                if self.state.pulls.get(&number) == Some(&updated) {
                    self.progress.skipped += 1;
                    continue;
                }
                let action = if pull["state"] == "closed" {
                    "closed"
                } else {
                    "opened"
                };
                let body = wrap("pull_request", action, pull, &self.plan.repository);
                self.append(&[synthetic("pull_request", action, &body, ORIGIN)])
                    .await?;
                self.progress.pulls += 1;
                if !self.plan.dry_run {
                    self.state.pulls.insert(number, updated);
                }
                self.maybe_save()?;
            }
            if older || n < self.plan.per_page {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_dates_and_instants() {
        let now = 1_764_950_400;
        assert_eq!(parse_since("7d", now), Ok(now - 7 * 86_400));
        assert_eq!(parse_since("12h", now), Ok(now - 12 * 3_600));
        assert_eq!(parse_since("30m", now), Ok(now - 1_800));
        assert_eq!(parse_since("2025-12-05", now), Ok(1_764_892_800));
        assert_eq!(parse_since("2025-12-05T16:00:00Z", now), Ok(1_764_950_400));
        assert!(parse_since("0d", now).is_err());
        assert!(parse_since("last week", now).unwrap_err().contains("7d"));
    }
}
