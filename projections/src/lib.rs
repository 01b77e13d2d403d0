//! ClickHouse writers: one projection per table, each fed by one topic.
//!
//! A projection (`Projection`, one file per table) says how a record becomes rows; the shared
//! [`writer`] batches them into one `RowBinary` insert, retries transient failures without
//! moving on, and dead-letters the rows ClickHouse refuses on their own. The consumer loop in
//! `hudstream_runtime::kafka` commits offsets only after the insert. Rows carry the record's
//! content-derived `version` and every table is a `ReplacingMergeTree(version)`, so writing a
//! batch twice — after a retry, a rebalance or a full replay (`hudstream_replay`) — leaves the
//! same table.
//!
//! Where to find a table: its DDL in `schemas/migrations/`, its writer here (see [`all`]), its
//! readers in `api/queries/`.

pub mod check_run;
pub mod commit;
pub mod dead_letter;
pub mod issue;
pub mod issue_comment;
pub mod job_classification;
pub mod job_failure;
pub mod label_event;
pub mod oot;
pub mod pull_request;
pub mod ref_update;
pub mod replication;
pub mod row;
pub mod test_case;
pub mod test_report;
pub mod workflow_job;
pub mod workflow_run;
pub mod writer;

#[cfg(test)]
mod testdata;

use std::sync::Arc;

pub use writer::{Encoder, Projection, ProjectionStage, TableWriter};

/// Every projection, in the order `replay all` rebuilds them (dead letters last, since
/// rebuilding the others may add to them). A new table is one more line.
pub fn all() -> Vec<Arc<dyn Encoder>> {
    vec![
        Arc::new(workflow_job::WorkflowJobProjection),
        Arc::new(workflow_job::WorkflowJobByIdProjection),
        Arc::new(workflow_job::GridJobProjection),
        Arc::new(workflow_job::JobPageProjection),
        Arc::new(job_failure::JobFailureProjection),
        Arc::new(workflow_run::WorkflowRunProjection),
        Arc::new(commit::CommitProjection),
        Arc::new(ref_update::RefUpdateProjection),
        Arc::new(pull_request::PullRequestProjection),
        Arc::new(label_event::LabelEventProjection),
        Arc::new(issue::IssueProjection),
        Arc::new(issue_comment::IssueCommentProjection),
        Arc::new(check_run::CheckRunProjection),
        Arc::new(oot::OotWorkflowJobProjection),
        Arc::new(job_classification::JobClassificationProjection),
        Arc::new(test_report::TestReportProjection),
        Arc::new(test_case::TestCaseProjection),
        Arc::new(test_case::TestCaseByNameProjection),
        Arc::new(test_case::TestFailureProjection),
        Arc::new(replication::ReplicationProjection),
        Arc::new(dead_letter::DeadLetterProjection),
    ]
}

/// The projection writing `table`, or an error listing the tables there are.
pub fn by_table(table: &str) -> anyhow::Result<Arc<dyn Encoder>> {
    let all = all();
    let names: Vec<&str> = all.iter().map(|e| e.table()).collect();
    let names = names.join(", ");
    all.into_iter()
        .find(|e| e.table() == table)
        .ok_or_else(|| anyhow::anyhow!("no table {table:?}; the projected tables are: {names}"))
}
