//! `hud.issue.v1` → `issues` (DDL: `schemas/migrations/0005_issues.sql`).

use hudstream_schemas::issue::Issue;

use crate::row::DateTime;

crate::row! {
    pub struct IssueRow {
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

impl From<Issue> for IssueRow {
    fn from(i: Issue) -> Self {
        Self {
            repository_full_name: i.repository_full_name,
            number: i.number,
            version: i.version.max(0) as u64,
            id: i.id,
            title: i.title,
            body: i.body,
            state: i.state,
            labels: i.labels,
            author_login: i.author_login,
            author_association: i.author_association,
            is_pull_request: i.is_pull_request,
            deleted: i.deleted,
            created_at: DateTime::from_millis(i.created_at),
            updated_at: DateTime::from_millis(i.updated_at),
            closed_at: DateTime::from_millis(i.closed_at),
            html_url: i.html_url,
        }
    }
}

crate::avro_projection! {
    pub struct IssueProjection: Issue => IssueRow {
        table: "issues",
    }
}
