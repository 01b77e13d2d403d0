//! `hudstream.WorkflowRun`: one workflow run, normalized, on topic `hud.workflow_run.v1`.

use serde::{Deserialize, Serialize};

/// A workflow run as of one delivery. See `avro/workflow_run.v*.avsc` for field docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRun {
    pub version: i64,
    pub repository_full_name: String,
    pub id: i64,
    pub run_attempt: i64,
    pub run_number: i64,
    pub workflow_id: i64,
    pub check_suite_id: i64,
    pub name: String,
    pub display_title: String,
    pub path: String,
    pub event: String,
    pub status: String,
    pub conclusion: String,
    pub head_branch: String,
    pub head_sha: String,
    pub head_repository_full_name: String,
    pub pull_request_numbers: Vec<i64>,
    pub actor_login: String,
    pub triggering_actor_login: String,
    pub head_commit_message: String,
    pub head_commit_timestamp: Option<i64>,
    pub head_commit_author_name: String,
    pub head_commit_author_email: String,
    pub created_at: i64,
    pub updated_at: Option<i64>,
    pub run_started_at: Option<i64>,
    pub url: String,
    pub html_url: String,
    pub jobs_url: String,
    pub logs_url: String,
    pub previous_attempt_url: String,
}

crate::record_type! {
    WorkflowRun {
        name: "hudstream.WorkflowRun",
        topic: "hud.workflow_run.v1",
        key: "{owner}/{repo}/{run id}" => |r| format!("{}/{}", r.repository_full_name, r.id),
        schemas: ["../avro/workflow_run.v1.avsc"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{check_backward_compatible, Codec};

    #[test]
    fn round_trips_and_every_version_reads_the_older_ones() {
        let run = WorkflowRun {
            version: 1,
            repository_full_name: "o/r".into(),
            id: 2,
            run_attempt: 1,
            run_number: 3,
            workflow_id: 4,
            check_suite_id: 5,
            name: "CI".into(),
            display_title: "t".into(),
            path: ".github/workflows/ci.yml".into(),
            event: "push".into(),
            status: "completed".into(),
            conclusion: "success".into(),
            head_branch: "main".into(),
            head_sha: "abc".into(),
            head_repository_full_name: "o/r".into(),
            pull_request_numbers: vec![7],
            actor_login: "a".into(),
            triggering_actor_login: "a".into(),
            head_commit_message: "m".into(),
            head_commit_timestamp: Some(1),
            head_commit_author_name: "n".into(),
            head_commit_author_email: "e".into(),
            created_at: 1,
            updated_at: None,
            run_started_at: Some(2),
            url: "u".into(),
            html_url: "h".into(),
            jobs_url: "j".into(),
            logs_url: "l".into(),
            previous_attempt_url: String::new(),
        };
        let codec = Codec::<WorkflowRun>::new().expect("schemas parse");
        assert_eq!(
            codec
                .decode(&codec.encode(&run).expect("encodes"))
                .expect("decodes"),
            run
        );
        check_backward_compatible::<WorkflowRun>().expect("compatible");
    }
}
