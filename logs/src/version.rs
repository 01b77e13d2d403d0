//! Versions of log records and verdicts, computed from their content.
//!
//! ```text
//! bit 63      0
//! bits 61-62  rank: what the record stands on (see each function)
//! bits 29-60  the record's own time (fetched_at / classified_at), Unix seconds
//! bits 0-28   SHA-256 over the record with version cleared: equal versions ⇒ equal content
//! ```
//!
//! So a verdict on the whole log beats one on a partial log whatever their order, and among
//! verdicts of one rank the later one wins — a re-classification with a new ruleset
//! supersedes the old verdict, and a replay of the topic picks the same winner.

use sha2::{Digest, Sha256};

use hudstream_schemas::job_log::{log_state, outcome, JobClassification, JobLog};

fn compose(rank: u64, millis: i64, content: &[u8]) -> i64 {
    let seconds = (millis.max(0) / 1000) as u64 & 0xFFFF_FFFF;
    let digest = Sha256::digest(content);
    let hash = u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8])) >> 35;
    ((rank & 0b11) << 61 | seconds << 29 | hash) as i64
}

/// Rank: unavailable 0 < gone 1 < partial 2 < stored 3.
pub fn job_log_version(log: &JobLog) -> i64 {
    let rank = match log.state.as_str() {
        log_state::STORED => 3,
        log_state::PARTIAL => 2,
        log_state::GONE => 1,
        _ => 0,
    };
    let mut content = log.clone();
    content.version = 0;
    compose(
        rank,
        log.fetched_at,
        &serde_json::to_vec(&content).unwrap_or_default(),
    )
}

/// Rank: no log (gone or unavailable) 0 < verdict on a partial log 1 < on the whole log 2.
pub fn classification_version(verdict: &JobClassification) -> i64 {
    let rank = match verdict.outcome.as_str() {
        outcome::LOG_GONE | outcome::LOG_UNAVAILABLE => 0,
        _ if verdict.log_partial => 1,
        _ => 2,
    };
    let mut content = verdict.clone();
    content.version = 0;
    compose(
        rank,
        verdict.classified_at,
        &serde_json::to_vec(&content).unwrap_or_default(),
    )
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
}
