//! `hud.issue_comment.v1` → `issue_comment` (DDL: `schemas/migrations/0005_issues.sql`).

use hudstream_schemas::issue::IssueComment;

use crate::row::DateTime;

crate::row! {
    pub struct IssueCommentRow {
        repository_full_name: String,
        number: i64,
        id: i64,
        version: u64,
        body: String,
        author_login: String,
        author_association: String,
        is_pull_request: bool,
        deleted: bool,
        created_at: DateTime,
        updated_at: DateTime,
        html_url: String,
        issue_url: String,
    }
}

impl From<IssueComment> for IssueCommentRow {
    fn from(c: IssueComment) -> Self {
        Self {
            repository_full_name: c.repository_full_name,
            number: c.number,
            id: c.id,
            version: c.version.max(0) as u64,
            body: c.body,
            author_login: c.author_login,
            author_association: c.author_association,
            is_pull_request: c.is_pull_request,
            deleted: c.deleted,
            created_at: DateTime::from_millis(c.created_at),
            updated_at: DateTime::from_millis(c.updated_at),
            html_url: c.html_url,
            issue_url: c.issue_url,
        }
    }
}

crate::avro_projection! {
    pub struct IssueCommentProjection: IssueComment => IssueCommentRow {
        table: "issue_comment",
    }
}
