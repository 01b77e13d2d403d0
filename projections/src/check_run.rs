//! `hud.check_run.v1` → `check_run` (DDL: `schemas/migrations/0006_check_run.sql`).

use hudstream_schemas::issue::CheckRun;

use crate::row::DateTime;

crate::row! {
    pub struct CheckRunRow from CheckRun as r {
        repository_full_name: String,
        head_sha: String,
        id: i64,
        version: u64,
        name: String,
        status: String,
        conclusion: String,
        started_at: DateTime,
        completed_at: DateTime,
        check_suite_id: i64,
        app_slug: String,
        external_id: String,
        pull_request_numbers: Vec<i64>,
        html_url: String,
        details_url: String,
    }
}

crate::avro_projection! {
    pub struct CheckRunProjection: CheckRun => CheckRunRow {
        table: "check_run",
    }
}
