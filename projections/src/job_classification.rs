//! `hud.job_classification.v1` → `job_classification` (DDL: `schemas/migrations/0008`, `0010`
//! and `0012`). One row per job, the highest version winning: a newer ruleset's verdict, or the
//! verdict on the whole log after one on a partial log. Kept apart from `workflow_job`, so no
//! job event can erase a verdict; readers join on `(repository_full_name, job_id)`.

use hudstream_schemas::job_log::{outcome, JobClassification};
use hudstream_schemas::signature;

use crate::row::DateTime;

/// A verdict written before v2 carried no signature: the projection signs it the way the
/// classifier does today, so a replay of an old topic fills the columns too.
fn signature_of(
    outcome_: &str,
    rule: &str,
    captures: &[String],
    line: &str,
    signed: &str,
) -> String {
    if !signed.is_empty() || outcome_ != outcome::MATCHED {
        return signed.to_string();
    }
    signature::of_verdict(rule, captures, line)
}

fn pattern_of(outcome_: &str, line: &str, signed: &str) -> String {
    if !signed.is_empty() || outcome_ != outcome::MATCHED {
        return signed.to_string();
    }
    signature::pattern(line)
}

crate::row! {
    pub struct JobClassificationRow from JobClassification as r {
        repository_full_name: String,
        job_id: i64,
        version: u64,
        head_sha: String,
        outcome: String = r.outcome.clone(),
        rule: String = r.rule.clone(),
        line: String = r.line.clone(),
        line_number: i64,
        captures: Vec<String> = r.captures.clone(),
        context: Vec<String>,
        ruleset_hash: String,
        engine_version: String,
        log_location: String,
        log_partial: bool,
        log_bytes: i64,
        classified_at: DateTime,
        signature: String = signature_of(&r.outcome, &r.rule, &r.captures, &r.line, &r.signature),
        pattern: String = pattern_of(&r.outcome, &r.line, &r.pattern),
    }
}

crate::avro_projection! {
    pub struct JobClassificationProjection: JobClassification => JobClassificationRow {
        table: "job_classification",
    }
}
