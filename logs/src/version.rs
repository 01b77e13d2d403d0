//! Versions of log records and verdicts, computed from their content with the processors'
//! packing rule ([`pack`]):
//!
//! ```text
//! bits 61-62  rank: what the record stands on (see each function)
//! bits 19-60  the record's own time (fetched_at / classified_at), epoch milliseconds
//! bits 0-18   SHA-256 over the record with version 0: equal versions ⇒ equal content
//! ```
//!
//! So a verdict on the whole log beats one on a partial log whatever their order, and among
//! verdicts of one rank the later one wins, to the millisecond — a re-classification with a
//! new ruleset supersedes the old verdict, and a replay of the topic picks the same winner.

use serde::Serialize;

use hudstream_processors::version::pack;
use hudstream_schemas::job_log::{log_state, outcome, JobClassification, JobLog};

fn versioned<T: Serialize>(rank: u64, millis: i64, content: &T) -> i64 {
    pack(&[(rank, 2), (millis.max(0) as u64, 42)], content)
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
