//! `hud.dead_letters.v1` → `dead_letter` (DDL: `schemas/migrations/0009_dead_letter.sql`).
//!
//! A dead letter is the failed record, unchanged, plus headers naming the stage, the reason
//! and where the record was read (`hudstream-source`, `topic/partition/offset`). The row is
//! keyed by that stage and source, so the same failure dead-lettered twice is one row.

use hudstream_runtime::worker::InRecord;
use hudstream_schemas::headers as h;
use hudstream_schemas::topics::DEAD_LETTERS;

use crate::row::{Bytes, DateTime};
use crate::writer::Projection;

/// Payloads longer than this are cut in the table (the topic keeps every byte).
pub const MAX_PAYLOAD_IN_TABLE: usize = 1 << 20;

crate::row! {
    pub struct DeadLetterRow {
        stage: String,
        source_topic: String,
        source_partition: i32,
        source_offset: i64,
        version: u64,
        reason: String,
        key: Bytes,
        payload: Bytes,
        payload_size: u64,
        payload_truncated: bool,
        github_event: String,
        github_delivery: String,
        dead_lettered_at: DateTime,
        header_names as "headers.name": Vec<String>,
        header_values as "headers.value": Vec<Bytes>,
    }
}

impl DeadLetterRow {
    pub fn from_record(record: &InRecord) -> Self {
        let text = |name: &str| record.header_str(name).unwrap_or_default().to_string();
        // `topic/partition/offset` of the failed record. A dead letter written by something
        // other than hudstream may lack it; it is then keyed by its own place in this topic.
        let (source_topic, source_partition, source_offset) = record
            .header_str(h::SOURCE)
            .and_then(parse_source)
            .unwrap_or_else(|| (record.topic.clone(), record.partition, record.offset));
        let payload = record.payload.clone().unwrap_or_default();
        let payload_size = payload.len() as u64;
        let payload_truncated = payload.len() > MAX_PAYLOAD_IN_TABLE;
        let payload = if payload_truncated {
            payload[..MAX_PAYLOAD_IN_TABLE].to_vec()
        } else {
            payload
        };
        Self {
            stage: text(h::DLQ_STAGE),
            source_topic,
            source_partition,
            source_offset,
            // The earliest dead letter of a failure wins (ReplacingMergeTree keeps the highest
            // version): a retried batch that dead-letters again, or a replay, keeps the row.
            version: u64::MAX - record.offset.max(0) as u64,
            reason: text(h::DLQ_REASON),
            key: Bytes(record.key.clone().unwrap_or_default()),
            payload: Bytes(payload),
            payload_size,
            payload_truncated,
            github_event: text(h::GITHUB_EVENT),
            github_delivery: text(h::GITHUB_DELIVERY),
            dead_lettered_at: DateTime::from_millis(record.timestamp_ms),
            header_names: record.headers.iter().map(|(n, _)| n.clone()).collect(),
            header_values: record
                .headers
                .iter()
                .map(|(_, v)| Bytes(v.clone()))
                .collect(),
        }
    }
}

/// `topic/partition/offset`, split from the right.
fn parse_source(source: &str) -> Option<(String, i32, i64)> {
    let (rest, offset) = source.rsplit_once('/')?;
    let (topic, partition) = rest.rsplit_once('/')?;
    Some((
        topic.to_string(),
        partition.parse().ok()?,
        offset.parse().ok()?,
    ))
}

pub struct DeadLetterProjection;

impl Projection for DeadLetterProjection {
    type Row = DeadLetterRow;
    const TABLE: &'static str = "dead_letter";
    const TOPIC: &'static str = DEAD_LETTERS;
    const STAGE: &'static str = "project.dead_letter";
    const DEAD_LETTER_REFUSED_ROWS: bool = false;
    // The record key is the failed record's, not this row's identity.
    const LATEST_VERSION_WINS: bool = false;

    fn rows(&self, record: &InRecord) -> Result<Vec<DeadLetterRow>, String> {
        Ok(vec![DeadLetterRow::from_record(record)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_letter(payload: Vec<u8>, headers: Vec<(&str, &str)>) -> InRecord {
        InRecord {
            topic: DEAD_LETTERS.into(),
            partition: 0,
            offset: 7,
            key: Some(b"o/r/1".to_vec()),
            payload: Some(payload),
            headers: headers
                .into_iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            timestamp_ms: Some(1_700_000_000_123),
        }
    }

    #[test]
    fn the_row_is_keyed_by_the_failed_records_stage_and_place() {
        let row = DeadLetterRow::from_record(&dead_letter(
            b"{}".to_vec(),
            vec![
                (h::DLQ_STAGE, "process.workflow_job"),
                (h::DLQ_REASON, "missing workflow_job"),
                (h::SOURCE, "github.workflow_job/3/41"),
                (h::GITHUB_EVENT, "workflow_job"),
            ],
        ));
        assert_eq!(row.stage, "process.workflow_job");
        assert_eq!(
            (
                row.source_topic.as_str(),
                row.source_partition,
                row.source_offset
            ),
            ("github.workflow_job", 3, 41)
        );
        assert_eq!(row.reason, "missing workflow_job");
        assert_eq!(row.dead_lettered_at, DateTime(1_700_000_000));
        assert_eq!(row.header_names.len(), row.header_values.len());
    }

    #[test]
    fn the_earliest_dead_letter_of_a_failure_has_the_highest_version() {
        let headers = vec![
            (h::DLQ_STAGE, "project.workflow_job"),
            (h::SOURCE, "hud.workflow_job.v1/0/5"),
        ];
        let first = DeadLetterRow::from_record(&dead_letter(b"{}".to_vec(), headers.clone()));
        let mut again = dead_letter(b"{}".to_vec(), headers);
        again.offset = 9; // the same failure dead-lettered again (a retried batch, a replay)
        let again = DeadLetterRow::from_record(&again);
        assert_eq!(
            (&first.source_topic, first.source_offset),
            (&again.source_topic, again.source_offset),
            "one row key"
        );
        assert!(
            first.version > again.version,
            "ReplacingMergeTree keeps the first"
        );
    }

    #[test]
    fn a_foreign_dead_letter_is_keyed_by_its_own_place_and_huge_payloads_are_cut() {
        let row = DeadLetterRow::from_record(&dead_letter(
            vec![b'x'; MAX_PAYLOAD_IN_TABLE + 10],
            vec![(h::SOURCE, "no-slashes")],
        ));
        assert_eq!(
            (
                row.source_topic.as_str(),
                row.source_partition,
                row.source_offset
            ),
            (DEAD_LETTERS, 0, 7)
        );
        assert!(row.payload_truncated);
        assert_eq!(row.payload.0.len(), MAX_PAYLOAD_IN_TABLE);
        assert_eq!(row.payload_size, (MAX_PAYLOAD_IN_TABLE + 10) as u64);
    }
}
