//! The backfills a gateway starts (`POST /admin/backfill`): each runs as a task of its own with
//! the gateway's producer and the `[logs]` GitHub credentials, at most one per repository; its
//! progress is kept for `GET /admin/backfill`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use hudstream_github::GitHub;
use hudstream_ingest::admin::{BackfillRequest, Backfills, Refusal};
use hudstream_runtime::kafka::Appender;
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::Config;

use crate::backfill::{parse_since, Backfill, Plan, Progress};

/// One backfill's state, as `GET /admin/backfill` shows it.
#[derive(Debug, Clone)]
struct Entry {
    request: BackfillRequest,
    started_at: String,
    progress: Progress,
    /// `running`, `done`, `stopped` or `failed`.
    state: &'static str,
    error: Option<String>,
}

impl Entry {
    fn json(&self) -> Value {
        json!({
            "repository": self.request.repository,
            "since": self.request.since,
            "branch": self.request.branch,
            "dry_run": self.request.dry_run,
            "started_at": self.started_at,
            "state": self.state,
            "error": self.error,
            "progress": self.progress,
        })
    }
}

/// Runs the gateway's backfills.
pub struct BackfillRuns {
    config: Config,
    appender: Appender,
    shutdown: CancellationToken,
    runs: Arc<Mutex<BTreeMap<String, Entry>>>,
}

impl BackfillRuns {
    pub fn new(config: &Config, appender: Appender, shutdown: CancellationToken) -> Self {
        BackfillRuns {
            config: config.clone(),
            appender,
            shutdown,
            runs: Arc::default(),
        }
    }
}

fn lock(
    runs: &Mutex<BTreeMap<String, Entry>>,
) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
    // A panic while holding it cannot leave an entry half-written: each write is one assignment.
    runs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Backfills for BackfillRuns {
    fn start(&self, request: BackfillRequest) -> Result<Value, Refusal> {
        let repository = request.repository.trim().to_string();
        if repository.split('/').filter(|p| !p.is_empty()).count() != 2 {
            return Err(Refusal::Invalid(format!(
                "repository {repository:?}: expected owner/name"
            )));
        }
        let since_s = parse_since(&request.since, chrono::Utc::now().timestamp())
            .map_err(Refusal::Invalid)?;
        let github =
            GitHub::from_config(&self.config.logs, self.shutdown.clone()).map_err(|e| {
                Refusal::Invalid(format!(
                    "the GitHub client (the [logs] github_* settings): {e}"
                ))
            })?;
        let entry = Entry {
            request: request.clone(),
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            progress: Progress::default(),
            state: "running",
            error: None,
        };
        {
            let mut runs = lock(&self.runs);
            if runs.get(&repository).is_some_and(|e| e.state == "running") {
                return Err(Refusal::Busy(format!(
                    "a backfill of {repository} is already running"
                )));
            }
            runs.insert(repository.clone(), entry.clone());
        }
        let mut plan = Plan::new(&repository, since_s);
        plan.branch = request.branch.clone();
        plan.dry_run = request.dry_run;
        let (appender, runs, shutdown) = (
            self.appender.clone(),
            self.runs.clone(),
            self.shutdown.clone(),
        );
        let settings = self.config.backfill.clone();
        tokio::spawn(async move {
            let backfill = Backfill {
                github: &github,
                appender: Some(&appender),
                checkpoint: Some(settings.checkpoint(&plan.repository)),
                min_rate_limit_remaining: settings.min_rate_limit_remaining,
                max_wait: Duration::from_millis(settings.max_rate_limit_wait_ms),
                shutdown,
            };
            let key = plan.repository.clone();
            let progress_runs = runs.clone();
            let mut on_progress = move |p: &Progress| {
                if let Some(e) = lock(&progress_runs).get_mut(&key) {
                    e.progress = p.clone();
                }
            };
            let result = backfill.run(&plan, &mut on_progress).await;
            let mut all = lock(&runs);
            if let Some(e) = all.get_mut(&plan.repository) {
                match result {
                    Ok(p) => {
                        e.state = if p.stopped.is_some() {
                            "stopped"
                        } else {
                            "done"
                        };
                        tracing::info!(repository = %plan.repository, progress = %p, "backfill finished");
                        e.progress = p;
                    }
                    Err(err) => {
                        tracing::warn!(repository = %plan.repository, error = format!("{err:#}"), "backfill failed");
                        e.state = "failed";
                        e.error = Some(format!("{err:#}"));
                    }
                }
            }
        });
        Ok(entry.json())
    }

    fn list(&self) -> Value {
        Value::Array(lock(&self.runs).values().map(Entry::json).collect())
    }
}
