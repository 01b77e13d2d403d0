//! `hudstream.WorkflowJob`: one GitHub Actions job, normalized, on topic `hud.workflow_job.v1`.
//!
//! The schema (`schemas/avro/workflow_job.v*.avsc`) is the contract; this type mirrors it for
//! Rust stages. Field names follow torchci's `default.workflow_job` so its queries port.

use serde::{Deserialize, Serialize};

/// A job as of one delivery. See the `.avsc` for field docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowJob {
    pub version: i64,
    pub repository_full_name: String,
    pub id: i64,
    pub run_id: i64,
    pub run_attempt: i64,
    pub node_id: String,
    pub head_sha: String,
    pub head_branch: String,
    pub workflow_name: String,
    pub name: String,
    pub status: String,
    pub conclusion: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub queue_time_s: Option<f64>,
    pub duration_s: Option<f64>,
    pub labels: Vec<String>,
    pub runner_id: Option<i64>,
    pub runner_name: String,
    pub runner_group_id: Option<i64>,
    pub runner_group_name: String,
    pub steps: Vec<WorkflowStep>,
    pub url: String,
    pub html_url: String,
    pub run_url: String,
    pub check_run_url: String,
}

/// One step of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowStep {
    pub number: i64,
    pub name: String,
    pub status: String,
    pub conclusion: String,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
}

crate::record_type! {
    WorkflowJob {
        name: "hudstream.WorkflowJob",
        topic: "hud.workflow_job.v1",
        key: "{owner}/{repo}/{job id}" => |r| format!("{}/{}", r.repository_full_name, r.id),
        schemas: ["../avro/workflow_job.v1.avsc"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{check_backward_compatible, Codec, DecodeError};

    pub(crate) fn sample() -> WorkflowJob {
        WorkflowJob {
            version: 42,
            repository_full_name: "pytorch/pytorch".into(),
            id: 289782451,
            run_id: 2202229078,
            run_attempt: 1,
            node_id: "MDEx".into(),
            head_sha: "3484a3fb816e0859fd6e1cea078d76385ff50625".into(),
            head_branch: "main".into(),
            workflow_name: "CodeQL".into(),
            name: "linters".into(),
            status: "completed".into(),
            conclusion: "success".into(),
            created_at: 1_628_159_638_000,
            started_at: Some(1_628_159_698_000),
            completed_at: None,
            queue_time_s: Some(60.0),
            duration_s: None,
            labels: vec!["ubuntu-latest".into()],
            runner_id: Some(5),
            runner_name: "GitHub Actions 5".into(),
            runner_group_id: None,
            runner_group_name: "GitHub Actions".into(),
            steps: vec![WorkflowStep {
                number: 1,
                name: "Set up job".into(),
                status: "completed".into(),
                conclusion: "success".into(),
                started_at: Some(1_628_159_168_000),
                completed_at: None,
            }],
            url: "https://api.github.com/x".into(),
            html_url: "https://github.com/x".into(),
            run_url: "https://api.github.com/r".into(),
            check_run_url: "https://api.github.com/c".into(),
        }
    }

    #[test]
    fn round_trips_through_single_object_encoding() {
        let codec = Codec::<WorkflowJob>::new().expect("published schemas parse");
        let job = sample();
        let bytes = codec.encode(&job).expect("encodes");
        assert_eq!(&bytes[..2], &[0xC3, 0x01]);
        assert_eq!(codec.decode(&bytes).expect("decodes"), job);
        assert_eq!(codec.schema_header(), "hudstream.WorkflowJob/1");
    }

    #[test]
    fn rejects_foreign_and_damaged_records_with_a_reason() {
        let codec = Codec::<WorkflowJob>::new().expect("published schemas parse");
        assert!(matches!(
            codec.decode(b"{}"),
            Err(DecodeError::TooShort { .. })
        ));
        assert!(matches!(
            codec.decode(b"{\"id\": 12345678}"),
            Err(DecodeError::BadMagic { .. })
        ));
        let mut bytes = codec.encode(&sample()).expect("encodes");
        bytes[5] ^= 0xFF;
        assert!(matches!(
            codec.decode(&bytes),
            Err(DecodeError::UnknownSchema { .. })
        ));
        let good = codec.encode(&sample()).expect("encodes");
        let truncated = &good[..good.len() - 3];
        assert!(codec.decode(truncated).is_err());
        let mut extended = good.clone();
        extended.push(0);
        assert!(matches!(
            codec.decode(&extended),
            Err(DecodeError::TrailingBytes { .. })
        ));
    }

    #[test]
    fn every_schema_version_reads_every_older_one() {
        check_backward_compatible::<WorkflowJob>().expect("compatible");
    }
}
