//! `hud.job_classification.v1` → `job_classification` (DDL: `schemas/migrations/0008` and
//! `0010`). One row per job, the highest version winning: a newer ruleset's verdict, or the
//! verdict on the whole log after one on a partial log. Kept apart from `workflow_job`, so no
//! job event can erase a verdict; readers join on `(repository_full_name, job_id)`.

use hudstream_schemas::job_log::JobClassification;

use crate::row::DateTime;

crate::row! {
    pub struct JobClassificationRow {
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

impl From<JobClassification> for JobClassificationRow {
    fn from(c: JobClassification) -> Self {
        Self {
            repository_full_name: c.repository_full_name,
            job_id: c.job_id,
            version: c.version.max(0) as u64,
            head_sha: c.head_sha,
            outcome: c.outcome,
            rule: c.rule,
            line: c.line,
            line_number: c.line_number,
            captures: c.captures,
            context: c.context,
            ruleset_hash: c.ruleset_hash,
            engine_version: c.engine_version,
            log_location: c.log_location,
            log_partial: c.log_partial,
            log_bytes: c.log_bytes,
            classified_at: DateTime::from_millis(Some(c.classified_at)),
        }
    }
}

crate::avro_projection! {
    pub struct JobClassificationProjection: JobClassification => JobClassificationRow {
        table: "job_classification",
    }
}
