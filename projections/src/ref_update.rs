//! `hud.ref_update.v1` → `ref_update` (DDL: `schemas/migrations/0003_push.sql`).

use hudstream_schemas::push::RefUpdate;

use crate::row::DateTime;

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
    }
}
