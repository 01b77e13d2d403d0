//! `hud.commit.v1` → `commit` and `hud.ref_update.v1` → `ref_update`
//! (DDL: `schemas/migrations/0003_push.sql`).

use hudstream_schemas::push::{Commit, RefUpdate};
use hudstream_schemas::topics::{HUD_COMMIT_V1, HUD_REF_UPDATE_V1};

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
        topic: HUD_COMMIT_V1,
    }
}

crate::row! {
    pub struct RefUpdateRow {
        repository_full_name: String,
        git_ref as "ref": String,
        version: u64,
        before: String,
        after: String,
        created: bool,
        deleted: bool,
        forced: bool,
        commit_count: i64,
        pusher_name: String,
        pushed_at: DateTime,
    }
}

impl From<RefUpdate> for RefUpdateRow {
    fn from(r: RefUpdate) -> Self {
        Self {
            repository_full_name: r.repository_full_name,
            git_ref: r.git_ref,
            version: r.version.max(0) as u64,
            before: r.before,
            after: r.after,
            created: r.created,
            deleted: r.deleted,
            forced: r.forced,
            commit_count: r.commit_count,
            pusher_name: r.pusher_name,
            pushed_at: DateTime::from_millis(r.pushed_at),
        }
    }
}

crate::avro_projection! {
    pub struct RefUpdateProjection: RefUpdate => RefUpdateRow {
        table: "ref_update",
        topic: HUD_REF_UPDATE_V1,
    }
}
