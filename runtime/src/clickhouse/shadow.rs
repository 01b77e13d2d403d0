//! Shadow tables: how a table is rebuilt without ever serving a half-built one.
//!
//! A rebuild fills `<table>__replay`, created with the live table's own definition, while the
//! live table keeps serving; then swaps the two — `EXCHANGE TABLES` where the server has it
//! (modern ClickHouse, atomic), else one `RENAME TABLE` of both names (ClickHouse 18.16: both
//! renames happen in one statement) — and drops the table it replaced. Until the swap the
//! live table is untouched, so a rebuild that fails is [aborted](ClickHouse::drop_shadow) and
//! leaves nothing behind.

use anyhow::Context;

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

impl ClickHouse {
    /// A new, empty shadow of `table` with the table's own definition (a leftover shadow is
    /// dropped first).
    pub async fn create_shadow(&self, table: &str) -> anyhow::Result<Shadow> {
        let db = self.database();
        let shadow = Shadow::of(table);
        self.execute(&format!("DROP TABLE IF EXISTS {db}.{}", shadow.name))
            .await?;
        self.execute(&format!(
            "CREATE TABLE {db}.{} AS {db}.{table}",
            shadow.name
        ))
        .await
        .with_context(|| {
            format!(
                "creating the shadow table {} (has `hudstream migrate` run?)",
                shadow.name
            )
        })?;
        Ok(shadow)
    }

    /// Swaps `shadow` in for its live table. Falls back from EXCHANGE to RENAME only when the
    /// server says it cannot exchange: after any other failure (a timeout after the exchange
    /// may have happened) a rename could swap the tables back.
    pub async fn swap_in(&self, shadow: &Shadow) -> anyhow::Result<Swap> {
        let db = self.database();
        let (table, name) = (&shadow.table, &shadow.name);
        match self
            .execute(&format!("EXCHANGE TABLES {db}.{table} AND {db}.{name}"))
            .await
        {
            Ok(()) => Ok(Swap::Exchange),
            Err(e) if e.code().is_some_and(|c| EXCHANGE_UNSUPPORTED.contains(&c)) => {
                tracing::debug!(error = %e, "EXCHANGE TABLES unavailable; renaming");
                let old = shadow.replaced(Swap::Rename);
                self.execute(&format!("DROP TABLE IF EXISTS {db}.{old}"))
                    .await?;
                self.execute(&format!(
                    "RENAME TABLE {db}.{table} TO {db}.{old}, {db}.{name} TO {db}.{table}"
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

    /// Drops the table `shadow` replaced with `swap`.
    pub async fn drop_replaced(&self, shadow: &Shadow, swap: Swap) -> anyhow::Result<()> {
        let db = self.database();
        self.execute(&format!(
            "DROP TABLE IF EXISTS {db}.{}",
            shadow.replaced(swap)
        ))
        .await?;
        Ok(())
    }

    /// Drops a shadow that will not be swapped in; the live table was never touched.
    pub async fn drop_shadow(&self, shadow: &Shadow) -> anyhow::Result<()> {
        let db = self.database();
        self.execute(&format!("DROP TABLE IF EXISTS {db}.{}", shadow.name))
            .await?;
        Ok(())
    }
}
