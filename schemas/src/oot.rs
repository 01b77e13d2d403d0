//! `hudstream.OotResult`: one out-of-tree CI callback, on topic `hud.oot_result.v1`.

use serde::{Deserialize, Serialize};

/// One callback, flattened; `None` = not set by this callback. See `avro/oot_result.v*.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OotResult {
    pub version: i64,
    #[serde(rename = "dynamoKey")]
    pub dynamo_key: String,
    pub status: String,
    pub downstream_repo: String,
    pub upstream_repo: String,
    pub pr_number: i64,
    pub pytorch_head_sha: String,
    pub delivery_id: String,
    pub workflow_run_url: String,
    pub workflow_name: String,
    pub job_name: String,
    pub check_run_id: String,
    pub run_id: String,
    pub run_attempt: i64,
    pub event_type: String,
    pub downstream_repo_level: Option<String>,
    pub queue_time: Option<f64>,
    pub execution_time: Option<f64>,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub conclusion: Option<String>,
    pub passed_tests: Option<i64>,
    pub failed_tests: Option<i64>,
    pub skipped_tests: Option<i64>,
    pub total_tests: Option<i64>,
    pub artifact_url: Option<String>,
}

crate::record_type! {
    OotResult {
        name: "hudstream.OotResult",
        topic: "hud.oot_result.v1",
        key: "{verified_repo}/{delivery_id}/{workflow_name}/{job_name}/{check_run_id} (torchci's dynamoKey)" => |r| r.dynamo_key.clone(),
        schemas: ["../avro/oot_result.v1.avsc"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::check_backward_compatible;

    #[test]
    fn every_version_reads_the_older_ones() {
        check_backward_compatible::<OotResult>().expect("compatible");
    }
}
