//! `hud.workflow_job.v1` → `workflow_job` (DDL: `schemas/migrations/0001_workflow_job.sql`), the
//! same rows into `workflow_job_by_id` (`0015`), keyed for the job page's point lookups, and the
//! columns the grid, commit and PR pages show into `grid_job` (`0016`, `0017`), stored in
//! narrow granules for reading whole commits.

use hudstream_schemas::workflow_job::WorkflowJob;

use crate::row::DateTime;

crate::row! {
    /// One row of `workflow_job`. Nested `steps` columns are the flattened `steps.*` arrays.
    pub struct WorkflowJobRow from WorkflowJob as job {
        repository_full_name: String,
        id: i64,
        version: u64,
        run_id: i64,
        run_attempt: i64,
        node_id: String,
        head_sha: String,
        head_branch: String,
        workflow_name: String,
        name: String,
        status: String,
        conclusion: String,
        created_at: DateTime,
        started_at: DateTime,
        completed_at: DateTime,
        queue_time_s: Option<f64>,
        duration_s: Option<f64>,
        labels: Vec<String>,
        runner_id: i64,
        runner_name: String,
        runner_group_id: i64,
        runner_group_name: String,
        steps_number as "steps.number": Vec<i64> = job.steps.iter().map(|s| s.number).collect(),
        steps_name as "steps.name": Vec<String> = job.steps.iter().map(|s| s.name.clone()).collect(),
        steps_status as "steps.status": Vec<String> = job.steps.iter().map(|s| s.status.clone()).collect(),
        steps_conclusion as "steps.conclusion": Vec<String> = job.steps.iter().map(|s| s.conclusion.clone()).collect(),
        steps_started_at as "steps.started_at": Vec<DateTime> = job.steps.iter().map(|s| DateTime::from_millis(s.started_at)).collect(),
        steps_completed_at as "steps.completed_at": Vec<DateTime> = job.steps.iter().map(|s| DateTime::from_millis(s.completed_at)).collect(),
        url: String,
        html_url: String,
        run_url: String,
        check_run_url: String,
    }
}

crate::avro_projection! {
    pub struct WorkflowJobProjection: WorkflowJob => WorkflowJobRow {
        table: "workflow_job",
    }
}

crate::avro_projection! {
    /// The same rows keyed by (repository, id), for looking one job up
    /// (`schemas/migrations/0015_workflow_job_by_id.sql`).
    pub struct WorkflowJobByIdProjection: WorkflowJob => WorkflowJobRow {
        table: "workflow_job_by_id",
    }
}

crate::row! {
    /// One row of `grid_job`: a job as a grid cell, the commit page and the PR page show it.
    pub struct GridJobRow from WorkflowJob as job {
        repository_full_name: String,
        head_sha: String,
        id: i64,
        version: u64,
        run_id: i64,
        run_attempt: i64,
        workflow_name: String,
        name: String,
        status: String,
        conclusion: String,
        created_at: DateTime,
        started_at: DateTime,
        completed_at: DateTime,
        queue_time_s: Option<f64>,
        duration_s: Option<f64>,
        labels: Vec<String>,
        runner_name: String,
        html_url: String,
    }
}

crate::avro_projection! {
    /// The grid's, commit page's and PR page's columns of every job, in narrow granules keyed
    /// by commit (`schemas/migrations/0016_grid_job.sql`, `0017_grid_job_commit_columns.sql`).
    pub struct GridJobProjection: WorkflowJob => GridJobRow {
        table: "grid_job",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_yet_is_the_epoch_and_steps_flatten_into_parallel_arrays() {
        let bytes = std::fs::read(crate::testdata::fixture(
            "workflow_job/in_progress.payload.json",
        ))
        .expect("fixture");
        let row = WorkflowJobRow::from(
            hudstream_processors::workflow_job::normalize(&bytes).expect("normalizes"),
        );
        assert_eq!(row.completed_at, DateTime(0));
        assert_eq!(row.steps_name.len(), row.steps_started_at.len());
        let mut json = Vec::new();
        crate::row::Row::write_json(&row, &mut json);
        let json: serde_json::Value = serde_json::from_slice(&json).expect("json");
        assert_eq!(json["completed_at"], "1970-01-01 00:00:00");
        assert!(json.get("steps.name").is_some());
    }
}
