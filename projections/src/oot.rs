//! `hud.oot_result.v1` → `oot_workflow_job` (DDL: `schemas/migrations/0007_oot_workflow_job.sql`).
//!
//! Every distinct callback is its own row; the merge happens when read (see the DDL).

use hudstream_schemas::oot::OotResult;

use crate::row::DateTime;

crate::row! {
    pub struct OotWorkflowJobRow {
        upstream_repo: String,
        pr_number: i64,
        dynamo_key as "dynamoKey": String,
        version: u64,
        status: String,
        downstream_repo: String,
        pytorch_head_sha: String,
        delivery_id: String,
        workflow_run_url: String,
        workflow_name: String,
        job_name: String,
        check_run_id: String,
        run_id: String,
        run_attempt: i64,
        event_type: String,
        downstream_repo_level: Option<String>,
        queue_time: Option<f64>,
        execution_time: Option<f64>,
        started_at: Option<DateTime>,
        completed_at: Option<DateTime>,
        conclusion: Option<String>,
        passed_tests: Option<i64>,
        failed_tests: Option<i64>,
        skipped_tests: Option<i64>,
        total_tests: Option<i64>,
        artifact_url: Option<String>,
    }
}

impl From<OotResult> for OotWorkflowJobRow {
    fn from(o: OotResult) -> Self {
        Self {
            upstream_repo: o.upstream_repo,
            pr_number: o.pr_number,
            dynamo_key: o.dynamo_key,
            version: o.version.max(0) as u64,
            status: o.status,
            downstream_repo: o.downstream_repo,
            pytorch_head_sha: o.pytorch_head_sha,
            delivery_id: o.delivery_id,
            workflow_run_url: o.workflow_run_url,
            workflow_name: o.workflow_name,
            job_name: o.job_name,
            check_run_id: o.check_run_id,
            run_id: o.run_id,
            run_attempt: o.run_attempt,
            event_type: o.event_type,
            downstream_repo_level: o.downstream_repo_level,
            queue_time: o.queue_time,
            execution_time: o.execution_time,
            started_at: o.started_at.map(|t| DateTime::from_millis(Some(t))),
            completed_at: o.completed_at.map(|t| DateTime::from_millis(Some(t))),
            conclusion: o.conclusion,
            passed_tests: o.passed_tests,
            failed_tests: o.failed_tests,
            skipped_tests: o.skipped_tests,
            total_tests: o.total_tests,
            artifact_url: o.artifact_url,
        }
    }
}

crate::avro_projection! {
    /// Every distinct callback is kept (versions are part of the ORDER BY).
    pub struct OotWorkflowJobProjection: OotResult => OotWorkflowJobRow {
        table: "oot_workflow_job",
        latest_version_wins: false,
    }
}
