//! `hud.workflow_job.v1` → GitHub → the log store → `hud.job_log.v1`: the log fetcher.
//!
//! For every job that reaches `completed` (with a configured conclusion; all by default) the
//! stage downloads the log once and records where it is. A log already in the store is not
//! downloaded again — a redelivered `completed` event costs one `HEAD`, not a GitHub request —
//! but its record is published again (the same record: its time is the object's), so a crash
//! between storing and publishing loses nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;

use hudstream_github::{Answer, GitHub};
use hudstream_runtime::store::{BlobStore, StoreError};
use hudstream_runtime::worker::{Action, BatchHandler, InRecord};
use hudstream_schemas::job_log::{job_log_version, log_path, log_state, JobLog};
use hudstream_schemas::names::is_repository_full_name;
use hudstream_schemas::topics::HUD_WORKFLOW_JOB_V1;
use hudstream_schemas::wire::RecordType;
use hudstream_schemas::workflow_job::WorkflowJob;

pub const STAGE: &str = "log-fetch";

/// The log fetcher.
pub struct LogFetchStage {
    github: Arc<GitHub>,
    store: BlobStore,
    conclusions: Vec<String>,
    concurrency: usize,
    max_log_bytes: u64,
}

impl LogFetchStage {
    pub fn new(
        github: Arc<GitHub>,
        store: BlobStore,
        conclusions: Vec<String>,
        concurrency: usize,
        max_log_bytes: u64,
    ) -> LogFetchStage {
        LogFetchStage {
            github,
            store,
            conclusions,
            concurrency: concurrency.max(1),
            max_log_bytes,
        }
    }

    fn wants(&self, job: &WorkflowJob) -> bool {
        job.status == "completed"
            && (self.conclusions.is_empty() || self.conclusions.contains(&job.conclusion))
    }

    /// Stores the job's log (unless it is there already) and says where it is.
    async fn fetch(&self, job: &WorkflowJob) -> anyhow::Result<JobLog> {
        let path = log_path(&job.repository_full_name, job.id);
        let mut log = JobLog {
            version: 0,
            repository_full_name: job.repository_full_name.clone(),
            job_id: job.id,
            head_sha: job.head_sha.clone(),
            conclusion: job.conclusion.clone(),
            state: log_state::STORED.into(),
            location: String::new(),
            compressed_bytes: 0,
            source: "github".into(),
            reason: String::new(),
            fetched_at: chrono::Utc::now().timestamp_millis(),
        };
        if !is_repository_full_name(&job.repository_full_name) {
            // It would become part of a URL and a store path.
            log.state = log_state::UNAVAILABLE.into();
            log.reason = format!("{:?} is not a repository name", job.repository_full_name);
        } else if let Some((size, written_at)) = self.store.stat(&path).await? {
            log.location = path;
            log.compressed_bytes = size as i64;
            log.source = "store".into();
            log.fetched_at = written_at;
        } else {
            match self
                .github
                .job_log(&job.repository_full_name, job.id)
                .await?
            {
                Answer::Found(response) => {
                    match self
                        .store
                        .put(&path, response.bytes_stream(), self.max_log_bytes)
                        .await
                    {
                        Ok(written) => {
                            metrics::counter!("hudstream_logs_fetched_bytes_total")
                                .increment(written.raw_bytes);
                            log.location = path;
                            log.compressed_bytes = written.compressed_bytes as i64;
                        }
                        Err(StoreError::TooLarge { limit, .. }) => {
                            log.state = log_state::UNAVAILABLE.into();
                            log.reason = format!("the log is over logs.max_log_bytes ({limit})");
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Answer::Gone { status } => {
                    log.state = log_state::GONE.into();
                    log.reason = format!("GitHub answered {status}: the log is gone");
                }
                Answer::Refused { status, message } => {
                    log.state = log_state::UNAVAILABLE.into();
                    log.reason = format!("GitHub answered {status}: {message}");
                }
            }
        }
        metrics::counter!("hudstream_logs_fetched_total", "state" => log.state.clone())
            .increment(1);
        log.version = job_log_version(&log);
        Ok(log)
    }
}

impl BatchHandler for LogFetchStage {
    fn stage(&self) -> &'static str {
        STAGE
    }

    fn input_topic(&self) -> &'static str {
        HUD_WORKFLOW_JOB_V1
    }

    async fn handle(&mut self, batch: &[InRecord]) -> anyhow::Result<Vec<(usize, Action)>> {
        let mut actions = Vec::new();
        // One fetch per job, however many of its records the batch holds.
        let mut wanted: BTreeMap<String, (usize, WorkflowJob)> = BTreeMap::new();
        for (i, record) in batch.iter().enumerate() {
            match record.decode::<WorkflowJob>() {
                Ok(job) if self.wants(&job) => {
                    wanted.insert(job.key(), (i, job));
                }
                Ok(_) => {}
                Err(reason) => actions.push((i, Action::DeadLetter { reason })),
            }
        }
        let this = &*self;
        let fetched: Vec<anyhow::Result<(usize, JobLog)>> = futures::stream::iter(
            wanted
                .into_values()
                .map(|(i, job)| async move { this.fetch(&job).await.map(|log| (i, log)) }),
        )
        .buffer_unordered(self.concurrency)
        .collect()
        .await;
        for result in fetched {
            let (i, log) = result?;
            actions.push((i, Action::publish(&log, &batch[i])));
        }
        Ok(actions)
    }
}
