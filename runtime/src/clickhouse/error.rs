//! What can go wrong talking to ClickHouse, and what ClickHouse's error codes mean to us.
//!
//! Codes are from ClickHouse's `ErrorCodes.cpp`, stable since long before 18.16; both message
//! styles carry them (`Code: 395, e.displayText() = …` on 18.16, `Code: 60. DB::Exception: …`
//! on modern servers).

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("cannot reach ClickHouse at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("ClickHouse rejected the statement: {message}\n  statement: {statement}")]
    Rejected { message: String, statement: String },
    #[error("unexpected rows from ClickHouse ({reason}); does the row type match the query's columns?\n  statement: {statement}")]
    Decode { reason: String, statement: String },
    #[error("{0}")]
    Bind(String),
    #[error("cannot run this statement on a cluster: {reason}\n  statement: {statement}")]
    Cluster { statement: String, reason: String },
    #[error("migration {version} ({name}) was changed after it was applied (checksum {applied} then, {now} now); add a new migration instead")]
    EditedMigration {
        version: u32,
        name: String,
        applied: String,
        now: String,
    },
}

/// Refusals caused by the rows an insert carried: worth narrowing down to the guilty rows.
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

/// `FUNCTION_THROW_IF_VALUE_IS_NON_ZERO`: a `_check_*` integrity column refused a row.
pub const CHECK_COLUMN_REFUSED: u32 = 395;

/// Refusals of `EXCHANGE TABLES` that mean "this server cannot exchange", never "it may have
/// happened": 18.16 does not know the statement (SYNTAX_ERROR 62), a modern server refuses it
/// outside an Atomic database (NOT_IMPLEMENTED 48, UNSUPPORTED_METHOD 1, SUPPORT_IS_DISABLED
/// 344).
pub(crate) const EXCHANGE_UNSUPPORTED: &[u32] = &[62, 48, 1, 344];

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
        self.code().is_some_and(|c| DATA_ERRORS.contains(&c))
    }

    /// The crate's error for `statement`, sorted into what it means for us.
    pub(crate) fn from_client(url: &str, statement: &str, error: clickhouse::error::Error) -> Self {
        use clickhouse::error::Error as E;
        let statement: String = statement.chars().take(500).collect();
        match error {
            E::Network(e) => ClickHouseError::Unreachable {
                url: url.to_string(),
                reason: error_chain(&*e),
            },
            E::TimedOut => ClickHouseError::Unreachable {
                url: url.to_string(),
                reason: "timed out".into(),
            },
            E::BadResponse(message) => ClickHouseError::Rejected {
                message: message.trim().chars().take(2000).collect(),
                statement,
            },
            other => ClickHouseError::Decode {
                reason: other.to_string(),
                statement,
            },
        }
    }
}

/// An error and its sources, on one line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_from_both_message_styles() {
        let old = ClickHouseError::Rejected {
            message: "Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero".into(),
            statement: String::new(),
        };
        assert_eq!(old.code(), Some(395));
        assert!(old.is_refused_data());
        let modern = ClickHouseError::Rejected {
            message: "Code: 60. DB::Exception: Table db.t does not exist. (UNKNOWN_TABLE)".into(),
            statement: String::new(),
        };
        assert_eq!(modern.code(), Some(60));
        assert!(
            !modern.is_refused_data(),
            "a missing table is retried, not blamed on rows"
        );
    }
}
