//! `hud.ref_update.v1` → `ref_update` (DDL: `schemas/migrations/0003_push.sql`).

use hudstream_schemas::push::RefUpdate;

use crate::row::DateTime;

crate::row! {
    pub struct RefUpdateRow from RefUpdate as r {
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

crate::avro_projection! {
    pub struct RefUpdateProjection: RefUpdate => RefUpdateRow {
        table: "ref_update",
    }
}
