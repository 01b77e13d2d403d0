//! `hud.workflow_job.v1` → `job_failure` (DDL: `schemas/migrations/0013_job_failure.sql`): a
//! read model of the few percent of jobs trunk health and Dr.CI read closely — every completed
//! version of a job that failed (failure, timed_out, cancelled) and of a rerun that passed
//! (success at attempt > 1) — keyed like `workflow_job` but in small granules, so "the failures
//! of these commits" reads kilobytes instead of the whole job table.
//!
//! Every qualifying version is written (not only a batch's newest): a completed job never
//! changes, and writing each record's own row makes the table the same whatever the batches
//! were, live or in a replay.

use hudstream_runtime::worker::InRecord;
use hudstream_schemas::workflow_job::WorkflowJob;
use hudstream_schemas::RecordType;

use crate::row::{DateTime, IntoColumn};
use crate::writer::Projection;

crate::row! {
    pub struct JobFailureRow {
        repository_full_name: String,
        head_sha: String,
        id: i64,
        version: u64,
        run_id: i64,
        run_attempt: i64,
        head_branch: String,
        workflow_name: String,
        name: String,
        conclusion: String,
        created_at: DateTime,
        completed_at: DateTime,
        runner_name: String,
    }
}

/// Whether a job's version belongs in `job_failure`.
pub fn is_failure_or_passing_rerun(job: &WorkflowJob) -> bool {
    job.status == "completed"
        && (matches!(
            job.conclusion.as_str(),
            "failure" | "timed_out" | "cancelled"
        ) || (job.conclusion == "success" && job.run_attempt > 1))
}

pub struct JobFailureProjection;

impl Projection for JobFailureProjection {
    type Row = JobFailureRow;
    const TABLE: &'static str = "job_failure";
    const TOPIC: &'static str = WorkflowJob::TOPIC;
    const STAGE: &'static str = "project.job_failure";
    const LATEST_VERSION_WINS: bool = false;

    fn rows(&self, record: &InRecord) -> Result<Vec<JobFailureRow>, String> {
        let job = record.decode::<WorkflowJob>()?;
        if !is_failure_or_passing_rerun(&job) {
            return Ok(Vec::new());
        }
        Ok(vec![JobFailureRow {
            version: job.version.into_column(),
            created_at: job.created_at.into_column(),
            completed_at: job.completed_at.into_column(),
            repository_full_name: job.repository_full_name,
            head_sha: job.head_sha,
            id: job.id,
            run_id: job.run_id,
            run_attempt: job.run_attempt,
            head_branch: job.head_branch,
            workflow_name: job.workflow_name,
            name: job.name,
            conclusion: job.conclusion,
            runner_name: job.runner_name,
        }])
    }
}
