//! `hud.workflow_job.v1` → `workflow_job` (DDL: `schemas/migrations/0001_workflow_job.sql`).

use hudstream_schemas::workflow_job::WorkflowJob;

use crate::row::DateTime;

crate::row! {
    /// One row of `workflow_job`. Nested `steps` columns are the flattened `steps.*` arrays.
    pub struct WorkflowJobRow {
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
        steps_number as "steps.number": Vec<i64>,
        steps_name as "steps.name": Vec<String>,
        steps_status as "steps.status": Vec<String>,
        steps_conclusion as "steps.conclusion": Vec<String>,
        steps_started_at as "steps.started_at": Vec<DateTime>,
        steps_completed_at as "steps.completed_at": Vec<DateTime>,
        url: String,
        html_url: String,
        run_url: String,
        check_run_url: String,
    }
}

impl From<WorkflowJob> for WorkflowJobRow {
    fn from(job: WorkflowJob) -> Self {
        Self {
            version: job.version.max(0) as u64,
            created_at: DateTime::from_millis(Some(job.created_at)),
            started_at: DateTime::from_millis(job.started_at),
            completed_at: DateTime::from_millis(job.completed_at),
            runner_id: job.runner_id.unwrap_or(0),
            runner_group_id: job.runner_group_id.unwrap_or(0),
            steps_number: job.steps.iter().map(|s| s.number).collect(),
            steps_name: job.steps.iter().map(|s| s.name.clone()).collect(),
            steps_status: job.steps.iter().map(|s| s.status.clone()).collect(),
            steps_conclusion: job.steps.iter().map(|s| s.conclusion.clone()).collect(),
            steps_started_at: job
                .steps
                .iter()
                .map(|s| DateTime::from_millis(s.started_at))
                .collect(),
            steps_completed_at: job
                .steps
                .iter()
                .map(|s| DateTime::from_millis(s.completed_at))
                .collect(),
            repository_full_name: job.repository_full_name,
            id: job.id,
            run_id: job.run_id,
            run_attempt: job.run_attempt,
            node_id: job.node_id,
            head_sha: job.head_sha,
            head_branch: job.head_branch,
            workflow_name: job.workflow_name,
            name: job.name,
            status: job.status,
            conclusion: job.conclusion,
            queue_time_s: job.queue_time_s,
            duration_s: job.duration_s,
            labels: job.labels,
            runner_name: job.runner_name,
            runner_group_name: job.runner_group_name,
            url: job.url,
            html_url: job.html_url,
            run_url: job.run_url,
            check_run_url: job.check_run_url,
        }
    }
}

crate::avro_projection! {
    pub struct WorkflowJobProjection: WorkflowJob => WorkflowJobRow {
        table: "workflow_job",
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
