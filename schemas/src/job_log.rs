//! `hudstream.JobLog` and `hudstream.JobClassification`: a job's stored log and the rule
//! engine's verdict on it, on topics `hud.job_log.v1` and `hud.job_classification.v1`.

use serde::{Deserialize, Serialize};

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

/// Where a job's whole log is kept in the log store (`logs.store`).
pub fn log_path(repository: &str, job_id: i64) -> String {
    format!("{repository}/{job_id}.log.gz")
}

/// Where the latest uploaded part of a running job's log is kept.
pub fn partial_log_path(repository: &str, job_id: i64) -> String {
    format!("{repository}/{job_id}.partial.log.gz")
}

/// The states of a [`JobLog`], lowest rank first.
pub mod log_state {
    pub const UNAVAILABLE: &str = "unavailable";
    pub const GONE: &str = "gone";
    pub const PARTIAL: &str = "partial";
    pub const STORED: &str = "stored";
}

crate::record_type! {
    JobLog {
        name: "hudstream.JobLog",
        topic: "hud.job_log.v1",
        key: "{owner}/{repo}/{job id}" => |r| format!("{}/{}", r.repository_full_name, r.job_id),
        schemas: ["../avro/job_log.v1.avsc"],
    }
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
    /// The failure's signature (`signature::of_verdict`); '' unless matched. v2.
    #[serde(default)]
    pub signature: String,
    /// The failure line, masked (`signature::pattern`). v2.
    #[serde(default)]
    pub pattern: String,
}

impl JobClassification {
    /// Fills [`JobClassification::signature`] and [`JobClassification::pattern`] from the
    /// verdict (nothing to sign unless a rule matched).
    pub fn sign(&mut self) {
        if self.outcome == outcome::MATCHED {
            self.signature = crate::signature::of_verdict(&self.rule, &self.captures, &self.line);
            self.pattern = crate::signature::pattern(&self.line);
        } else {
            self.signature.clear();
            self.pattern.clear();
        }
    }
}

/// The outcomes of a [`JobClassification`].
pub mod outcome {
    pub const MATCHED: &str = "matched";
    pub const NO_MATCH: &str = "no_match";
    pub const LOG_GONE: &str = "log_gone";
    pub const LOG_UNAVAILABLE: &str = "log_unavailable";
}

crate::record_type! {
    JobClassification {
        name: "hudstream.JobClassification",
        topic: "hud.job_classification.v1",
        key: "{owner}/{repo}/{job id}" => |r| format!("{}/{}", r.repository_full_name, r.job_id),
        schemas: ["../avro/job_classification.v1.avsc", "../avro/job_classification.v2.avsc"],
    }
}

// Versions of log records and verdicts, computed from their content with the processors'
// packing rule (`crate::version::pack`):
//
// ```text
// bits 61-62  rank: what the record stands on (see each function)
// bits 19-60  the record's own time (fetched_at / classified_at), epoch milliseconds
// bits 0-18   SHA-256 over the record with version 0: equal versions ⇒ equal content
// ```
//
// So a verdict on the whole log beats one on a partial log whatever their order, and among
// verdicts of one rank the later one wins, to the millisecond — a re-classification with a
// new ruleset supersedes the old verdict, and a replay of the topic picks the same winner.

fn versioned<T: serde::Serialize>(rank: u64, millis: i64, content: &T) -> i64 {
    crate::version::pack(&[(rank, 2), (millis.max(0) as u64, 42)], content)
}

/// Rank: unavailable 0 < gone 1 < partial 2 < stored 3.
pub fn job_log_version(log: &JobLog) -> i64 {
    let rank = match log.state.as_str() {
        log_state::STORED => 3,
        log_state::PARTIAL => 2,
        log_state::GONE => 1,
        _ => 0,
    };
    let content = JobLog {
        version: 0,
        ..log.clone()
    };
    versioned(rank, log.fetched_at, &content)
}

/// Rank: no log (gone or unavailable) 0 < verdict on a partial log 1 < on the whole log 2.
pub fn classification_version(verdict: &JobClassification) -> i64 {
    let rank = match verdict.outcome.as_str() {
        outcome::LOG_GONE | outcome::LOG_UNAVAILABLE => 0,
        _ if verdict.log_partial => 1,
        _ => 2,
    };
    let content = JobClassification {
        version: 0,
        ..verdict.clone()
    };
    versioned(rank, verdict.classified_at, &content)
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
            signature: "0011223344556677".into(),
            pattern: "FAILED test_x.py::T::test_y".into(),
        };
        let codec = Codec::<JobClassification>::new().unwrap();
        assert_eq!(
            codec.decode(&codec.encode(&verdict).unwrap()).unwrap(),
            verdict
        );
    }
}

#[cfg(test)]
mod signature_tests {
    use super::*;
    use crate::wire::check_backward_compatible;

    #[test]
    fn v2_reads_v1_verdicts_which_have_no_signature() {
        check_backward_compatible::<JobClassification>().expect("compatible");
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;

    fn verdict(outcome: &str, partial: bool, at: i64) -> JobClassification {
        JobClassification {
            version: 0,
            repository_full_name: "o/r".into(),
            job_id: 1,
            head_sha: String::new(),
            outcome: outcome.into(),
            rule: String::new(),
            line: String::new(),
            line_number: 0,
            captures: vec![],
            context: vec![],
            ruleset_hash: String::new(),
            engine_version: String::new(),
            log_location: String::new(),
            log_partial: partial,
            log_bytes: 0,
            classified_at: at,
            signature: String::new(),
            pattern: String::new(),
        }
    }

    #[test]
    fn whole_beats_partial_beats_no_log_then_later_wins() {
        let late = 2_000_000_000_000;
        let early = 1_700_000_000_000;
        let whole_early = classification_version(&verdict(outcome::NO_MATCH, false, early));
        let partial_late = classification_version(&verdict(outcome::MATCHED, true, late));
        let gone_late = classification_version(&verdict(outcome::LOG_GONE, false, late));
        assert!(whole_early > partial_late);
        assert!(partial_late > gone_late);
        assert!(classification_version(&verdict(outcome::MATCHED, false, late)) > whole_early);
        assert!(whole_early >= 0 && gone_late >= 0);
    }

    #[test]
    fn a_millisecond_later_wins_whatever_the_content() {
        let at = 1_767_225_600_123;
        for rule in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            let mut first = verdict(outcome::MATCHED, false, at);
            first.rule = rule.into();
            let second = verdict(outcome::MATCHED, false, at + 1);
            assert!(classification_version(&second) > classification_version(&first));
        }
    }
}
