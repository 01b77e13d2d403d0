//! `hud.workflow_job.v1` → `workflow_job` (DDL: `schemas/migrations/0001_workflow_job.sql`), the
//! same rows into `workflow_job_by_id` (`0015`), keyed for point lookups by id, and the
//! columns the grid, commit and PR pages show into `grid_job` (`0016`, `0017`), stored in
//! narrow granules for reading whole commits, and each version as one document into `job_page`
//! (`0018`), for the job page.

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
    /// One row of `job_page`: a version of a job as one JSON document, its
    /// [`WorkflowJobRow`] as `JSONEachRow` writes it (the job page reads four columns, not 32).
    pub struct JobPageRow {
        repository_full_name: String,
        id: i64,
        version: u64,
        document: String,
    }
}

impl From<WorkflowJobRow> for JobPageRow {
    fn from(row: WorkflowJobRow) -> Self {
        let mut document = Vec::new();
        crate::row::Row::write_json(&row, &mut document);
        JobPageRow {
            repository_full_name: row.repository_full_name,
            id: row.id,
            version: row.version,
            // JSON text is UTF-8 (every string in it was written by serde_json).
            document: String::from_utf8_lossy(&document).into_owned(),
        }
    }
}

impl From<WorkflowJob> for JobPageRow {
    fn from(job: WorkflowJob) -> Self {
        JobPageRow::from(WorkflowJobRow::from(job))
    }
}

impl JobPageRow {
    /// The job's row back from its document.
    pub fn row(&self) -> Result<WorkflowJobRow, serde_json::Error> {
        serde_json::from_str(&self.document)
    }
}

crate::avro_projection! {
    /// Every version of every job as one document keyed by (repository, id), in small granules:
    /// the job page's point lookup (`schemas/migrations/0018_job_page.sql`).
    pub struct JobPageProjection: WorkflowJob => JobPageRow {
        table: "job_page",
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

    #[test]
    fn a_job_page_document_reads_back_as_the_row_it_was_made_from() {
        for fixture in [
            "workflow_job/in_progress.with-queued-steps.payload.json",
            "workflow_job/completed.failure.with-organization.payload.json",
            "workflow_job/queued.payload.json",
        ] {
            let bytes = std::fs::read(crate::testdata::fixture(fixture)).expect("fixture");
            let job = hudstream_processors::workflow_job::normalize(&bytes).expect("normalizes");
            let row = WorkflowJobRow::from(job.clone());
            let page = JobPageRow::from(job);
            assert_eq!((page.id, page.version), (row.id, row.version));
            assert_eq!(page.row().expect("the document parses"), row);
        }
    }
}
