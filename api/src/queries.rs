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

/// Every saved query the API runs.
pub const ALL: &[SavedQuery] = &[JOB_BY_ID, JOB_CLASSIFICATION_BY_ID];
