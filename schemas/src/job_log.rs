//! `hudstream.JobLog` and `hudstream.JobClassification`: a job's stored log and the rule
//! engine's verdict on it, on topics `hud.job_log.v1` and `hud.job_classification.v1`.

use serde::{Deserialize, Serialize};

use crate::wire::RecordType;

/// A job's log as stored, or found gone. See the `.avsc` for field docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobLog {
    pub version: i64,
    pub repository_full_name: String,
    pub job_id: i64,
    pub head_sha: String,
    pub conclusion: String,
    pub state: String,
    pub location: String,
    pub compressed_bytes: i64,
    pub source: String,
    pub reason: String,
    pub fetched_at: i64,
}

/// The states of a [`JobLog`], lowest rank first.
pub mod log_state {
    pub const UNAVAILABLE: &str = "unavailable";
    pub const GONE: &str = "gone";
    pub const PARTIAL: &str = "partial";
    pub const STORED: &str = "stored";
}

impl JobLog {
    /// `{owner}/{repo}/{job id}`, the same key as the job's own records.
    pub fn key(&self) -> String {
        format!("{}/{}", self.repository_full_name, self.job_id)
    }
}

impl RecordType for JobLog {
    const NAME: &'static str = "hudstream.JobLog";
    const SCHEMAS: &'static [&'static str] = &[include_str!("../avro/job_log.v1.avsc")];
}

/// A verdict on a job's log. See the `.avsc` for field docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobClassification {
    pub version: i64,
    pub repository_full_name: String,
    pub job_id: i64,
    pub head_sha: String,
    pub outcome: String,
    pub rule: String,
    pub line: String,
    pub line_number: i64,
    pub captures: Vec<String>,
    pub context: Vec<String>,
    pub ruleset_hash: String,
    pub engine_version: String,
    pub log_location: String,
    pub log_partial: bool,
    pub log_bytes: i64,
    pub classified_at: i64,
}

/// The outcomes of a [`JobClassification`].
pub mod outcome {
    pub const MATCHED: &str = "matched";
    pub const NO_MATCH: &str = "no_match";
    pub const LOG_GONE: &str = "log_gone";
    pub const LOG_UNAVAILABLE: &str = "log_unavailable";
}

impl JobClassification {
    pub fn key(&self) -> String {
        format!("{}/{}", self.repository_full_name, self.job_id)
    }
}

impl RecordType for JobClassification {
    const NAME: &'static str = "hudstream.JobClassification";
    const SCHEMAS: &'static [&'static str] = &[include_str!("../avro/job_classification.v1.avsc")];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Codec;

    #[test]
    fn both_records_round_trip() {
        let log = JobLog {
            version: 7,
            repository_full_name: "pytorch/pytorch".into(),
            job_id: 1,
            head_sha: "abc".into(),
            conclusion: "failure".into(),
            state: log_state::STORED.into(),
            location: "logs/pytorch/pytorch/1.log.gz".into(),
            compressed_bytes: 10,
            source: "github".into(),
            reason: String::new(),
            fetched_at: 1_700_000_000_000,
        };
        let codec = Codec::<JobLog>::new().unwrap();
        assert_eq!(codec.decode(&codec.encode(&log).unwrap()).unwrap(), log);
        let verdict = JobClassification {
            version: 9,
            repository_full_name: "pytorch/pytorch".into(),
            job_id: 1,
            head_sha: "abc".into(),
            outcome: outcome::MATCHED.into(),
            rule: "pytest failure".into(),
            line: "FAILED test_x.py::T::test_y".into(),
            line_number: 750,
            captures: vec!["test_x.py::T::test_y".into()],
            context: vec!["+ python test/run_test.py".into()],
            ruleset_hash: "sha256:00".into(),
            engine_version: "hudstream-classifier/0.1.0".into(),
            log_location: log.location.clone(),
            log_partial: false,
            log_bytes: 123,
            classified_at: 1_700_000_000_001,
        };
        let codec = Codec::<JobClassification>::new().unwrap();
        assert_eq!(
            codec.decode(&codec.encode(&verdict).unwrap()).unwrap(),
            verdict
        );
    }
}
