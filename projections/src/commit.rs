//! `hud.commit.v1` → `commit` (DDL: `schemas/migrations/0003_push.sql`).

use hudstream_schemas::push::Commit;

use crate::row::DateTime;

crate::row! {
    pub struct CommitRow from Commit as r {
        repository_full_name: String,
        git_ref as "ref": String,
        sha: String,
        version: u64,
        branch: String,
        is_head: bool,
        is_distinct: bool = r.distinct,
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

crate::avro_projection! {
    pub struct CommitProjection: Commit => CommitRow {
        table: "commit",
    }
}
