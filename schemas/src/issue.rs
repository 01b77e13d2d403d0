//! `hudstream.Issue` (topic `hud.issue.v1`), `hudstream.IssueComment` (topic
//! `hud.issue_comment.v1`) and `hudstream.CheckRun` (topic `hud.check_run.v1`).

use serde::{Deserialize, Serialize};

use crate::wire::RecordType;

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

impl Issue {
    /// `{owner}/{repo}/{number}`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.repository_full_name, self.number)
    }
}

impl RecordType for Issue {
    const NAME: &'static str = "hudstream.Issue";
    const SCHEMAS: &'static [&'static str] = &[include_str!("../avro/issue.v1.avsc")];
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

impl IssueComment {
    /// `{owner}/{repo}/{number}/{comment id}`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.repository_full_name, self.number, self.id)
    }
}

impl RecordType for IssueComment {
    const NAME: &'static str = "hudstream.IssueComment";
    const SCHEMAS: &'static [&'static str] = &[include_str!("../avro/issue_comment.v1.avsc")];
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

impl CheckRun {
    /// `{owner}/{repo}/{id}`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.repository_full_name, self.id)
    }
}

impl RecordType for CheckRun {
    const NAME: &'static str = "hudstream.CheckRun";
    const SCHEMAS: &'static [&'static str] = &[include_str!("../avro/check_run.v1.avsc")];
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
