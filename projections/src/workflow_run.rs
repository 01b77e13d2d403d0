//! `hud.workflow_run.v1` → `workflow_run` (DDL: `schemas/migrations/0002_workflow_run.sql`).

use hudstream_schemas::workflow_run::WorkflowRun;

use crate::row::DateTime;

crate::row! {
    pub struct WorkflowRunRow {
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

impl From<WorkflowRun> for WorkflowRunRow {
    fn from(r: WorkflowRun) -> Self {
        Self {
            repository_full_name: r.repository_full_name,
            head_sha: r.head_sha,
            id: r.id,
            version: r.version.max(0) as u64,
            run_attempt: r.run_attempt,
            run_number: r.run_number,
            workflow_id: r.workflow_id,
            check_suite_id: r.check_suite_id,
            name: r.name,
            display_title: r.display_title,
            path: r.path,
            event: r.event,
            status: r.status,
            conclusion: r.conclusion,
            head_branch: r.head_branch,
            head_repository_full_name: r.head_repository_full_name,
            pull_request_numbers: r.pull_request_numbers,
            actor_login: r.actor_login,
            triggering_actor_login: r.triggering_actor_login,
            head_commit_message: r.head_commit_message,
            head_commit_timestamp: DateTime::from_millis(r.head_commit_timestamp),
            head_commit_author_name: r.head_commit_author_name,
            head_commit_author_email: r.head_commit_author_email,
            created_at: DateTime::from_millis(Some(r.created_at)),
            updated_at: DateTime::from_millis(r.updated_at),
            run_started_at: DateTime::from_millis(r.run_started_at),
            url: r.url,
            html_url: r.html_url,
            jobs_url: r.jobs_url,
            logs_url: r.logs_url,
            previous_attempt_url: r.previous_attempt_url,
        }
    }
}

crate::avro_projection! {
    pub struct WorkflowRunProjection: WorkflowRun => WorkflowRunRow {
        table: "workflow_run",
    }
}
