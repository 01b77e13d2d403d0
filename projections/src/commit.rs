//! `hud.commit.v1` → `commit` (DDL: `schemas/migrations/0003_push.sql`).

use hudstream_schemas::push::Commit;

use crate::row::DateTime;

crate::row! {
    pub struct CommitRow {
        repository_full_name: String,
        git_ref as "ref": String,
        sha: String,
        version: u64,
        branch: String,
        is_head: bool,
        is_distinct: bool,
        message: String,
        timestamp: DateTime,
        pushed_at: DateTime,
        author_name: String,
        author_email: String,
        author_username: String,
        committer_name: String,
        committer_email: String,
        url: String,
    }
}

impl From<Commit> for CommitRow {
    fn from(c: Commit) -> Self {
        Self {
            repository_full_name: c.repository_full_name,
            git_ref: c.git_ref,
            sha: c.sha,
            version: c.version.max(0) as u64,
            branch: c.branch,
            is_head: c.is_head,
            is_distinct: c.distinct,
            message: c.message,
            timestamp: DateTime::from_millis(c.timestamp),
            pushed_at: DateTime::from_millis(c.pushed_at),
            author_name: c.author_name,
            author_email: c.author_email,
            author_username: c.author_username,
            committer_name: c.committer_name,
            committer_email: c.committer_email,
            url: c.url,
        }
    }
}

crate::avro_projection! {
    pub struct CommitProjection: Commit => CommitRow {
        table: "commit",
    }
}
