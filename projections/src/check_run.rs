//! `hud.check_run.v1` → `check_run` (DDL: `schemas/migrations/0006_check_run.sql`).

use hudstream_schemas::issue::CheckRun;

use crate::row::DateTime;

crate::row! {
    pub struct CheckRunRow {
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

impl From<CheckRun> for CheckRunRow {
    fn from(c: CheckRun) -> Self {
        Self {
            repository_full_name: c.repository_full_name,
            head_sha: c.head_sha,
            id: c.id,
            version: c.version.max(0) as u64,
            name: c.name,
            status: c.status,
            conclusion: c.conclusion,
            started_at: DateTime::from_millis(c.started_at),
            completed_at: DateTime::from_millis(c.completed_at),
            check_suite_id: c.check_suite_id,
            app_slug: c.app_slug,
            external_id: c.external_id,
            pull_request_numbers: c.pull_request_numbers,
            html_url: c.html_url,
            details_url: c.details_url,
        }
    }
}

crate::avro_projection! {
    pub struct CheckRunProjection: CheckRun => CheckRunRow {
        table: "check_run",
    }
}
