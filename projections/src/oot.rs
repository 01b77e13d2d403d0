//! `hud.oot_result.v1` → `oot_workflow_job` (DDL: `schemas/migrations/0007_oot_workflow_job.sql`).
//!
//! Every distinct callback is its own row; the merge happens when read (see the DDL).

use hudstream_schemas::oot::OotResult;

use crate::row::DateTime;

crate::row! {
    pub struct OotWorkflowJobRow from OotResult as r {
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

crate::avro_projection! {
    /// Every distinct callback is kept (versions are part of the ORDER BY).
    pub struct OotWorkflowJobProjection: OotResult => OotWorkflowJobRow {
        table: "oot_workflow_job",
        latest_version_wins: false,
    }
}
