//! The saved queries, compiled in. Each is also checked on both ClickHouse versions by
//! `deploy/local/sql-compat`.

/// A saved query: its name (the file stem) and text.
pub struct SavedQuery {
    pub name: &'static str,
    pub sql: &'static str,
}

pub const JOB_BY_ID: SavedQuery = SavedQuery {
    name: "job_by_id",
    sql: include_str!("../queries/job_by_id.sql"),
};

pub const JOB_CLASSIFICATION_BY_ID: SavedQuery = SavedQuery {
    name: "job_classification_by_id",
    sql: include_str!("../queries/job_classification_by_id.sql"),
};

/// For `hudstream reclassify`: jobs completed in a time range, with their stored logs.
pub const JOBS_TO_RECLASSIFY: SavedQuery = SavedQuery {
    name: "jobs_to_reclassify",
    sql: include_str!("../queries/jobs_to_reclassify.sql"),
};

/// For `hudstream reclassify --job`: one job's stored log.
pub const JOB_LOG_FOR_RECLASSIFY: SavedQuery = SavedQuery {
    name: "job_log_for_reclassify",
    sql: include_str!("../queries/job_log_for_reclassify.sql"),
};

/// Every saved query the API runs.
pub const ALL: &[SavedQuery] = &[JOB_BY_ID, JOB_CLASSIFICATION_BY_ID];
