//! `hud.replication.v1` → `replication` (DDL: `schemas/migrations/0014_replication.sql`).

use hudstream_schemas::replication::Replication;

use crate::row::DateTime;

crate::row! {
    pub struct ReplicationRow from Replication as r {
        repository_full_name: String,
        kind: String,
        id: i64,
        via: String,
        version: u64,
        origin: String,
        at: DateTime,
    }
}

crate::avro_projection! {
    pub struct ReplicationProjection: Replication => ReplicationRow {
        table: "replication",
    }
}
