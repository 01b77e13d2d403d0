//! The migration runner: applies `schemas/migrations/NNNN_*.sql` in order, once each, and
//! refuses to go on if an applied migration was edited since.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use hudstream_schemas::migrations::Migration;

use crate::clickhouse::{ClickHouse, ClickHouseError, DateTime};

/// A row of `schema_migrations`.
#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct Applied {
    version: u32,
    name: String,
    checksum: String,
    applied_at: DateTime,
}

impl ClickHouse {
    /// Creates the database and applies every migration not applied yet, in order. Returns the
    /// versions applied now.
    pub async fn migrate(&self, migrations: &[Migration]) -> Result<Vec<u32>, ClickHouseError> {
        let db = self.database();
        self.execute_on_server(&format!("CREATE DATABASE IF NOT EXISTS {db}"))
            .await?;
        self.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, checksum String, applied_at DateTime) ENGINE = MergeTree ORDER BY version"
        ))
        .await?;
        let applied: BTreeMap<u32, String> = self
            .fetch_all::<Applied>(&format!(
                "SELECT version, name, checksum, applied_at FROM {db}.schema_migrations"
            ))
            .await?
            .into_iter()
            .map(|a| (a.version, a.checksum))
            .collect();
        let mut done = Vec::new();
        for migration in migrations {
            if let Some(checksum) = applied.get(&migration.version) {
                if *checksum != migration.checksum() {
                    return Err(ClickHouseError::EditedMigration {
                        version: migration.version,
                        name: migration.name.to_string(),
                        applied: checksum.clone(),
                        now: migration.checksum(),
                    });
                }
                continue;
            }
            for statement in migration.statements(db) {
                self.execute(&statement).await?;
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            self.insert_all(
                "schema_migrations",
                &[Applied {
                    version: migration.version,
                    name: migration.name.to_string(),
                    checksum: migration.checksum(),
                    applied_at: DateTime::from_seconds(now),
                }],
            )
            .await?;
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "migration applied"
            );
            done.push(migration.version);
        }
        Ok(done)
    }
}
