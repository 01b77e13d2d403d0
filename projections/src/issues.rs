//! `hud.issue.v1` → `issues`, `hud.issue_comment.v1` → `issue_comment` (DDL:
//! `schemas/migrations/0005_issues.sql`) and `hud.check_run.v1` → `check_run` (DDL:
//! `schemas/migrations/0006_check_run.sql`).

use hudstream_schemas::issue::{CheckRun, Issue, IssueComment};
use hudstream_schemas::topics::{HUD_CHECK_RUN_V1, HUD_ISSUE_COMMENT_V1, HUD_ISSUE_V1};

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
        topic: HUD_ISSUE_V1,
    }
}

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
        topic: HUD_ISSUE_COMMENT_V1,
    }
}

crate::row! {
    pub struct CheckRunRow {
        repository_full_name: String,
        head_sha: String,
        id: i64,
        version: u64,
        name: String,
        status: String,
        conclusion: String,
        started_at: DateTime,
        completed_at: DateTime,
        check_suite_id: i64,
        app_slug: String,
        external_id: String,
        pull_request_numbers: Vec<i64>,
        html_url: String,
        details_url: String,
    }
}

impl From<CheckRun> for CheckRunRow {
    fn from(c: CheckRun) -> Self {
        Self {
            repository_full_name: c.repository_full_name,
            head_sha: c.head_sha,
            id: c.id,
            version: c.version.max(0) as u64,
            name: c.name,
            status: c.status,
            conclusion: c.conclusion,
            started_at: DateTime::from_millis(c.started_at),
            completed_at: DateTime::from_millis(c.completed_at),
            check_suite_id: c.check_suite_id,
            app_slug: c.app_slug,
            external_id: c.external_id,
            pull_request_numbers: c.pull_request_numbers,
            html_url: c.html_url,
            details_url: c.details_url,
        }
    }
}

crate::avro_projection! {
    pub struct CheckRunProjection: CheckRun => CheckRunRow {
        table: "check_run",
        topic: HUD_CHECK_RUN_V1,
    }
}
