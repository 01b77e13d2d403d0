//! `hud.workflow_job.v1` → ClickHouse `workflow_job` (DDL: `schemas/migrations/0001_workflow_job.sql`).

use serde::Serialize;

use hudstream_runtime::clickhouse::{format_datetime, ClickHouse};
use hudstream_runtime::worker::{Action, BatchHandler, InRecord};
use hudstream_schemas::topics::HUD_WORKFLOW_JOB_V1;
use hudstream_schemas::wire::Codec;
use hudstream_schemas::workflow_job::WorkflowJob;

/// One row of `workflow_job`, in `JSONEachRow` form. Nested `steps` columns are written as the
/// flattened `steps.*` arrays, which both ClickHouse 18.16 and modern versions accept.
#[derive(Debug, Serialize, PartialEq)]
pub struct WorkflowJobRow {
    pub repository_full_name: String,
    pub id: i64,
    pub version: u64,
    pub run_id: i64,
    pub run_attempt: i64,
    pub node_id: String,
    pub head_sha: String,
    pub head_branch: String,
    pub workflow_name: String,
    pub name: String,
    pub status: String,
    pub conclusion: String,
    pub created_at: String,
    pub started_at: String,
    pub completed_at: String,
    pub queue_time_s: Option<f64>,
    pub duration_s: Option<f64>,
    pub labels: Vec<String>,
    pub runner_id: i64,
    pub runner_name: String,
    pub runner_group_id: i64,
    pub runner_group_name: String,
    #[serde(rename = "steps.number")]
    pub steps_number: Vec<i64>,
    #[serde(rename = "steps.name")]
    pub steps_name: Vec<String>,
    #[serde(rename = "steps.status")]
    pub steps_status: Vec<String>,
    #[serde(rename = "steps.conclusion")]
    pub steps_conclusion: Vec<String>,
    #[serde(rename = "steps.started_at")]
    pub steps_started_at: Vec<String>,
    #[serde(rename = "steps.completed_at")]
    pub steps_completed_at: Vec<String>,
    pub url: String,
    pub html_url: String,
    pub run_url: String,
    pub check_run_url: String,
}

/// `DateTime('UTC')` text for an optional epoch-millis instant; "not yet" is the epoch, as in torchci.
fn datetime(millis: Option<i64>) -> String {
    format_datetime(millis.unwrap_or(0).div_euclid(1000).max(0))
}

impl From<WorkflowJob> for WorkflowJobRow {
    fn from(job: WorkflowJob) -> Self {
        Self {
            version: job.version.max(0) as u64,
            created_at: datetime(Some(job.created_at)),
            started_at: datetime(job.started_at),
            completed_at: datetime(job.completed_at),
            runner_id: job.runner_id.unwrap_or(0),
            runner_group_id: job.runner_group_id.unwrap_or(0),
            steps_number: job.steps.iter().map(|s| s.number).collect(),
            steps_name: job.steps.iter().map(|s| s.name.clone()).collect(),
            steps_status: job.steps.iter().map(|s| s.status.clone()).collect(),
            steps_conclusion: job.steps.iter().map(|s| s.conclusion.clone()).collect(),
            steps_started_at: job.steps.iter().map(|s| datetime(s.started_at)).collect(),
            steps_completed_at: job.steps.iter().map(|s| datetime(s.completed_at)).collect(),
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

/// The `project.workflow_job` stage.
pub struct WorkflowJobProjection {
    clickhouse: ClickHouse,
    codec: Codec<WorkflowJob>,
}

impl WorkflowJobProjection {
    pub const TABLE: &'static str = "workflow_job";

    pub fn new(clickhouse: ClickHouse) -> anyhow::Result<Self> {
        Ok(Self {
            clickhouse,
            codec: Codec::new()?,
        })
    }
}

impl BatchHandler for WorkflowJobProjection {
    fn stage(&self) -> &'static str {
        "project.workflow_job"
    }

    fn input_topic(&self) -> &'static str {
        HUD_WORKFLOW_JOB_V1
    }

    async fn handle(&mut self, batch: &[InRecord]) -> anyhow::Result<Vec<(usize, Action)>> {
        let mut rows = Vec::with_capacity(batch.len());
        let mut dead = Vec::new();
        for (index, record) in batch.iter().enumerate() {
            match record.payload.as_deref().map(|p| self.codec.decode(p)) {
                Some(Ok(job)) => rows.push(WorkflowJobRow::from(job)),
                Some(Err(e)) => dead.push((
                    index,
                    Action::DeadLetter {
                        reason: e.to_string(),
                    },
                )),
                None => dead.push((
                    index,
                    Action::DeadLetter {
                        reason: "record has no value".into(),
                    },
                )),
            }
        }
        self.clickhouse.insert(Self::TABLE, &rows).await?;
        metrics::counter!("hudstream_rows_inserted_total", "table" => Self::TABLE)
            .increment(rows.len() as u64);
        Ok(dead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/github/workflow_job"
    );
    const GOLDEN: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/workflow_job.rows.jsonl"
    );

    /// The rows the projection writes for the real lifecycle fixtures. The same file is inserted
    /// into ClickHouse 18.16 and a modern engine by `deploy/local/sql-compat.py`, so what the
    /// projection sends is what both versions are checked against. `UPDATE_GOLDEN=1` rewrites it.
    #[test]
    fn rows_match_the_golden_file_used_by_the_sql_compatibility_check() {
        let mut out = String::new();
        for name in [
            "queued.payload.json",
            "in_progress.payload.json",
            "completed.success.with-organization.payload.json",
            "in_progress.with-queued-steps.payload.json",
            "waiting.payload.json",
        ] {
            let bytes = std::fs::read(format!("{FIXTURES}/{name}")).expect("fixture");
            let job = hudstream_processors::workflow_job::normalize(&bytes).expect("normalizes");
            out.push_str(&serde_json::to_string(&WorkflowJobRow::from(job)).expect("json"));
            out.push('\n');
        }
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(GOLDEN, &out).expect("write golden");
        }
        let golden =
            std::fs::read_to_string(GOLDEN).expect("golden file (UPDATE_GOLDEN=1 creates it)");
        assert_eq!(
            golden, out,
            "projection rows changed: review, then UPDATE_GOLDEN=1"
        );
    }

    #[test]
    fn not_yet_is_the_epoch_and_steps_flatten_into_parallel_arrays() {
        let bytes = std::fs::read(format!("{FIXTURES}/in_progress.payload.json")).expect("fixture");
        let row = WorkflowJobRow::from(
            hudstream_processors::workflow_job::normalize(&bytes).expect("normalizes"),
        );
        assert_eq!(row.completed_at, "1970-01-01 00:00:00");
        assert_eq!(row.steps_name.len(), row.steps_started_at.len());
        let json = serde_json::to_value(&row).expect("json");
        assert!(json.get("steps.name").is_some());
    }
}
