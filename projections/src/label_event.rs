//! `hud.label_event.v1` → `label_event` (DDL: `schemas/migrations/0004_pull_request.sql`).

use hudstream_schemas::pull_request::LabelEvent;

use crate::row::DateTime;

crate::row! {
    pub struct LabelEventRow from LabelEvent as r {
        repository_full_name: String,
        number: i64,
        label_name: String,
        version: u64,
        kind: String,
        action: String,
        event_time: DateTime,
    }
}

crate::avro_projection! {
    pub struct LabelEventProjection: LabelEvent => LabelEventRow {
        table: "label_event",
    }
}
