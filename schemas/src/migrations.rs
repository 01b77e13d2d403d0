//! ClickHouse migrations: the DDL of every table hudstream writes, applied in order.
//!
//! Each migration is one file in `schemas/migrations/`, named `NNNN_description.sql`; statements
//! are separated by a line ending in `;`. `{database}` stands for the configured database. The
//! SQL keeps to the subset that runs on both ClickHouse 18.16 (the local test server) and modern
//! ClickHouse (production), which `deploy/local/sql-compat` checks in CI. A migration, once
//! released, is never edited: add a new one.

/// One migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    /// The statements of this migration, with `{database}` replaced.
    pub fn statements(&self, database: &str) -> Vec<String> {
        split_statements(self.sql)
            .into_iter()
            .map(|s| s.replace("{database}", database))
            .collect()
    }

    /// A checksum of the file, recorded when applied so an edited migration is noticed.
    pub fn checksum(&self) -> String {
        // FNV-1a: stable across Rust versions and platforms, unlike `DefaultHasher`.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.sql.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{hash:016x}")
    }
}

/// Declares the migration list: `version name = "file";`, oldest first.
macro_rules! migrations {
    ($($version:literal $name:ident = $file:literal;)*) => {
        /// Every migration, oldest first.
        pub const MIGRATIONS: &[Migration] = &[$(
            Migration {
                version: $version,
                name: stringify!($name),
                sql: include_str!(concat!("../migrations/", $file)),
            },
        )*];
    };
}

migrations! {
    1 workflow_job = "0001_workflow_job.sql";
    2 workflow_run = "0002_workflow_run.sql";
    3 push = "0003_push.sql";
    4 pull_request = "0004_pull_request.sql";
    5 issues = "0005_issues.sql";
    6 check_run = "0006_check_run.sql";
    7 oot_workflow_job = "0007_oot_workflow_job.sql";
    8 job_classification = "0008_job_classification.sql";
    9 dead_letter = "0009_dead_letter.sql";
    10 job_classification_outcome = "0010_job_classification_outcome.sql";
    11 test_results = "0011_test_results.sql";
    12 failure_signature = "0012_failure_signature.sql";
    13 job_failure = "0013_job_failure.sql";
    14 replication = "0014_replication.sql";
    15 workflow_job_by_id = "0015_workflow_job_by_id.sql";
    16 grid_job = "0016_grid_job.sql";
    17 grid_job_commit_columns = "0017_grid_job_commit_columns.sql";
    18 job_page = "0018_job_page.sql";
}

fn split_statements(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let statement = current.trim().trim_end_matches(';').trim().to_string();
            if !statement.is_empty() {
                statements.push(statement);
            }
            current.clear();
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        statements.push(rest.to_string());
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_increasing_and_every_file_has_statements() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert!(m.version > last, "migration versions must increase");
            last = m.version;
            assert!(!m.statements("db").is_empty(), "{} is empty", m.name);
            for s in m.statements("db") {
                assert!(!s.contains("{database}"));
            }
        }
    }

    #[test]
    fn splits_on_statement_ends_and_skips_comments() {
        let sql = "-- a comment\nCREATE TABLE a (x UInt8)\nENGINE = Memory;\n\nSELECT 1;\n";
        assert_eq!(
            split_statements(sql),
            vec!["CREATE TABLE a (x UInt8)\nENGINE = Memory", "SELECT 1"]
        );
    }
}
