//! `hudstream.Issue` (topic `hud.issue.v1`), `hudstream.IssueComment` (topic
//! `hud.issue_comment.v1`) and `hudstream.CheckRun` (topic `hud.check_run.v1`).

use serde::{Deserialize, Serialize};

/// An issue as of one delivery. See `avro/issue.v*.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    pub version: i64,
    pub repository_full_name: String,
    pub number: i64,
    pub id: i64,
    pub title: String,
    pub body: String,
    pub state: String,
    pub labels: Vec<String>,
    pub author_login: String,
    pub author_association: String,
    pub is_pull_request: bool,
    pub deleted: bool,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub html_url: String,
}

crate::record_type! {
    Issue {
        name: "hudstream.Issue",
        topic: "hud.issue.v1",
        key: "{owner}/{repo}/{number}" => |r| format!("{}/{}", r.repository_full_name, r.number),
        schemas: ["../avro/issue.v1.avsc"],
    }
}

/// A comment as of one delivery. See `avro/issue_comment.v*.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueComment {
    pub version: i64,
    pub repository_full_name: String,
    pub number: i64,
    pub id: i64,
    pub body: String,
    pub author_login: String,
    pub author_association: String,
    pub is_pull_request: bool,
    pub deleted: bool,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub html_url: String,
    pub issue_url: String,
}

crate::record_type! {
    IssueComment {
        name: "hudstream.IssueComment",
        topic: "hud.issue_comment.v1",
        key: "{owner}/{repo}/{number}/{comment id}" => |r| format!("{}/{}/{}", r.repository_full_name, r.number, r.id),
        schemas: ["../avro/issue_comment.v1.avsc"],
    }
}

/// A check run as of one delivery. See `avro/check_run.v*.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRun {
    pub version: i64,
    pub repository_full_name: String,
    pub id: i64,
    pub name: String,
    pub head_sha: String,
    pub status: String,
    pub conclusion: String,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub check_suite_id: i64,
    pub app_slug: String,
    pub external_id: String,
    pub pull_request_numbers: Vec<i64>,
    pub html_url: String,
    pub details_url: String,
}

crate::record_type! {
    CheckRun {
        name: "hudstream.CheckRun",
        topic: "hud.check_run.v1",
        key: "{owner}/{repo}/{check run id}" => |r| format!("{}/{}", r.repository_full_name, r.id),
        schemas: ["../avro/check_run.v1.avsc"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::check_backward_compatible;

    #[test]
    fn every_version_reads_the_older_ones() {
        check_backward_compatible::<Issue>().expect("compatible");
        check_backward_compatible::<IssueComment>().expect("compatible");
        check_backward_compatible::<CheckRun>().expect("compatible");
    }
}
