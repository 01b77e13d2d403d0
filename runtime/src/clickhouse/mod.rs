//! All ClickHouse plumbing: the client, typed inserts and reads, saved queries' parameters,
//! migrations and shadow tables. Nothing outside this module speaks to ClickHouse.
//!
//! Inserts and typed reads go through the `clickhouse` crate, ClickHouse's own Rust client:
//! rows are structs deriving `clickhouse::Row`, sent and read as `RowBinary` (no parsing on
//! the server, none on the client). The crate's row validation is off: it needs the
//! `RowBinaryWithNamesAndTypes` format, which the local ClickHouse 18.16 lacks. So a row type
//! is checked another way — the end-to-end suite reads every saved query on 18.16, and the SQL
//! check (`deploy/local/sql-compat.py`) requires both engines to answer every saved query with
//! the same column types — and a row that does not fit its query fails with
//! [`ClickHouseError::Decode`] rather than silently.
//!
//! What the crate lacks, and is kept here:
//! - [`bind`]: saved queries are written with modern ClickHouse's `{name:Type}` placeholders
//!   and bound on the client as typed literals (18.16 has no server-side parameters, and the
//!   crate's `?` binding cannot tell a `String` from an `Array(String)`);
//! - [`query_text`](ClickHouse::query_text): results in a text format (`status`, checksums),
//!   which the crate hands over as bytes;
//! - the meaning of error codes ([`ClickHouseError::is_refused_data`]), which decides whether
//!   the writer narrows a refused batch down to its rows;
//! - [`migrate`](ClickHouse::migrate) and [`shadow`] tables (replay), which are our own
//!   conventions over plain DDL;
//! - [`DateTime`], ClickHouse's `DateTime('UTC')` as `UInt32` in `RowBinary` and as
//!   ClickHouse's text in JSON (golden files, API answers).

mod bind;
pub mod cluster;
mod datetime;
mod error;
mod migrate;
pub mod shadow;

use std::time::Duration;

pub use bind::{bind, quote, Param};
pub use datetime::{format_datetime, now_text, parse_datetime, DateTime};
pub use error::{ClickHouseError, CHECK_COLUMN_REFUSED};
pub use shadow::{Shadow, Shrink, Swap};

use crate::config::ClickHouseConfig;

/// A typed row of a query or a table: a struct deriving `clickhouse::Row` and serde's traits,
/// its fields in the order of the columns.
pub use clickhouse::Row;

/// A ClickHouse server and the database hudstream uses on it.
#[derive(Clone)]
pub struct ClickHouse {
    /// Statements run in the database.
    client: clickhouse::Client,
    /// Statements run outside any database (creating it).
    server: clickhouse::Client,
    url: String,
    database: String,
    timeout: Duration,
    /// `clickhouse.cluster`; `None` on one server.
    cluster: Option<String>,
}

impl ClickHouse {
    pub fn new(config: &ClickHouseConfig) -> anyhow::Result<Self> {
        if !is_identifier(&config.database) {
            anyhow::bail!(
                "clickhouse.database {:?} must be letters, digits and underscores",
                config.database
            );
        }
        let url = config.url.trim_end_matches('/').to_string();
        let mut server = clickhouse::Client::default()
            .with_url(&url)
            .with_validation(false)
            .with_compression(clickhouse::Compression::None)
            // 18.16 quotes 64-bit integers in JSON text unless told not to (query_text).
            .with_setting("output_format_json_quote_64bit_integers", "0");
        let cluster = (!config.cluster.is_empty()).then(|| config.cluster.clone());
        if let Some(name) = &cluster {
            if !is_identifier(name) {
                anyhow::bail!(
                    "clickhouse.cluster {name:?} must be letters, digits and underscores"
                );
            }
            // An insert is acknowledged only once every shard has its rows (18.16's name of
            // modern `distributed_foreground_insert`, which still accepts it); a query's
            // subqueries over other distributed tables run once, on the node asked, and their
            // result goes to every shard (a table's entities are sharded by their own key, not
            // by the join's).
            server = server
                .with_setting("insert_distributed_sync", "1")
                .with_setting("distributed_product_mode", "global");
        }
        for (name, value) in &config.settings {
            if !is_identifier(name) {
                anyhow::bail!("clickhouse.settings: {name:?} is not a ClickHouse setting's name");
            }
            if OWN_SETTINGS.contains(&name.as_str()) || name.starts_with("param_") {
                anyhow::bail!(
                    "clickhouse.settings: {name:?} is set by hudstream itself and cannot be overridden"
                );
            }
            server = server.with_setting(name, &value.0);
        }
        if !config.user.is_empty() {
            server = server
                .with_user(&config.user)
                .with_password(config.password.expose());
        }
        Ok(Self {
            client: server.clone().with_database(&config.database),
            server,
            url,
            database: config.database.clone(),
            timeout: Duration::from_millis(config.request_timeout_ms.max(1)),
            cluster,
        })
    }

    /// The cluster the tables live on, if any (`clickhouse.cluster`).
    pub fn cluster(&self) -> Option<&str> {
        self.cluster.as_deref()
    }

    /// The table a projection inserts into to write `table`: the table itself on one server,
    /// on a cluster the distributed table of its ordinary columns ([`cluster`]).
    pub fn insert_target(&self, table: &str) -> String {
        match self.cluster {
            None => table.to_string(),
            Some(_) => cluster::insert_name(table),
        }
    }

    /// ` ON CLUSTER <name>` on a cluster, else nothing: for DDL every node must run.
    pub fn on_cluster(&self) -> String {
        self.cluster
            .as_ref()
            .map_or(String::new(), |c| format!(" ON CLUSTER {c}"))
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `work` within the request timeout, its errors named after `statement`. A statement
    /// that may run twice (`retry`: a read, or DDL that says `IF NOT EXISTS` / `IF EXISTS`) is
    /// sent again, up to [`CONNECTION_TRIES`] times in all, when the connection closed before
    /// any answer: a pooled keep-alive connection the server closed just as the request went
    /// out (18.16 closes idle ones after 3 s), which says nothing about the server. Several
    /// pooled connections go stale together — the server closes them all on the same timer, and
    /// on a loaded box the client notices late — so one more try is not enough (CI saw a
    /// migration fail on its second closed connection); a stale connection fails at once, so
    /// the tries cost nothing when the server is well.
    async fn bounded<T, W, F>(
        &self,
        statement: &str,
        retry: bool,
        work: W,
    ) -> Result<T, ClickHouseError>
    where
        W: Fn() -> F,
        F: std::future::Future<Output = clickhouse::error::Result<T>>,
    {
        let mut attempts = if retry { CONNECTION_TRIES } else { 1 };
        loop {
            attempts -= 1;
            let result = match tokio::time::timeout(self.timeout, work()).await {
                Ok(result) => {
                    result.map_err(|e| ClickHouseError::from_client(&self.url, statement, e))
                }
                Err(_) => Err(ClickHouseError::Unreachable {
                    url: self.url.clone(),
                    reason: format!("no answer within {} ms", self.timeout.as_millis()),
                }),
            };
            match result {
                Err(ClickHouseError::Unreachable { reason, .. })
                    if attempts > 0 && closed_before_answer(&reason) =>
                {
                    tracing::debug!(%reason, "ClickHouse closed the connection before answering; sending the statement again");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                other => return other,
            }
        }
    }

    /// Runs a statement that returns nothing of interest (DDL, ALTER, OPTIMIZE).
    pub async fn execute(&self, sql: &str) -> Result<(), ClickHouseError> {
        self.bounded(sql, may_run_twice(sql), || {
            self.client.query_raw(sql).execute()
        })
        .await
    }

    /// Runs statements that do not depend on each other at once, and answers the first error
    /// once all have ended (none is abandoned half-sent). On a cluster each `ON CLUSTER`
    /// statement waits ~0.1 s for every node to have run it; sent together, the waits overlap.
    pub async fn execute_together(&self, statements: &[String]) -> Result<(), ClickHouseError> {
        futures::future::join_all(statements.iter().map(|sql| self.execute(sql)))
            .await
            .into_iter()
            .collect()
    }

    /// Runs a statement outside the database (`CREATE DATABASE`).
    async fn execute_on_server(&self, sql: &str) -> Result<(), ClickHouseError> {
        self.bounded(sql, may_run_twice(sql), || {
            self.server.query_raw(sql).execute()
        })
        .await
    }

    /// Runs a query and reads its rows as `T`, whose fields follow the query's columns in order
    /// and type. `sql` must not have a FORMAT clause.
    pub async fn fetch_all<T>(&self, sql: &str) -> Result<Vec<T>, ClickHouseError>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        self.bounded(sql, may_run_twice(sql), || {
            self.client.query_raw(sql).fetch_all::<T>()
        })
        .await
    }

    /// [`fetch_all`](Self::fetch_all), with a `query_id` of `{name}.{uuid}`: the server's
    /// `system.query_log` and `system.processes` then say which saved query a statement is.
    pub async fn fetch_all_named<T>(&self, name: &str, sql: &str) -> Result<Vec<T>, ClickHouseError>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        self.bounded(sql, may_run_twice(sql), || {
            // A new id on every try: the server refuses an id that is still running.
            let id = format!("{name}.{}", uuid::Uuid::new_v4().simple());
            self.client
                .query_raw(sql)
                .with_setting("query_id", id)
                .fetch_all::<T>()
        })
        .await
    }

    /// Runs a query and returns its output in `format` (e.g. `TabSeparated`), unparsed.
    pub async fn query_text(&self, sql: &str, format: &str) -> Result<String, ClickHouseError> {
        let statement = format!("{sql}\nFORMAT {format}");
        let bytes = self
            .bounded(&statement, may_run_twice(sql), || async {
                let mut cursor = self.client.query_raw(&statement).fetch_bytes(format)?;
                let mut out = Vec::new();
                while let Some(chunk) = cursor.next().await? {
                    out.extend_from_slice(&chunk);
                }
                Ok(out)
            })
            .await?;
        String::from_utf8(bytes).map_err(|e| ClickHouseError::Decode {
            reason: format!("the answer is not UTF-8: {e}"),
            statement,
        })
    }

    /// Runs a query and reads each row from `JSONEachRow` text (tools and tests that read
    /// ad-hoc columns; a saved query's typed rows use [`ClickHouse::fetch_all`]).
    pub async fn query_json<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
    ) -> Result<Vec<T>, ClickHouseError> {
        let text = self.query_text(sql, "JSONEachRow").await?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line).map_err(|e| ClickHouseError::Decode {
                    reason: format!("{e}: {}", line.chars().take(300).collect::<String>()),
                    statement: sql.chars().take(500).collect(),
                })
            })
            .collect()
    }

    /// Answers whether the server is up.
    pub async fn ping(&self) -> Result<(), ClickHouseError> {
        self.bounded("SELECT 1", true, || {
            self.server.query_raw("SELECT 1").fetch_all::<u8>()
        })
        .await
        .map(|_| ())
    }

    /// Starts one `INSERT` into `table` (of the database): rows are sent while they are
    /// written, and the insert is done only when [`Insert::end`] answers.
    pub async fn insert<R>(&self, table: &str) -> Result<Insert<R>, ClickHouseError>
    where
        R: clickhouse::RowWrite,
    {
        let statement = format!("INSERT INTO {}.{table}", self.database);
        let inner = self
            .client
            .insert::<R>(table)
            .await
            .map_err(|e| ClickHouseError::from_client(&self.url, &statement, e))?
            .with_timeouts(Some(self.timeout), Some(self.timeout));
        Ok(Insert {
            inner,
            url: self.url.clone(),
            statement,
        })
    }

    /// Inserts `rows` into `table` in one statement (none for no rows).
    pub async fn insert_all<'r, R>(
        &self,
        table: &str,
        rows: impl IntoIterator<Item = &'r R>,
    ) -> Result<(), ClickHouseError>
    where
        R: clickhouse::RowOwned + clickhouse::RowWrite + 'r,
    {
        let mut rows = rows.into_iter().peekable();
        if rows.peek().is_none() {
            return Ok(());
        }
        let mut insert = self.insert::<R>(table).await?;
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await
    }
}

/// One `INSERT` in progress (see [`ClickHouse::insert`]).
pub struct Insert<R> {
    inner: clickhouse::insert::Insert<R>,
    url: String,
    statement: String,
}

impl<R: clickhouse::RowWrite> Insert<R> {
    /// Adds a row; a full buffer is sent on while later rows are encoded.
    pub async fn write(&mut self, row: &R::Value<'_>) -> Result<(), ClickHouseError> {
        self.inner
            .write(row)
            .await
            .map_err(|e| ClickHouseError::from_client(&self.url, &self.statement, e))
    }

    /// Sends the rest and waits for the server's answer: `Ok` means every row is in.
    pub async fn end(self) -> Result<(), ClickHouseError> {
        let (url, statement) = (self.url, self.statement);
        self.inner
            .end()
            .await
            .map_err(|e| ClickHouseError::from_client(&url, &statement, e))
    }
}

/// Whether `s` can be used as a database or table name without quoting.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_database_names_that_are_not_identifiers() {
        let mut c = ClickHouseConfig::default();
        c.database = "x; DROP".into();
        assert!(ClickHouse::new(&c).is_err());
    }

    #[test]
    fn settings_hudstream_sets_itself_cannot_be_overridden() {
        use crate::config::SettingValue;
        for name in ["query_id", "insert_distributed_sync", "param_repo", "a b"] {
            let mut c = ClickHouseConfig::default();
            c.settings.insert(name.into(), SettingValue("1".into()));
            assert!(ClickHouse::new(&c).is_err(), "{name}");
        }
        let mut c = ClickHouseConfig::default();
        c.settings
            .insert("max_execution_time".into(), SettingValue("10".into()));
        assert!(ClickHouse::new(&c).is_ok());
    }
}

/// Settings (and URL parameters) hudstream sets itself, which `clickhouse.settings` may not:
/// the statement's identity, its database and format, and the cluster's insert and join rules.
const OWN_SETTINGS: &[&str] = &[
    "query_id",
    "database",
    "default_format",
    "session_id",
    "user",
    "password",
    "compress",
    "decompress",
    "output_format_json_quote_64bit_integers",
    "insert_distributed_sync",
    "distributed_product_mode",
];

/// Tries of a statement that may run twice when its connection closes before any answer
/// (see [`ClickHouse::bounded`]).
const CONNECTION_TRIES: u32 = 4;

/// A connection that ended before any answer came (see [`ClickHouse::bounded`]).
fn closed_before_answer(reason: &str) -> bool {
    reason.contains("connection closed before message completed")
        || reason.contains("Connection reset by peer")
}

/// Whether running `sql` twice does what running it once does: reads, and DDL that says so.
fn may_run_twice(sql: &str) -> bool {
    let text = sql.trim_start().to_ascii_uppercase();
    let first = text.split_whitespace().next().unwrap_or("");
    match first {
        "SELECT" | "WITH" | "SHOW" | "DESCRIBE" | "DESC" | "EXISTS" => true,
        "CREATE" => text.contains("IF NOT EXISTS"),
        "DROP" => text.contains("IF EXISTS"),
        _ => false,
    }
}

#[cfg(test)]
mod retry_tests {
    use super::*;

    #[test]
    fn only_statements_that_may_run_twice_are_sent_again() {
        assert!(may_run_twice("  select 1"));
        assert!(may_run_twice(
            "CREATE TABLE IF NOT EXISTS db.t (a UInt8) ENGINE = Memory"
        ));
        assert!(may_run_twice("DROP TABLE IF EXISTS db.t"));
        assert!(!may_run_twice(
            "CREATE TABLE db.t (a UInt8) ENGINE = Memory"
        ));
        assert!(!may_run_twice("ALTER TABLE db.t ADD COLUMN b UInt8"));
        assert!(!may_run_twice("INSERT INTO db.t VALUES (1)"));
        assert!(!may_run_twice("RENAME TABLE db.a TO db.b"));
        assert!(closed_before_answer(
            "client error (SendRequest): connection closed before message completed"
        ));
        assert!(!closed_before_answer("no answer within 5000 ms"));
    }
}
