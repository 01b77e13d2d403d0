//! `hud.pull_request.v1` → `pull_request` (DDL: `schemas/migrations/0004_pull_request.sql`).

use hudstream_schemas::pull_request::PullRequest;

use crate::row::DateTime;

crate::row! {
    pub struct PullRequestRow from PullRequest as r {
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

crate::avro_projection! {
    pub struct PullRequestProjection: PullRequest => PullRequestRow {
        table: "pull_request",
    }
}
