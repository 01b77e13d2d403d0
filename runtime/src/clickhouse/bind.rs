//! Saved queries' parameters: `{name:Type}` placeholders replaced by typed, escaped literals.
//!
//! ClickHouse 18.16 has no server-side query parameters, and the `clickhouse` crate's own
//! client-side binding uses `?` placeholders, which cannot tell a `String` from an
//! `Array(String)` and would have every saved query rewritten in a syntax modern ClickHouse does
//! not read. So saved queries keep modern ClickHouse's `{name:Type}` syntax — they read the same
//! in `clickhouse-client`, chdb and the SQL check — and are bound here, on the client, as
//! literals escaped by their declared type: a value never reaches the server as spliced text.

use std::collections::BTreeMap;

use crate::clickhouse::ClickHouseError;

/// A value for a `{name:Type}` placeholder.
#[derive(Debug, Clone)]
pub enum Param {
    Str(String),
    Int(i64),
    UInt(u64),
    StrArray(Vec<String>),
    IntArray(Vec<i64>),
    UIntArray(Vec<u64>),
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
                ("Array(UInt64)", Param::UIntArray(v)) => format!(
                    "[{}]",
                    v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
                ),
                ("Array(Int64)", Param::IntArray(v)) => format!(
                    "[{}]",
                    v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
                ),
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
}
