//! `hud.pull_request.v1` → `pull_request` (DDL: `schemas/migrations/0004_pull_request.sql`).

use hudstream_schemas::pull_request::PullRequest;

use crate::row::DateTime;

crate::row! {
    pub struct PullRequestRow {
        repository_full_name: String,
        number: i64,
        version: u64,
        id: i64,
        node_id: String,
        state: String,
        draft: bool,
        merged: bool,
        locked: bool,
        title: String,
        body: String,
        author_login: String,
        author_association: String,
        labels: Vec<String>,
        head_sha: String,
        head_ref: String,
        head_repository_full_name: String,
        base_sha: String,
        base_ref: String,
        merge_commit_sha: String,
        created_at: DateTime,
        updated_at: DateTime,
        closed_at: DateTime,
        merged_at: DateTime,
        html_url: String,
    }
}

impl From<PullRequest> for PullRequestRow {
    fn from(p: PullRequest) -> Self {
        Self {
            repository_full_name: p.repository_full_name,
            number: p.number,
            version: p.version.max(0) as u64,
            id: p.id,
            node_id: p.node_id,
            state: p.state,
            draft: p.draft,
            merged: p.merged,
            locked: p.locked,
            title: p.title,
            body: p.body,
            author_login: p.author_login,
            author_association: p.author_association,
            labels: p.labels,
            head_sha: p.head_sha,
            head_ref: p.head_ref,
            head_repository_full_name: p.head_repository_full_name,
            base_sha: p.base_sha,
            base_ref: p.base_ref,
            merge_commit_sha: p.merge_commit_sha,
            created_at: DateTime::from_millis(Some(p.created_at)),
            updated_at: DateTime::from_millis(p.updated_at),
            closed_at: DateTime::from_millis(p.closed_at),
            merged_at: DateTime::from_millis(p.merged_at),
            html_url: p.html_url,
        }
    }
}

crate::avro_projection! {
    pub struct PullRequestProjection: PullRequest => PullRequestRow {
        table: "pull_request",
    }
}
