//! `hudstream.PullRequest` (topic `hud.pull_request.v1`) and `hudstream.LabelEvent`
//! (topic `hud.label_event.v1`).

use serde::{Deserialize, Serialize};

/// A pull request as of one delivery. See `avro/pull_request.v*.avsc` for field docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullRequest {
    pub version: i64,
    pub repository_full_name: String,
    pub number: i64,
    pub id: i64,
    pub node_id: String,
    pub state: String,
    pub draft: bool,
    pub merged: bool,
    pub locked: bool,
    pub title: String,
    pub body: String,
    pub author_login: String,
    pub author_association: String,
    pub labels: Vec<String>,
    pub head_sha: String,
    pub head_ref: String,
    pub head_repository_full_name: String,
    pub base_sha: String,
    pub base_ref: String,
    pub merge_commit_sha: String,
    pub created_at: i64,
    pub updated_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub merged_at: Option<i64>,
    pub html_url: String,
}

crate::record_type! {
    PullRequest {
        name: "hudstream.PullRequest",
        topic: "hud.pull_request.v1",
        key: "{owner}/{repo}/{number}" => |r| format!("{}/{}", r.repository_full_name, r.number),
        schemas: ["../avro/pull_request.v1.avsc"],
    }
}

/// A label added to or removed from a PR or an issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelEvent {
    pub version: i64,
    pub repository_full_name: String,
    pub kind: String,
    pub number: i64,
    pub label_name: String,
    pub action: String,
    pub event_time: Option<i64>,
}

crate::record_type! {
    LabelEvent {
        name: "hudstream.LabelEvent",
        topic: "hud.label_event.v1",
        key: "{owner}/{repo}/{number}/{label}" => |r| format!("{}/{}/{}", r.repository_full_name, r.number, r.label_name),
        schemas: ["../avro/label_event.v1.avsc"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::check_backward_compatible;

    #[test]
    fn every_version_reads_the_older_ones() {
        check_backward_compatible::<PullRequest>().expect("compatible");
        check_backward_compatible::<LabelEvent>().expect("compatible");
    }
}
