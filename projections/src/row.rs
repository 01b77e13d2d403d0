//! Table rows and their two encodings: `RowBinary` for inserts, `JSONEachRow` for golden files.
//!
//! A table's row is declared once with [`row!`]: the struct, its ClickHouse column names and
//! types, and both encoders come from that one declaration, so the writer cannot send columns
//! in a different order from the one it names. `RowBinary` is ClickHouse's own row format
//! (little-endian numbers, varint-prefixed strings, arrays as a count then items, Nullable as a
//! flag byte then the value); it needs no parsing on the server and is what `clickhouse-client`
//! itself sends, which is why the writer can come close to the server's own insert rate. The
//! same rows as `JSONEachRow` are what `deploy/local/sql-compat.py` loads into ClickHouse 18.16
//! and the modern engine. An end-to-end test compares every row's column list and types with
//! `system.columns` of the migrated table.

use std::io::Write;

/// A value of one ClickHouse column type.
pub trait Value {
    /// The type as `system.columns` spells it, e.g. `Array(String)`.
    fn ch_type() -> String;
    fn write_binary(&self, out: &mut Vec<u8>);
    fn write_json(&self, out: &mut Vec<u8>);
}

/// One row of a table.
pub trait Row: Send + 'static {
    /// Column names in insert order (Nested columns as `name.field`).
    const COLUMNS: &'static [&'static str];
    /// Column types, in the same order.
    fn types() -> Vec<String>;
    fn write_binary(&self, out: &mut Vec<u8>);
    /// One `JSONEachRow` object, without the newline.
    fn write_json(&self, out: &mut Vec<u8>);
}

/// Declares a table row: `row! { pub struct R { a: String, b_c as "b.c": Vec<i64> } }`.
#[macro_export]
macro_rules! row {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident $(as $column:literal)? : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::row::Row for $name {
            const COLUMNS: &'static [&'static str] = &[$( $crate::row!(@column $field $($column)?) ),*];

            fn types() -> Vec<String> {
                vec![$( <$ty as $crate::row::Value>::ch_type() ),*]
            }

            fn write_binary(&self, out: &mut Vec<u8>) {
                $( $crate::row::Value::write_binary(&self.$field, out); )*
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
}

/// Writes `s` as a JSON string.
pub fn write_json_str(s: &str, out: &mut Vec<u8>) {
    // serde_json escapes exactly as JSON requires; writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

impl Value for String {
    fn ch_type() -> String {
        "String".into()
    }
    fn write_binary(&self, out: &mut Vec<u8>) {
        write_varint(self.len() as u64, out);
        out.extend_from_slice(self.as_bytes());
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        write_json_str(self, out)
    }
}

/// Raw bytes in a `String` column (ClickHouse strings are bytes). In JSON, invalid UTF-8 is
/// replaced, as ClickHouse itself does when it prints such a value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bytes(pub Vec<u8>);

impl Value for Bytes {
    fn ch_type() -> String {
        "String".into()
    }
    fn write_binary(&self, out: &mut Vec<u8>) {
        write_varint(self.0.len() as u64, out);
        out.extend_from_slice(&self.0);
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
            fn write_binary(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
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
    fn write_binary(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
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
    fn write_binary(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(if *self { b'1' } else { b'0' });
    }
}

/// A `DateTime('UTC')`: whole seconds since the epoch. Instants outside 1970–2106 are clamped,
/// and "not yet" is 0 (torchci's convention, so readers compare with the epoch, not NULL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct DateTime(pub u32);

impl DateTime {
    pub fn from_millis(millis: Option<i64>) -> Self {
        let seconds = millis.unwrap_or(0).div_euclid(1000);
        Self(seconds.clamp(0, i64::from(u32::MAX)) as u32)
    }
}

impl Value for DateTime {
    fn ch_type() -> String {
        "DateTime('UTC')".into()
    }
    fn write_binary(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes());
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        write_json_str(
            &hudstream_runtime::clickhouse::format_datetime(i64::from(self.0)),
            out,
        )
    }
}

impl<T: Value> Value for Option<T> {
    fn ch_type() -> String {
        format!("Nullable({})", T::ch_type())
    }
    fn write_binary(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(1),
            Some(v) => {
                out.push(0);
                v.write_binary(out)
            }
        }
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
    fn write_binary(&self, out: &mut Vec<u8>) {
        write_varint(self.len() as u64, out);
        for v in self {
            v.write_binary(out);
        }
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
    fn row_binary_is_clickhouses_layout() {
        let mut out = Vec::new();
        sample().write_binary(&mut out);
        let mut want = vec![3, b'a', b'"', b'b'];
        want.extend_from_slice(&(-2i64).to_le_bytes());
        want.extend_from_slice(&1_628_160_256u32.to_le_bytes());
        want.push(1); // NULL
        want.extend_from_slice(&[2, 1, b'x', 2, b'y', b'z']);
        want.push(2);
        want.extend_from_slice(&1i64.to_le_bytes());
        want.extend_from_slice(&300i64.to_le_bytes());
        want.push(1);
        assert_eq!(out, want);
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

    #[test]
    fn varints_and_datetime_clamping() {
        let mut out = Vec::new();
        write_varint(300, &mut out);
        assert_eq!(out, vec![0xac, 0x02]);
        assert_eq!(DateTime::from_millis(None), DateTime(0));
        assert_eq!(DateTime::from_millis(Some(-5_000)), DateTime(0));
        assert_eq!(DateTime::from_millis(Some(1_999)), DateTime(1));
        assert_eq!(DateTime::from_millis(Some(i64::MAX)), DateTime(u32::MAX));
    }
}
