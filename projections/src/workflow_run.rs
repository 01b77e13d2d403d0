//! `hud.workflow_run.v1` → `workflow_run` (DDL: `schemas/migrations/0002_workflow_run.sql`).

use hudstream_schemas::workflow_run::WorkflowRun;

use crate::row::DateTime;

crate::row! {
    pub struct WorkflowRunRow from WorkflowRun as r {
        repository_full_name: String,
        head_sha: String,
        id: i64,
        version: u64,
        run_attempt: i64,
        run_number: i64,
        workflow_id: i64,
        check_suite_id: i64,
        name: String,
        display_title: String,
        path: String,
        event: String,
        status: String,
        conclusion: String,
        head_branch: String,
        head_repository_full_name: String,
        pull_request_numbers: Vec<i64>,
        actor_login: String,
        triggering_actor_login: String,
        head_commit_message: String,
        head_commit_timestamp: DateTime,
        head_commit_author_name: String,
        head_commit_author_email: String,
        created_at: DateTime,
        updated_at: DateTime,
        run_started_at: DateTime,
        url: String,
        html_url: String,
        jobs_url: String,
        logs_url: String,
        previous_attempt_url: String,
    }
}

crate::avro_projection! {
    pub struct WorkflowRunProjection: WorkflowRun => WorkflowRunRow {
        table: "workflow_run",
    }
}
