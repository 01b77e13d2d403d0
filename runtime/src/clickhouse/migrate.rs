//! The migration runner: applies `schemas/migrations/NNNN_*.sql` in order, once each, and
//! refuses to go on if an applied migration was edited since.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use hudstream_schemas::migrations::Migration;

use crate::clickhouse::cluster;
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
        let on_cluster = self.on_cluster();
        self.execute_on_server(&format!("CREATE DATABASE IF NOT EXISTS {db}{on_cluster}"))
            .await?;
        // On a cluster the record of what was applied is one table replicated to every node
        // (all shards share its path), so `migrate` may be run against any node.
        let engine = match self.cluster() {
            None => "MergeTree".to_string(),
            Some(_) => format!(
                "ReplicatedMergeTree('/clickhouse/tables/all/{db}/schema_migrations', '{{replica}}')"
            ),
        };
        self.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {db}.schema_migrations{on_cluster} (version UInt32, name String, checksum String, applied_at DateTime) ENGINE = {engine} ORDER BY version"
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
            match self.cluster() {
                None => {
                    for statement in migration.statements(db) {
                        self.apply_statement(&statement).await?;
                    }
                }
                Some(cluster) => {
                    // The distributed tables over a local table are made again once per
                    // migration, after its last statement: a migration adding five columns
                    // to one table would otherwise drop and create them five times, and each
                    // `ON CLUSTER` statement waits ~0.1 s for every node. Until then they
                    // show the columns they had — as they would if the migration stopped here,
                    // and it is run again whole (it is not recorded until the end).
                    let plan = cluster::plan_migration(&migration.statements(db), cluster, db)?;
                    for batch in plan.batches {
                        match self.apply_statement(&batch.statement).await {
                            // One of its columns is there (a run that stopped part-way, or
                            // an older hudstream applying them one by one): nothing of it was
                            // applied, so each goes on its own.
                            Err(e)
                                if !batch.parts.is_empty() && e.code() == Some(ILLEGAL_COLUMN) =>
                            {
                                tracing::info!(statement = %batch.statement, error = %e, "a column is there already; adding them one by one");
                                for part in &batch.parts {
                                    self.apply_statement(part).await?;
                                }
                            }
                            other => other?,
                        }
                    }
                    for table in &plan.distributed {
                        self.recreate_distributed(cluster, table).await?;
                    }
                }
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let record = Applied {
                version: migration.version,
                name: migration.name.to_string(),
                checksum: migration.checksum(),
                applied_at: DateTime::from_seconds(now),
            };
            // Recording it twice (the first answer lost) is harmless: the record is read into
            // a map by version.
            self.tried_again("recording a migration", || {
                self.insert_all("schema_migrations", std::slice::from_ref(&record))
            })
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

/// ClickHouse's ILLEGAL_COLUMN, which `ADD COLUMN` answers for a column already there.
const ILLEGAL_COLUMN: u32 = 44;
/// Tries of one migration statement that could not reach the server.
const STATEMENT_TRIES: u32 = 4;

impl ClickHouse {
    /// Runs one migration statement so that running it twice does what running it once did.
    /// A statement that could not reach the server is tried again: on a loaded box the server
    /// can close a pooled connection just as a statement goes out (CI saw "connection closed
    /// before message completed" in the middle of a migration). `CREATE … IF NOT EXISTS` is
    /// idempotent already; an `ADD COLUMN` whose column is there — its first try was applied
    /// though its answer was lost, or an interrupted migration is run again — is done (18.16 has
    /// no `ADD COLUMN IF NOT EXISTS`).
    async fn apply_statement(&self, sql: &str) -> Result<(), ClickHouseError> {
        match self
            .tried_again("a migration statement", || self.execute(sql))
            .await
        {
            // Only for one column: a combined statement refused this way added none of its
            // columns (see `cluster::combine_column_additions`).
            Err(e)
                if sql.matches(" ADD COLUMN ").count() == 1
                    && e.code() == Some(ILLEGAL_COLUMN)
                    && e.message().contains("already exists") =>
            {
                tracing::info!(statement = %sql, "the column is there already");
                Ok(())
            }
            other => other,
        }
    }

    /// Runs `work` — a migration's statement or its record, either of which may run twice —
    /// again, after a pause, while it cannot reach the server, up to [`STATEMENT_TRIES`] times.
    /// The client already sends a read or an `IF NOT EXISTS` again at once over a closed
    /// connection; this also covers what it may not repeat on its own (`ALTER`, the record's
    /// insert) and a server that stops answering for a few seconds mid-migration.
    async fn tried_again<F, Fut>(&self, what: &str, work: F) -> Result<(), ClickHouseError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), ClickHouseError>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            match work().await {
                Err(ClickHouseError::Unreachable { url, reason }) if tries < STATEMENT_TRIES => {
                    tracing::warn!(%url, %reason, tries, "{what} did not reach ClickHouse; trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(500 * u64::from(tries)))
                        .await;
                }
                other => return other,
            }
        }
    }

    /// Drops and creates again, on every node, the distributed `table` over `<table>_local`,
    /// with the local tables' columns as they are now (see [`cluster::Step::Distributed`]).
    async fn recreate_distributed(
        &self,
        cluster: &str,
        table: &str,
    ) -> Result<(), ClickHouseError> {
        let db = self.database();
        let local = cluster::local_name(table);
        let create = self
            .fetch_all::<String>(&format!("SHOW CREATE TABLE {db}.{local}"))
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        let distributed =
            cluster::distributed_of(&create, db, cluster, table, &local).map_err(|reason| {
                ClickHouseError::Cluster {
                    statement: create.chars().take(300).collect(),
                    reason,
                }
            })?;
        // The two tables are independent: each pair of statements is sent together.
        let drops = [table.to_string(), cluster::insert_name(table)]
            .map(|name| format!("DROP TABLE IF EXISTS {db}.{name} ON CLUSTER {cluster}"));
        self.execute_together(&drops).await?;
        self.execute_together(&distributed).await
    }
}
