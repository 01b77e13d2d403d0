//! The reconciler: repairs what lost webhooks left behind, through the log.
//!
//! GitHub sometimes never delivers a webhook: a job stays "queued" on the HUD for ever, a run
//! that failed at startup sends nothing at all (torchci's pain points #5164, #8088; its answer
//! is a backfill cron that rewrites rows by hand). hudstream never patches a table. A pass:
//!
//! 1. reads from ClickHouse the jobs and runs whose newest state is still not `completed`
//!    `stale_after` after they were created, and the runs that have no job at all — created
//!    within `lookback`, oldest first ([`Reconciler::candidates`]);
//! 2. asks GitHub about each: at most `max_requests_per_pass` requests, and none once GitHub
//!    says fewer than `min_rate_limit_remaining` are left this hour (the log fetcher shares the
//!    credentials); rate-limit waits and retries are the GitHub client's;
//! 3. where GitHub knows more than the table — another status, or jobs the table never saw —
//!    builds the webhook GitHub would have sent: GitHub's own job or run object, a minimal
//!    `repository`, the event's `action`, marked with the header `hudstream-origin: reconciler`
//!    ([`Reconciler::ask`], which only returns records);
//! 4. the caller appends them to the raw topics with the gateway's topic and key, and the
//!    normal pipeline repairs the tables. Derived versions come from content, so a synthetic
//!    delivery that races a late real one changes nothing.
//!
//! What GitHub says it does not have (404, 410) is counted and left alone. A pass that GitHub
//! stops half way keeps what it learned. Once the pipeline has caught up, a second pass finds
//! nothing to append.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use hudstream_github::{GitHub, GitHubError, JsonAnswer};
use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::config::ReconcileConfig;
use hudstream_runtime::kafka::Appender;
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::worker::OutRecord;

/// The value of the `hudstream-origin` header on every record the reconciler appends.
pub const ORIGIN: &str = "reconciler";

pub mod backfill;
pub mod backfill_runs;
mod candidates;
mod delivery;
mod report;

pub use candidates::{Candidate, Kind};
pub use delivery::{job_action, run_action, synthetic, synthetic_delivery};
pub use report::PassReport;

/// Jobs GitHub lists per page of a run's jobs (its maximum).
const JOBS_PER_PAGE: usize = 100;

/// Asks GitHub; builds synthetic deliveries.
pub struct Reconciler {
    github: Arc<GitHub>,
    settings: ReconcileConfig,
}

impl Reconciler {
    pub fn new(github: Arc<GitHub>, settings: ReconcileConfig) -> Self {
        Self { github, settings }
    }

    /// Asks GitHub about `candidates` in order, within the pass's budget, and returns the
    /// synthetic deliveries to append. GitHub failing (after the client's own retries) ends
    /// the pass early; what was learned until then is kept.
    pub async fn ask(&self, candidates: &[Candidate]) -> (Vec<OutRecord>, PassReport) {
        let mut report = PassReport::default();
        for c in candidates {
            *report.candidates.entry(c.kind.as_str()).or_default() += 1;
        }
        let mut records = Vec::new();
        for candidate in candidates {
            if let Some(why) = self.budget_left(&report) {
                report.stopped = Some(why);
                break;
            }
            *report.checked.entry(candidate.kind.as_str()).or_default() += 1;
            metrics::counter!("hudstream_reconcile_checked_total", "kind" => candidate.kind.as_str())
                .increment(1);
            let before = records.len();
            let asked = match candidate.kind {
                Kind::Job | Kind::Run => self.ask_state(candidate, &mut report, &mut records).await,
                Kind::RunJobs => {
                    self.ask_run_jobs(candidate, &mut report, &mut records)
                        .await
                }
            };
            // What was learned before a failure is kept (a run's first pages of jobs).
            let new = records.len() - before;
            if new > 0 {
                *report.appended.entry(candidate.kind.as_str()).or_default() += new;
                metrics::counter!("hudstream_reconcile_appended_total", "kind" => candidate.kind.as_str())
                    .increment(new as u64);
            }
            match asked {
                Ok(()) => {}
                Err(e) => {
                    report.stopped = Some(format!(
                        "GitHub failed on {} {}/{}: {e}",
                        candidate.kind.as_str(),
                        candidate.repository,
                        candidate.id
                    ));
                    break;
                }
            }
        }
        (records, report)
    }

    /// Why no more requests may be made in this pass, if none may.
    fn budget_left(&self, report: &PassReport) -> Option<String> {
        if report.requests >= self.settings.max_requests_per_pass {
            return Some(format!(
                "{} requests made, the most per pass (reconcile.max_requests_per_pass)",
                report.requests
            ));
        }
        match self.github.rate_limit_remaining() {
            Some(left) if left < self.settings.min_rate_limit_remaining => Some(format!(
                "GitHub says {left} requests are left this hour, under reconcile.min_rate_limit_remaining = {}",
                self.settings.min_rate_limit_remaining
            )),
            _ => None,
        }
    }

    async fn get(
        &self,
        repository: &str,
        path: &str,
        report: &mut PassReport,
    ) -> Result<Option<Value>, GitHubError> {
        report.requests += 1;
        match self.github.repository_json(repository, path).await? {
            JsonAnswer::Found(document) => Ok(Some(document)),
            JsonAnswer::Gone { status } => {
                tracing::info!(
                    repository,
                    path,
                    status,
                    "GitHub does not have it; left alone"
                );
                report.gone += 1;
                Ok(None)
            }
            JsonAnswer::Refused { status, message } => {
                tracing::warn!(repository, path, status, %message, "GitHub refused; left alone");
                report.gone += 1;
                Ok(None)
            }
        }
    }

    /// A stale job or run: GitHub's object for it, as a delivery when the processors would
    /// make a newer version of it than the table has (a later status, or the same status with
    /// later facts). An older or equal state would change nothing, so nothing is appended.
    async fn ask_state(
        &self,
        c: &Candidate,
        report: &mut PassReport,
        records: &mut Vec<OutRecord>,
    ) -> Result<(), GitHubError> {
        let (path, event, action): (_, _, fn(&str) -> &str) = match c.kind {
            Kind::Run => (format!("actions/runs/{}", c.id), "workflow_run", run_action),
            _ => (format!("actions/jobs/{}", c.id), "workflow_job", job_action),
        };
        let Some(object) = self.get(&c.repository, &path, report).await? else {
            return Ok(());
        };
        let status = object
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let delivery = synthetic_delivery(event, action(&status), object, &c.repository);
        let version = match c.kind {
            Kind::Run => hudstream_processors::workflow_run::normalize(&delivery.payload)
                .map(|r| r.version)
                .map_err(|e| e.to_string()),
            _ => hudstream_processors::workflow_job::normalize(&delivery.payload)
                .map(|j| j.version)
                .map_err(|e| e.to_string()),
        };
        match version {
            Ok(v) if u64::try_from(v).is_ok_and(|v| v > c.version) => records.push(delivery),
            Ok(_) => report.unchanged += 1,
            Err(e) => {
                // The processor would dead-letter it; appending it would only add a dead letter.
                tracing::warn!(repository = %c.repository, id = c.id, error = %e, "GitHub's answer does not normalize; left alone");
                report.gone += 1;
            }
        }
        Ok(())
    }

    /// Every job GitHub lists for a run the table has no job of. All its pages are read once
    /// begun, even past the pass's budget: a run with some of its jobs would no longer be a
    /// run without jobs, and its other pages would never be asked for.
    async fn ask_run_jobs(
        &self,
        c: &Candidate,
        report: &mut PassReport,
        records: &mut Vec<OutRecord>,
    ) -> Result<(), GitHubError> {
        let before = records.len();
        for page in 1.. {
            let path = format!(
                "actions/runs/{}/jobs?per_page={JOBS_PER_PAGE}&page={page}",
                c.id
            );
            let Some(listing) = self.get(&c.repository, &path, report).await? else {
                break;
            };
            let jobs = listing
                .get("jobs")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let listed = jobs.len();
            for job in jobs {
                let status = job
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if !status.is_empty() {
                    records.push(synthetic_delivery(
                        "workflow_job",
                        job_action(&status),
                        job,
                        &c.repository,
                    ));
                }
            }
            let total = listing
                .get("total_count")
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize;
            if listed < JOBS_PER_PAGE || page * JOBS_PER_PAGE >= total {
                break;
            }
        }
        if records.len() == before {
            report.unchanged += 1;
        }
        Ok(())
    }

    /// One pass: candidates from `clickhouse`, GitHub's answers, and — unless `appender` is
    /// `None` (a dry run) — the synthetic deliveries appended and acknowledged.
    pub async fn pass(
        &self,
        clickhouse: &ClickHouse,
        appender: Option<&Appender>,
    ) -> anyhow::Result<(PassReport, Vec<OutRecord>)> {
        let started = Instant::now();
        let candidates = self
            .candidates(clickhouse, chrono::Utc::now().timestamp())
            .await?;
        let (records, report) = self.ask(&candidates).await;
        if let Some(appender) = appender {
            // All in flight at once (the producer keeps their order), each acknowledged.
            let appended =
                futures::future::join_all(records.iter().map(|r| appender.append(r))).await;
            let failed = appended.iter().filter(|a| a.is_err()).count();
            if let Some(Err(e)) = appended.into_iter().find(|a| a.is_err()) {
                return Err(anyhow::Error::new(e).context(format!(
                    "{failed} of {} synthetic deliveries were not appended; the next pass asks again",
                    records.len()
                )));
            }
        }
        metrics::histogram!("hudstream_reconcile_pass_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok((report, records))
    }
}

/// The long-running stage: a pass every `interval_ms` until `shutdown`. A failed pass (ClickHouse
/// or the broker unreachable) is logged and counted; the next pass tries again.
pub async fn run(
    reconciler: Reconciler,
    clickhouse: ClickHouse,
    appender: Appender,
    interval: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(interval_s = interval.as_secs(), "reconciler started");
    loop {
        let result = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = reconciler.pass(&clickhouse, Some(&appender)) => r,
        };
        match result {
            Ok((report, _)) => {
                let outcome = if report.stopped.is_some() {
                    "stopped_early"
                } else {
                    "ok"
                };
                metrics::counter!("hudstream_reconcile_passes_total", "result" => outcome)
                    .increment(1);
                tracing::info!(%report, "reconcile pass done");
            }
            Err(e) => {
                metrics::counter!("hudstream_reconcile_passes_total", "result" => "error")
                    .increment(1);
                tracing::warn!(
                    error = format!("{e:#}"),
                    "reconcile pass failed; trying again next pass"
                );
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
    tracing::info!("reconciler stopped");
    Ok(())
}

#[cfg(test)]
mod tests;
