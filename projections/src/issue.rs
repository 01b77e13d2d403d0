//! `hud.issue.v1` → `issues` (DDL: `schemas/migrations/0005_issues.sql`).

use hudstream_schemas::issue::Issue;

use crate::row::DateTime;

crate::row! {
    pub struct IssueRow from Issue as r {
        repository_full_name: String,
        number: i64,
        version: u64,
        id: i64,
        title: String,
        body: String,
        state: String,
        labels: Vec<String>,
        author_login: String,
        author_association: String,
        is_pull_request: bool,
        deleted: bool,
        created_at: DateTime,
        updated_at: DateTime,
        closed_at: DateTime,
        html_url: String,
    }
}

crate::avro_projection! {
    pub struct IssueProjection: Issue => IssueRow {
        table: "issues",
    }
}
