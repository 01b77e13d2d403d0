//! Table rows: declared once, sent as `RowBinary` by the `clickhouse` crate, written as
//! `JSONEachRow` for golden files.
//!
//! A table's row is declared once with [`row!`]: the struct (deriving `clickhouse::Row` and
//! `Serialize`, which the crate turns into ClickHouse's `RowBinary`: no parsing on the server),
//! its ClickHouse column names and types, and its `JSONEachRow` encoding all come from that one
//! declaration, so the writer cannot send columns in an order other than the one it names. The
//! same rows as `JSONEachRow` are what `deploy/local/sql-compat.py` loads into ClickHouse 18.16
//! and the modern engine (the crate writes no text formats). An end-to-end test compares every
//! row's column list and types with `system.columns` of the migrated table.

use std::io::Write;

pub use hudstream_runtime::clickhouse::DateTime;

/// A value of one ClickHouse column type.
pub trait Value {
    /// The type as `system.columns` spells it, e.g. `Array(String)`.
    fn ch_type() -> String;
    /// The value in `JSONEachRow`, as ClickHouse reads it back.
    fn write_json(&self, out: &mut Vec<u8>);
}

/// One row of a table.
pub trait Row: clickhouse::RowOwned + clickhouse::RowWrite + Send + Sync + 'static {
    /// Column names in insert order (Nested columns as `name.field`).
    const COLUMNS: &'static [&'static str];
    /// Column types, in the same order.
    fn types() -> Vec<String>;
    /// One `JSONEachRow` object, without the newline.
    fn write_json(&self, out: &mut Vec<u8>);
}

/// Declares a table row: `row! { pub struct R { a: String, b_c as "b.c": Vec<i64> } }`.
///
/// With `from Record as r`, it also says how a derived record becomes the row: a field is the
/// record's field of the same name ([`IntoColumn`] converts it to the column's type), or the
/// expression after its `=`.
#[macro_export]
macro_rules! row {
    (
        $(#[$meta:meta])*
        pub struct $name:ident from $source:ty as $r:ident {
            $( $(#[$fmeta:meta])* $field:ident $(as $column:literal)? : $ty:ty $(= $value:expr)? ),* $(,)?
        }
    ) => {
        $crate::row! {
            $(#[$meta])*
            pub struct $name {
                $( $(#[$fmeta])* $field $(as $column)? : $ty ),*
            }
        }

        impl From<$source> for $name {
            fn from($r: $source) -> Self {
                Self {
                    $( $field: $crate::row!(@value $r $field $($value)?), )*
                }
            }
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident $(as $column:literal)? : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, ::clickhouse::Row, ::serde::Serialize, ::serde::Deserialize)]
        pub struct $name {
            $( $(#[$fmeta])* $(#[serde(rename = $column)])? pub $field: $ty, )*
        }

        impl $crate::row::Row for $name {
            const COLUMNS: &'static [&'static str] = &[$( $crate::row!(@column $field $($column)?) ),*];

            fn types() -> Vec<String> {
                vec![$( <$ty as $crate::row::Value>::ch_type() ),*]
            }

            fn write_json(&self, out: &mut Vec<u8>) {
                out.push(b'{');
                let mut first = true;
                $(
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    $crate::row::write_json_str($crate::row!(@column $field $($column)?), out);
                    out.push(b':');
                    $crate::row::Value::write_json(&self.$field, out);
                )*
                let _ = first;
                out.push(b'}');
            }
        }
    };
    (@column $field:ident) => { stringify!($field) };
    (@column $field:ident $column:literal) => { $column };
    (@value $r:ident $field:ident) => { $crate::row::IntoColumn::into_column($r.$field) };
    (@value $r:ident $field:ident $value:expr) => { $value };
}

/// How a derived record's field becomes its column's value: the same type as it is, or one of
/// these conversions — the conventions every table shares.
pub trait IntoColumn<T> {
    fn into_column(self) -> T;
}

impl<T> IntoColumn<T> for T {
    fn into_column(self) -> T {
        self
    }
}

/// A content-derived version (never negative) as ClickHouse's `UInt64`.
impl IntoColumn<u64> for i64 {
    fn into_column(self) -> u64 {
        self.max(0) as u64
    }
}

/// Epoch milliseconds as a `DateTime`.
impl IntoColumn<DateTime> for i64 {
    fn into_column(self) -> DateTime {
        DateTime::from_millis(Some(self))
    }
}

/// Epoch milliseconds, or "not yet": the epoch (torchci's convention).
impl IntoColumn<DateTime> for Option<i64> {
    fn into_column(self) -> DateTime {
        DateTime::from_millis(self)
    }
}

/// Epoch milliseconds, or NULL where a table keeps "not set" apart (OOT callbacks).
impl IntoColumn<Option<DateTime>> for Option<i64> {
    fn into_column(self) -> Option<DateTime> {
        self.map(|millis| DateTime::from_millis(Some(millis)))
    }
}

/// An id GitHub may leave out: 0.
impl IntoColumn<i64> for Option<i64> {
    fn into_column(self) -> i64 {
        self.unwrap_or(0)
    }
}

/// Writes `s` as a JSON string.
pub fn write_json_str(s: &str, out: &mut Vec<u8>) {
    // serde_json escapes exactly as JSON requires; writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

impl Value for String {
    fn ch_type() -> String {
        "String".into()
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        write_json_str(self, out)
    }
}

/// Raw bytes in a `String` column (ClickHouse strings are bytes). In JSON, invalid UTF-8 is
/// replaced, as ClickHouse itself does when it prints such a value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bytes(pub Vec<u8>);

impl serde::Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Bytes, E> {
                Ok(Bytes(v.as_bytes().to_vec()))
            }
        }
        deserializer.deserialize_byte_buf(Visitor)
    }
}

impl Value for Bytes {
    fn ch_type() -> String {
        "String".into()
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        write_json_str(&String::from_utf8_lossy(&self.0), out)
    }
}

macro_rules! number {
    ($ty:ty, $ch:literal) => {
        impl Value for $ty {
            fn ch_type() -> String {
                $ch.into()
            }
            fn write_json(&self, out: &mut Vec<u8>) {
                let _ = write!(out, "{self}");
            }
        }
    };
}

number!(i32, "Int32");
number!(i64, "Int64");
number!(u64, "UInt64");
number!(u8, "UInt8");

impl Value for f64 {
    fn ch_type() -> String {
        "Float64".into()
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        // JSON has no NaN or infinities; ClickHouse reads null into a Float64 as 0.
        if self.is_finite() {
            let _ = serde_json::to_writer(&mut *out, self);
        } else {
            out.extend_from_slice(b"null");
        }
    }
}

/// `bool` is stored as `UInt8` 0/1: ClickHouse 18.16 has no Bool type.
impl Value for bool {
    fn ch_type() -> String {
        "UInt8".into()
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(if *self { b'1' } else { b'0' });
    }
}

impl Value for DateTime {
    fn ch_type() -> String {
        "DateTime('UTC')".into()
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        write_json_str(&self.to_string(), out)
    }
}

impl<T: Value> Value for Option<T> {
    fn ch_type() -> String {
        format!("Nullable({})", T::ch_type())
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            None => out.extend_from_slice(b"null"),
            Some(v) => v.write_json(out),
        }
    }
}

impl<T: Value> Value for Vec<T> {
    fn ch_type() -> String {
        format!("Array({})", T::ch_type())
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            v.write_json(out);
        }
        out.push(b']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::row! {
        /// A test row.
        pub struct Sample {
            name: String,
            id: i64,
            when: DateTime,
            score: Option<f64>,
            tags: Vec<String>,
            steps_number as "steps.number": Vec<i64>,
            flag: bool,
        }
    }

    fn sample() -> Sample {
        Sample {
            name: "a\"b".into(),
            id: -2,
            when: DateTime(1_628_160_256),
            score: None,
            tags: vec!["x".into(), "yz".into()],
            steps_number: vec![1, 300],
            flag: true,
        }
    }

    #[test]
    fn columns_and_types_come_from_the_declaration() {
        assert_eq!(
            Sample::COLUMNS,
            &[
                "name",
                "id",
                "when",
                "score",
                "tags",
                "steps.number",
                "flag"
            ]
        );
        assert_eq!(
            Sample::types(),
            vec![
                "String",
                "Int64",
                "DateTime('UTC')",
                "Nullable(Float64)",
                "Array(String)",
                "Array(Int64)",
                "UInt8"
            ]
        );
    }

    #[test]
    fn json_each_row_names_nested_columns_with_dots() {
        let mut out = Vec::new();
        sample().write_json(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"name":"a\"b","id":-2,"when":"2021-08-05 10:44:16","score":null,"tags":["x","yz"],"steps.number":[1,300],"flag":1}"#
        );
    }
}
