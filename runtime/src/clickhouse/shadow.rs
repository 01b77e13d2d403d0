//! Shadow tables: how a table is rebuilt without ever serving a half-built one.
//!
//! A rebuild fills `<table>__replay`, created with the live table's own definition, while the
//! live table keeps serving; then swaps the two — `EXCHANGE TABLES` where the server has it
//! (modern ClickHouse, atomic), else one `RENAME TABLE` of both names (ClickHouse 18.16: both
//! renames happen in one statement) — and drops the table it replaced. Until the swap the
//! live table is untouched, so a rebuild that fails is [aborted](ClickHouse::drop_shadow) and
//! leaves nothing behind.

use anyhow::Context;

use crate::clickhouse::cluster;
use crate::clickhouse::error::EXCHANGE_UNSUPPORTED;
use crate::clickhouse::ClickHouse;

/// How a shadow table replaced its live table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swap {
    /// `EXCHANGE TABLES`: the replaced table now carries the shadow's name.
    Exchange,
    /// `RENAME TABLE t TO t__old, t__replay TO t`: the replaced table is `t__old`.
    Rename,
}

impl Swap {
    pub fn as_str(self) -> &'static str {
        match self {
            Swap::Exchange => "exchange",
            Swap::Rename => "rename",
        }
    }
}

impl std::fmt::Display for Swap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An empty copy of a live table, being filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadow {
    /// The live table it will replace.
    pub table: String,
    /// Its own name, `<table>__replay`.
    pub name: String,
}

impl Shadow {
    /// The shadow of `table`, by name (nothing is created).
    pub fn of(table: &str) -> Shadow {
        Shadow {
            table: table.to_string(),
            name: format!("{table}__replay"),
        }
    }

    /// Where the replaced table is after `swap`, until it is dropped.
    fn replaced(&self, swap: Swap) -> String {
        match swap {
            Swap::Exchange => self.name.clone(),
            Swap::Rename => format!("{}__old", self.table),
        }
    }
}

/// What swapping a shadow in would lose ([`ClickHouse::compare_shadow`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shrink {
    /// Entities in the live table.
    pub entities: u64,
    /// Of those, how many the shadow lacks.
    pub lost: u64,
    /// Of those, how many the shadow holds at an older version.
    pub older: u64,
}

impl Shrink {
    pub fn loses_anything(&self) -> bool {
        self.lost > 0 || self.older > 0
    }
}

impl std::fmt::Display for Shrink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of the {} entities in the live table would be lost and {} would go back to an older version",
            self.lost, self.entities, self.older
        )
    }
}

/// The columns of the first `ORDER BY` of a `CREATE TABLE` statement: `ORDER BY (a, b)` or
/// `ORDER BY a`.
pub fn order_by_columns(create: &str) -> Option<Vec<String>> {
    let at = create.find("ORDER BY ")? + "ORDER BY ".len();
    let rest = create[at..].trim_start();
    let list = if let Some(inner) = rest.strip_prefix('(') {
        let mut depth = 1;
        let mut end = None;
        for (i, c) in inner.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        &inner[..end?]
    } else {
        rest.split(|c: char| c.is_whitespace()).next()?
    };
    let columns: Vec<String> = list
        .split(',')
        .map(|c| c.trim().trim_matches('`').to_string())
        .filter(|c| !c.is_empty())
        .collect();
    (!columns.is_empty()).then_some(columns)
}

impl ClickHouse {
    /// A new, empty shadow of `table` with the table's own definition (a leftover shadow is
    /// dropped first). On a cluster: new replicated local tables `<shadow>_local` on every node
    /// (their own ZooKeeper path) and a distributed `<shadow>` over them.
    pub async fn create_shadow(&self, table: &str) -> anyhow::Result<Shadow> {
        let db = self.database();
        let shadow = Shadow::of(table);
        self.drop_shadow(&shadow).await?;
        let context = || {
            format!(
                "creating the shadow table {} (has `hudstream migrate` run?)",
                shadow.name
            )
        };
        match self.cluster() {
            None => self
                .execute(&format!(
                    "CREATE TABLE {db}.{} AS {db}.{table}",
                    shadow.name
                ))
                .await
                .with_context(context)?,
            Some(cluster) => {
                let local = cluster::local_name(table);
                let create = self
                    .fetch_all::<String>(&format!("SHOW CREATE TABLE {db}.{local}"))
                    .await
                    .with_context(context)?
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                // A new generation: the shadow's replicas must not meet any earlier table's.
                let generation = format!(
                    "replay-{}",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis())
                );
                let statements = cluster::shadow_of(
                    &create,
                    db,
                    cluster,
                    &shadow.name,
                    &cluster::local_name(&shadow.name),
                    &generation,
                )
                .map_err(|why| anyhow::anyhow!("{why}: {create}"))
                .with_context(context)?;
                // The local tables first; the two distributed tables over them together.
                let (local, distributed) = statements.split_at(1.min(statements.len()));
                self.execute_together(local).await.with_context(context)?;
                self.execute_together(distributed)
                    .await
                    .with_context(context)?;
            }
        }
        Ok(shadow)
    }

    /// Swaps `shadow` in for its live table. Falls back from EXCHANGE to RENAME only when the
    /// server says it cannot exchange: after any other failure (a timeout after the exchange
    /// may have happened) a rename could swap the tables back. On a cluster the local tables
    /// are swapped, `ON CLUSTER` (every replica of every shard); the distributed table keeps
    /// its name and reads whatever local table carries `<table>_local`.
    pub async fn swap_in(&self, shadow: &Shadow) -> anyhow::Result<Swap> {
        let db = self.database();
        let on_cluster = self.on_cluster();
        let (table, name) = match self.cluster() {
            None => (shadow.table.clone(), shadow.name.clone()),
            Some(_) => (
                cluster::local_name(&shadow.table),
                cluster::local_name(&shadow.name),
            ),
        };
        match self
            .execute(&format!(
                "EXCHANGE TABLES {db}.{table} AND {db}.{name}{on_cluster}"
            ))
            .await
        {
            Ok(()) => Ok(Swap::Exchange),
            Err(e) if e.code().is_some_and(|c| EXCHANGE_UNSUPPORTED.contains(&c)) => {
                tracing::debug!(error = %e, "EXCHANGE TABLES unavailable; renaming");
                let old = self.replaced_table(shadow, Swap::Rename);
                self.execute(&format!("DROP TABLE IF EXISTS {db}.{old}{on_cluster}"))
                    .await?;
                self.execute(&format!(
                    "RENAME TABLE {db}.{table} TO {db}.{old}, {db}.{name} TO {db}.{table}{on_cluster}"
                ))
                .await
                .with_context(|| format!("swapping {name} in for {table}"))?;
                Ok(Swap::Rename)
            }
            Err(e) => Err(anyhow::Error::new(e).context(format!(
                "swapping {name} in for {table}; check which of the two is live before replaying again"
            ))),
        }
    }

    /// The table (on a cluster: the local tables) `shadow` replaced with `swap`, until dropped.
    fn replaced_table(&self, shadow: &Shadow, swap: Swap) -> String {
        let replaced = shadow.replaced(swap);
        match self.cluster() {
            None => replaced,
            Some(_) => cluster::local_name(&replaced),
        }
    }

    /// Drops the table `shadow` replaced with `swap` (on a cluster, with the shadow's
    /// distributed table, which read the shadow's local tables by their old name).
    pub async fn drop_replaced(&self, shadow: &Shadow, swap: Swap) -> anyhow::Result<()> {
        let db = self.database();
        let on_cluster = self.on_cluster();
        let mut names = vec![self.replaced_table(shadow, swap)];
        if self.cluster().is_some() {
            names.extend([shadow.name.clone(), cluster::insert_name(&shadow.name)]);
        }
        let drops: Vec<String> = names
            .iter()
            .map(|name| format!("DROP TABLE IF EXISTS {db}.{name}{on_cluster}"))
            .collect();
        Ok(self.execute_together(&drops).await?)
    }

    /// What swapping `shadow` in would lose: entities of the live table (its ORDER BY key) the
    /// shadow lacks, and entities whose newest `version` in the shadow is older than the live
    /// table's. A rebuild whose log no longer holds what the table was made of (retention, a
    /// broker that lost its data) shows here before it can replace anything.
    pub async fn compare_shadow(&self, shadow: &Shadow) -> anyhow::Result<Shrink> {
        let db = self.database();
        let (table, name) = (&shadow.table, &shadow.name);
        let key = self.entity_key(table).await?;
        let keys = key.join(", ");
        let count = |sql: String| async move {
            self.fetch_all::<u64>(&sql)
                .await
                .map(|rows| rows.first().copied().unwrap_or(0))
                .with_context(|| format!("comparing {name} with {table}"))
        };
        let entities = count(format!(
            "SELECT count() FROM (SELECT DISTINCT {keys} FROM {db}.{table})"
        ))
        .await?;
        let lost = count(format!(
            "SELECT count() FROM (SELECT DISTINCT {keys} FROM {db}.{table}) \
             WHERE ({keys}) NOT IN (SELECT {keys} FROM {db}.{name})"
        ))
        .await?;
        let versioned = self
            .fetch_all::<u64>(&format!(
                "SELECT count() FROM system.columns WHERE database = '{db}' AND table = '{table}' AND name = 'version'"
            ))
            .await?
            .first()
            .copied()
            .unwrap_or(0)
            > 0;
        let older = if versioned && !key.iter().any(|k| k == "version") {
            count(format!(
                "SELECT count() FROM \
                 (SELECT {keys}, max(version) AS live_version FROM {db}.{table} GROUP BY {keys}) \
                 ANY INNER JOIN \
                 (SELECT {keys}, max(version) AS shadow_version FROM {db}.{name} GROUP BY {keys}) \
                 USING ({keys}) WHERE shadow_version < live_version"
            ))
            .await?
        } else {
            0
        };
        Ok(Shrink {
            entities,
            lost,
            older,
        })
    }

    /// A table's entity: the columns of its ORDER BY (from `SHOW CREATE TABLE`, which both
    /// 18.16 and modern servers answer).
    /// On a cluster, the local tables' (a distributed table has no ORDER BY).
    pub async fn entity_key(&self, table: &str) -> anyhow::Result<Vec<String>> {
        let db = self.database();
        let defined = match self.cluster() {
            None => table.to_string(),
            Some(_) => cluster::local_name(table),
        };
        let create = self
            .fetch_all::<String>(&format!("SHOW CREATE TABLE {db}.{defined}"))
            .await
            .with_context(|| format!("reading the definition of {table}"))?
            .into_iter()
            .next()
            .unwrap_or_default();
        order_by_columns(&create)
            .ok_or_else(|| anyhow::anyhow!("{table} has no ORDER BY in its definition: {create}"))
    }

    /// Drops a shadow that will not be swapped in; the live table was never touched.
    pub async fn drop_shadow(&self, shadow: &Shadow) -> anyhow::Result<()> {
        let db = self.database();
        let on_cluster = self.on_cluster();
        let mut names = vec![shadow.name.clone()];
        if self.cluster().is_some() {
            names.push(cluster::insert_name(&shadow.name));
            names.push(cluster::local_name(&shadow.name));
        }
        let drops: Vec<String> = names
            .iter()
            .map(|name| format!("DROP TABLE IF EXISTS {db}.{name}{on_cluster}"))
            .collect();
        Ok(self.execute_together(&drops).await?)
    }
}

#[cfg(test)]
mod order_by_tests {
    use super::order_by_columns;

    #[test]
    fn the_entity_is_the_order_by() {
        let create = "CREATE TABLE db.workflow_job (`id` Int64) ENGINE = ReplacingMergeTree(version) ORDER BY (repository_full_name, head_sha, id) SETTINGS index_granularity = 8192";
        assert_eq!(
            order_by_columns(create),
            Some(vec![
                "repository_full_name".into(),
                "head_sha".into(),
                "id".into()
            ])
        );
        assert_eq!(
            order_by_columns(
                "CREATE TABLE t (a Int8) ENGINE = MergeTree ORDER BY a SETTINGS x = 1"
            ),
            Some(vec!["a".into()])
        );
        assert_eq!(
            order_by_columns("CREATE TABLE t (a Int8) ENGINE = Memory"),
            None
        );
    }
}
