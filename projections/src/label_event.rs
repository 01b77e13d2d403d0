//! `hud.label_event.v1` → `label_event` (DDL: `schemas/migrations/0004_pull_request.sql`).

use hudstream_schemas::pull_request::LabelEvent;

use crate::row::DateTime;

crate::row! {
    pub struct LabelEventRow {
        repository_full_name: String,
        number: i64,
        label_name: String,
        version: u64,
        kind: String,
        action: String,
        event_time: DateTime,
    }
}

impl From<LabelEvent> for LabelEventRow {
    fn from(l: LabelEvent) -> Self {
        Self {
            repository_full_name: l.repository_full_name,
            number: l.number,
            label_name: l.label_name,
            version: l.version.max(0) as u64,
            kind: l.kind,
            action: l.action,
            event_time: DateTime::from_millis(l.event_time),
        }
    }
}

crate::avro_projection! {
    pub struct LabelEventProjection: LabelEvent => LabelEventRow {
        table: "label_event",
    }
}
