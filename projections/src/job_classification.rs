//! `hud.job_classification.v1` → `job_classification` (DDL: `schemas/migrations/0008` and
//! `0010`). One row per job, the highest version winning: a newer ruleset's verdict, or the
//! verdict on the whole log after one on a partial log. Kept apart from `workflow_job`, so no
//! job event can erase a verdict; readers join on `(repository_full_name, job_id)`.

use hudstream_schemas::job_log::JobClassification;

use crate::row::DateTime;

crate::row! {
    pub struct JobClassificationRow from JobClassification as r {
        repository_full_name: String,
        job_id: i64,
        version: u64,
        head_sha: String,
        outcome: String,
        rule: String,
        line: String,
        line_number: i64,
        captures: Vec<String>,
        context: Vec<String>,
        ruleset_hash: String,
        engine_version: String,
        log_location: String,
        log_partial: bool,
        log_bytes: i64,
        classified_at: DateTime,
    }
}

crate::avro_projection! {
    pub struct JobClassificationProjection: JobClassification => JobClassificationRow {
        table: "job_classification",
    }
}
