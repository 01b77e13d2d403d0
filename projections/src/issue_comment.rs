//! `hud.issue_comment.v1` → `issue_comment` (DDL: `schemas/migrations/0005_issues.sql`).

use hudstream_schemas::issue::IssueComment;

use crate::row::DateTime;

crate::row! {
    pub struct IssueCommentRow from IssueComment as r {
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

crate::avro_projection! {
    pub struct IssueCommentProjection: IssueComment => IssueCommentRow {
        table: "issue_comment",
    }
}
