//! All ClickHouse plumbing: an HTTP client, typed inserts and queries, client-side parameter
//! binding, and the migration runner.
//!
//! We speak ClickHouse's HTTP interface with `JSONEachRow` both ways. It is the format every
//! ClickHouse since 1.1 understands, so the same client works against the local 18.16 server
//! and a modern cluster. Parameters are bound on the client (18.16 has no server-side
//! parameters) with the `{name:Type}` placeholder syntax modern ClickHouse uses, so saved
//! queries read the same in both worlds. An insert either fails with an error or succeeded:
//! a non-2xx status or an exception in the body is an error, never silently dropped.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use hudstream_schemas::migrations::Migration;

use crate::config::ClickHouseConfig;
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("cannot reach ClickHouse at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("ClickHouse rejected the statement ({status}): {message}\n  statement: {statement}")]
    Rejected {
        status: u16,
        message: String,
        statement: String,
    },
    #[error("cannot encode row {index} for {table} as JSON: {source}")]
    Encode {
        table: String,
        index: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("unexpected row from ClickHouse ({source}): {line}")]
    Decode {
        line: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Bind(String),
    #[error("migration {version} ({name}) was changed after it was applied (checksum {applied} then, {now} now); add a new migration instead")]
    EditedMigration {
        version: u32,
        name: String,
        applied: String,
        now: String,
    },
}

impl ClickHouseError {
    /// ClickHouse's error code (`Code: N` in its message), if the server answered with one.
    pub fn code(&self) -> Option<u32> {
        let ClickHouseError::Rejected { message, .. } = self else {
            return None;
        };
        let rest = &message[message.find("Code: ")? + 6..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }

    /// The server's message (or the transport error), without the statement.
    pub fn message(&self) -> String {
        match self {
            ClickHouseError::Rejected { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// Whether the server refused an insert because of the rows it carried — bad values, a
    /// failed integrity check — rather than because of the server, the network or the schema.
    /// Only such a refusal is worth narrowing down to the guilty rows; anything else (ClickHouse
    /// down, a table not migrated yet, too many parts) is retried as it is.
    pub fn is_refused_data(&self) -> bool {
        // Codes from ClickHouse's ErrorCodes.cpp; stable since long before 18.16.
        const DATA_ERRORS: &[u32] = &[
            6,   // CANNOT_PARSE_TEXT
            26,  // CANNOT_PARSE_QUOTED_STRING
            27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
            33,  // CANNOT_READ_ALL_DATA
            38,  // CANNOT_PARSE_DATE
            41,  // CANNOT_PARSE_DATETIME
            53,  // TYPE_MISMATCH
            69,  // ARGUMENT_OUT_OF_BOUND
            70,  // CANNOT_CONVERT_TYPE
            72,  // CANNOT_PARSE_NUMBER
            117, // INCORRECT_DATA
            128, // TOO_LARGE_ARRAY_SIZE
            131, // TOO_LARGE_STRING_SIZE
            190, // SIZES_OF_ARRAYS_DOESNT_MATCH (Nested columns of unequal length)
            321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
            395, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO (a _check_* column)
            469, // VIOLATED_CONSTRAINT (modern CHECK constraints)
        ];
        self.code().is_some_and(|c| DATA_ERRORS.contains(&c))
    }
}

/// A ClickHouse server and the database hudstream uses on it.
#[derive(Clone)]
pub struct ClickHouse {
    http: reqwest::Client,
    url: String,
    database: String,
    user: String,
    password: Secret,
}

impl ClickHouse {
    pub fn new(config: &ClickHouseConfig) -> anyhow::Result<Self> {
        if !is_identifier(&config.database) {
            anyhow::bail!(
                "clickhouse.database {:?} must be letters, digits and underscores",
                config.database
            );
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .build()?;
        Ok(Self {
            http,
            url: config.url.trim_end_matches('/').to_string(),
            database: config.database.clone(),
            user: config.user.clone(),
            password: config.password.clone(),
        })
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn post(
        &self,
        params: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
        statement: &str,
    ) -> Result<String, ClickHouseError> {
        let mut request = self.http.post(&self.url).query(params).body(body);
        if !self.user.is_empty() {
            request = request.basic_auth(&self.user, Some(self.password.expose()));
        }
        let response = request
            .send()
            .await
            .map_err(|source| ClickHouseError::Unreachable {
                url: self.url.clone(),
                source,
            })?;
        let status = response.status();
        let exception_header = response
            .headers()
            .contains_key("x-clickhouse-exception-code");
        let text = response
            .text()
            .await
            .map_err(|source| ClickHouseError::Unreachable {
                url: self.url.clone(),
                source,
            })?;
        // A failure after the first bytes of a result still arrives with status 200; ClickHouse
        // then ends the body with the exception text, on a line of its own. (Looking for the
        // text anywhere would take a stored value that quotes an exception for one.)
        if !status.is_success() || exception_header || ends_with_exception(&text) {
            return Err(ClickHouseError::Rejected {
                status: status.as_u16(),
                message: text.trim().chars().take(2000).collect(),
                statement: statement.chars().take(500).collect(),
            });
        }
        Ok(text)
    }

    /// Runs a statement that returns nothing of interest (DDL, ALTER, OPTIMIZE).
    pub async fn execute(&self, sql: &str) -> Result<(), ClickHouseError> {
        self.post(&[], sql.to_string(), sql).await.map(|_| ())
    }

    /// Inserts rows into `table` (in the configured database) as one `JSONEachRow` block.
    pub async fn insert<T: Serialize>(
        &self,
        table: &str,
        rows: &[T],
    ) -> Result<(), ClickHouseError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut body = Vec::with_capacity(rows.len() * 512);
        for (index, row) in rows.iter().enumerate() {
            serde_json::to_writer(&mut body, row).map_err(|source| ClickHouseError::Encode {
                table: table.to_string(),
                index,
                source,
            })?;
            body.push(b'\n');
        }
        let query = format!("INSERT INTO {}.{} FORMAT JSONEachRow", self.database, table);
        self.post(&[("query", &query)], body, &query)
            .await
            .map(|_| ())
    }

    /// Inserts rows already encoded as `RowBinary`, in the order of `columns`, as one statement.
    /// Columns left out get their defaults; `MATERIALIZED` columns (the `_check_*` integrity
    /// checks among them) are computed by the server, which may refuse the whole insert.
    pub async fn insert_row_binary(
        &self,
        table: &str,
        columns: &[&str],
        body: bytes::Bytes,
    ) -> Result<(), ClickHouseError> {
        if body.is_empty() {
            return Ok(());
        }
        let query = self.row_binary_insert(table, columns);
        self.post(&[("query", &query)], body, &query)
            .await
            .map(|_| ())
    }

    fn row_binary_insert(&self, table: &str, columns: &[&str]) -> String {
        let columns: Vec<String> = columns.iter().map(|c| format!("`{c}`")).collect();
        format!(
            "INSERT INTO {}.{} ({}) FORMAT RowBinary",
            self.database,
            table,
            columns.join(", ")
        )
    }

    /// Like [`Self::insert_row_binary`], with the body streamed as it is produced, so the
    /// server parses while the client is still encoding (one statement all the same).
    pub async fn insert_row_binary_stream<S>(
        &self,
        table: &str,
        columns: &[&str],
        body: S,
    ) -> Result<(), ClickHouseError>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
    {
        let query = self.row_binary_insert(table, columns);
        self.post(
            &[("query", &query)],
            reqwest::Body::wrap_stream(body),
            &query,
        )
        .await
        .map(|_| ())
    }

    /// Runs a query and returns its output in `format` (e.g. `TabSeparated`), unparsed.
    pub async fn query_text(&self, sql: &str, format: &str) -> Result<String, ClickHouseError> {
        let statement = format!("{sql}\nFORMAT {format}");
        self.post(&[], statement.clone(), &statement).await
    }

    /// Runs a query and decodes each result row. `sql` must not have a FORMAT clause.
    pub async fn query<T: DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, ClickHouseError> {
        let statement = format!("{sql}\nFORMAT JSONEachRow");
        let text = self
            .post(
                &[("output_format_json_quote_64bit_integers", "0")],
                statement.clone(),
                &statement,
            )
            .await?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line).map_err(|source| ClickHouseError::Decode {
                    line: line.chars().take(500).collect(),
                    source,
                })
            })
            .collect()
    }

    /// Answers whether the server is up.
    pub async fn ping(&self) -> Result<(), ClickHouseError> {
        self.query::<serde_json::Value>("SELECT 1")
            .await
            .map(|_| ())
    }

    /// Creates the database and applies every migration not applied yet, in order. Returns the
    /// versions applied now.
    pub async fn migrate(&self, migrations: &[Migration]) -> Result<Vec<u32>, ClickHouseError> {
        self.execute(&format!("CREATE DATABASE IF NOT EXISTS {}", self.database))
            .await?;
        self.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {}.schema_migrations (version UInt32, name String, checksum String, applied_at DateTime) ENGINE = MergeTree ORDER BY version",
            self.database
        ))
        .await?;
        #[derive(serde::Deserialize)]
        struct Applied {
            version: u32,
            checksum: String,
        }
        let applied: BTreeMap<u32, String> = self
            .query::<Applied>(&format!(
                "SELECT version, checksum FROM {}.schema_migrations",
                self.database
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
            for statement in migration.statements(&self.database) {
                self.execute(&statement).await?;
            }
            #[derive(Serialize)]
            struct Record<'a> {
                version: u32,
                name: &'a str,
                checksum: String,
                applied_at: String,
            }
            self.insert(
                "schema_migrations",
                &[Record {
                    version: migration.version,
                    name: migration.name,
                    checksum: migration.checksum(),
                    applied_at: chrono_like_now(),
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

/// Whether a response body ends with ClickHouse's exception text, on a line of its own.
fn ends_with_exception(text: &str) -> bool {
    text.trim_end()
        .lines()
        .last()
        .is_some_and(|l| l.starts_with("Code: ") && l.contains("DB::Exception"))
}

fn chrono_like_now() -> String {
    format_datetime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    )
}

/// Formats Unix seconds as ClickHouse's `DateTime` text, `YYYY-MM-DD hh:mm:ss` (UTC).
pub fn format_datetime(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

// Howard Hinnant's days-to-civil algorithm: exact for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// A value for a `{name:Type}` placeholder.
#[derive(Debug, Clone)]
pub enum Param {
    Str(String),
    Int(i64),
    UInt(u64),
    StrArray(Vec<String>),
}

/// Quotes a string as a ClickHouse string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Replaces `{database}` and every `{name:Type}` placeholder of a saved query with literals.
/// The declared type must match the value given; unknown or unused placeholders are errors.
pub fn bind(
    sql: &str,
    database: &str,
    params: &BTreeMap<&str, Param>,
) -> Result<String, ClickHouseError> {
    let mut out = String::with_capacity(sql.len() + 64);
    let mut rest = sql;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| ClickHouseError::Bind("unclosed '{' in query".into()))?;
        let inner = &after[..end];
        if inner == "database" {
            out.push_str(database);
        } else {
            let (name, ty) = inner.split_once(':').ok_or_else(|| {
                ClickHouseError::Bind(format!("placeholder {{{inner}}} has no type"))
            })?;
            let value = params.get(name.trim()).ok_or_else(|| {
                ClickHouseError::Bind(format!("no value for parameter {}", name.trim()))
            })?;
            let literal = match (ty.trim(), value) {
                ("String", Param::Str(s)) => quote(s),
                ("Int64", Param::Int(i)) => i.to_string(),
                ("UInt64", Param::UInt(u)) => u.to_string(),
                ("Array(String)", Param::StrArray(v)) => {
                    format!(
                        "[{}]",
                        v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")
                    )
                }
                (ty, value) => {
                    return Err(ClickHouseError::Bind(format!(
                        "parameter {} is declared {ty} but was given {value:?}",
                        name.trim()
                    )))
                }
            };
            out.push_str(&literal);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_datetimes_like_clickhouse() {
        assert_eq!(format_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(format_datetime(1_628_160_256), "2021-08-05 10:44:16");
        assert_eq!(format_datetime(951_782_400), "2000-02-29 00:00:00");
    }

    #[test]
    fn binds_typed_placeholders_and_escapes_strings() {
        let mut p = BTreeMap::new();
        p.insert("repo", Param::Str("o'wner/re\\po".into()));
        p.insert("id", Param::Int(-3));
        let sql = bind(
            "SELECT * FROM {database}.t WHERE r = {repo:String} AND id = {id:Int64}",
            "db",
            &p,
        )
        .unwrap();
        assert_eq!(
            sql,
            "SELECT * FROM db.t WHERE r = 'o\\'wner/re\\\\po' AND id = -3"
        );
        assert!(bind("{id:String}", "db", &p).is_err());
        assert!(bind("{missing:String}", "db", &p).is_err());
    }

    #[test]
    fn error_codes_are_read_from_both_message_styles() {
        let old = ClickHouseError::Rejected {
            status: 500,
            message: "Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero".into(),
            statement: String::new(),
        };
        assert_eq!(old.code(), Some(395));
        assert!(old.is_refused_data());
        let modern = ClickHouseError::Rejected {
            status: 404,
            message: "Code: 60. DB::Exception: Table db.t does not exist. (UNKNOWN_TABLE)".into(),
            statement: String::new(),
        };
        assert_eq!(modern.code(), Some(60));
        assert!(
            !modern.is_refused_data(),
            "a missing table is retried, not blamed on rows"
        );
    }

    #[test]
    fn only_a_trailing_exception_line_fails_a_result() {
        // A result that failed after its first rows (18.16 and modern message styles).
        assert!(ends_with_exception(
            "{\"n\":1}\nCode: 241, e.displayText() = DB::Exception: Memory limit exceeded\n"
        ));
        assert!(ends_with_exception(
            "{\"n\":1}\nCode: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)"
        ));
        // A stored value that quotes an exception (a dead letter's reason) is data.
        assert!(!ends_with_exception(
            "{\"reason\":\"Code: 395, e.displayText() = DB::Exception: throwIf\"}\n"
        ));
        assert!(!ends_with_exception(""));
    }

    #[test]
    fn rejects_database_names_that_are_not_identifiers() {
        let mut c = ClickHouseConfig::default();
        c.database = "x; DROP".into();
        assert!(ClickHouse::new(&c).is_err());
    }
}
