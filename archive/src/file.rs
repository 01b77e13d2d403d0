//! The archive's file format: gzip-compressed JSON Lines, one record per line.
//!
//! ```json
//! {"topic":"github.push","partition":0,"offset":41,"timestamp_ms":1700000000123,
//!  "key":"octo-org/octo-repo/refs/heads/main","headers":[{"name":"github-event","value":"push"}],
//!  "value":"{\"ref\":\"refs/heads/main\",...}"}
//! ```
//!
//! Keys, values and header values are text when they are UTF-8 (webhook bodies always are, so
//! `zcat | jq` reads an archive) and `{"base64": "..."}` otherwise; either way they come back
//! byte for byte. Files are named
//! `<topic>/date=YYYY-MM-DD/hour=HH/p<partition>-<first offset>-<last offset>.jsonl.gz`, offsets
//! zero-padded so that names sort in offset order, in Hive-style folders that query engines
//! (Athena, Spark, ClickHouse's `s3()` function) can prune by date.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use hudstream_runtime::worker::InRecord;

/// Bytes as text when they are UTF-8, else base64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Bytes {
    Text(String),
    Binary { base64: String },
}

impl Bytes {
    pub fn new(bytes: &[u8]) -> Bytes {
        match std::str::from_utf8(bytes) {
            Ok(text) => Bytes::Text(text.to_string()),
            Err(_) => Bytes::Binary {
                base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            },
        }
    }

    pub fn into_bytes(self) -> Result<Vec<u8>, String> {
        match self {
            Bytes::Text(text) => Ok(text.into_bytes()),
            Bytes::Binary { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64)
                .map_err(|e| format!("invalid base64: {e}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub name: String,
    pub value: Bytes,
}

/// One archived record: everything Kafka held of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchivedRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Bytes>,
    #[serde(default)]
    pub headers: Vec<Header>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Bytes>,
}

impl ArchivedRecord {
    pub fn new(record: &InRecord) -> ArchivedRecord {
        ArchivedRecord {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
            key: record.key.as_deref().map(Bytes::new),
            headers: record
                .headers
                .iter()
                .map(|(name, value)| Header {
                    name: name.clone(),
                    value: Bytes::new(value),
                })
                .collect(),
            value: record.payload.as_deref().map(Bytes::new),
        }
    }

    /// The record as it was read from Kafka.
    pub fn into_record(self) -> Result<InRecord, String> {
        Ok(InRecord {
            topic: self.topic,
            partition: self.partition,
            offset: self.offset,
            key: self.key.map(Bytes::into_bytes).transpose()?,
            payload: self.value.map(Bytes::into_bytes).transpose()?,
            headers: self
                .headers
                .into_iter()
                .map(|h| Ok((h.name, h.value.into_bytes()?)))
                .collect::<Result<_, String>>()?,
            timestamp_ms: self.timestamp_ms,
        })
    }
}

/// Where a file is and what it holds, as its name says.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileName {
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    /// `date=YYYY-MM-DD/hour=HH`.
    pub hour: String,
}

impl FileName {
    /// The name of the file holding `partition`'s records `first..=last` of `topic`, in the
    /// folder of the hour of `timestamp_ms` (UTC; the epoch's when the broker gave none).
    pub fn new(
        topic: &str,
        partition: i32,
        first: i64,
        last: i64,
        timestamp_ms: Option<i64>,
    ) -> FileName {
        let at =
            chrono::DateTime::from_timestamp_millis(timestamp_ms.unwrap_or(0)).unwrap_or_default();
        FileName {
            topic: topic.to_string(),
            partition,
            first_offset: first,
            last_offset: last,
            hour: at.format("date=%Y-%m-%d/hour=%H").to_string(),
        }
    }

    pub fn path(&self) -> String {
        format!(
            "{}/{}/p{:05}-{:020}-{:020}.jsonl.gz",
            self.topic, self.hour, self.partition, self.first_offset, self.last_offset
        )
    }

    /// Reads a path made by [`FileName::path`]; `None` for anything else (a stray object).
    pub fn parse(path: &str) -> Option<FileName> {
        let mut parts = path.rsplitn(4, '/');
        let name = parts.next()?.strip_suffix(".jsonl.gz")?;
        let hour = parts.next()?;
        let date = parts.next()?;
        let topic = parts.next()?;
        if !date.starts_with("date=") || !hour.starts_with("hour=") || topic.is_empty() {
            return None;
        }
        let mut fields = name.strip_prefix('p')?.splitn(3, '-');
        let partition = fields.next()?.parse().ok()?;
        let first_offset = fields.next()?.parse().ok()?;
        let last_offset = fields.next()?.parse().ok()?;
        Some(FileName {
            topic: topic.to_string(),
            partition,
            first_offset,
            last_offset,
            hour: format!("{date}/{hour}"),
        })
    }
}

/// The JSON Lines of `records` (uncompressed).
pub fn encode(records: &[&InRecord]) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(
        records
            .iter()
            .map(|r| r.payload.as_ref().map_or(0, Vec::len) + 256)
            .sum(),
    );
    for record in records {
        serde_json::to_writer(&mut out, &ArchivedRecord::new(record))?;
        out.push(b'\n');
    }
    Ok(out)
}

/// One line back into a record; the error names what is wrong with it.
pub fn decode(line: &str) -> Result<InRecord, String> {
    serde_json::from_str::<ArchivedRecord>(line)
        .map_err(|e| format!("not an archived record: {e}"))?
        .into_record()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(
        key: Option<Vec<u8>>,
        payload: Option<Vec<u8>>,
        headers: Vec<(String, Vec<u8>)>,
    ) -> InRecord {
        InRecord {
            topic: "github.push".into(),
            partition: 3,
            offset: 41,
            key,
            payload,
            headers,
            timestamp_ms: Some(1_700_000_000_123),
        }
    }

    #[test]
    fn a_webhook_is_kept_as_readable_text() {
        let r = record(
            Some(b"o/r/refs/heads/main".to_vec()),
            Some(br#"{"ref": "refs/heads/main"}"#.to_vec()),
            vec![("github-event".into(), b"push".to_vec())],
        );
        let line = String::from_utf8(encode(&[&r]).unwrap()).unwrap();
        assert!(
            line.contains(r#""value":"{\"ref\": \"refs/heads/main\"}""#),
            "{line}"
        );
        assert!(line.contains(r#""key":"o/r/refs/heads/main""#), "{line}");
        let back = decode(line.trim_end()).unwrap();
        assert_eq!(back.payload, r.payload);
        assert_eq!(back.key, r.key);
        assert_eq!(back.headers, r.headers);
        assert_eq!(
            (
                back.topic.as_str(),
                back.partition,
                back.offset,
                back.timestamp_ms
            ),
            ("github.push", 3, 41, Some(1_700_000_000_123))
        );
    }

    #[test]
    fn names_sort_in_offset_order_and_parse_back() {
        let a = FileName::new("github.workflow_job", 2, 9, 120, Some(1_700_000_000_123));
        assert_eq!(
            a.path(),
            "github.workflow_job/date=2023-11-14/hour=22/p00002-00000000000000000009-00000000000000000120.jsonl.gz"
        );
        assert_eq!(FileName::parse(&a.path()), Some(a.clone()));
        let b = FileName::new("github.workflow_job", 2, 121, 130, Some(1_700_000_000_123));
        assert!(a.path() < b.path());
        assert_eq!(FileName::parse("github.push/README.md"), None);
        assert_eq!(FileName::parse("x/date=1/hour=2/p1-2.jsonl.gz"), None);
        assert_eq!(
            FileName::new("t", 0, 0, 0, None).hour,
            "date=1970-01-01/hour=00"
        );
    }

    proptest! {
        /// Any record — binary keys, values and headers, tombstones — comes back byte for byte.
        #[test]
        fn any_record_round_trips(
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            payload in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..512)),
            headers in proptest::collection::vec(("[a-z-]{1,12}", proptest::collection::vec(any::<u8>(), 0..32)), 0..4),
            offset in 0i64..i64::MAX,
            timestamp in proptest::option::of(0i64..4_000_000_000_000),
        ) {
            let mut r = record(key, payload, headers);
            r.offset = offset;
            r.timestamp_ms = timestamp;
            let encoded = encode(&[&r, &r]).unwrap();
            let text = String::from_utf8(encoded).expect("JSON is UTF-8");
            let lines: Vec<&str> = text.lines().collect();
            prop_assert_eq!(lines.len(), 2);
            let back = decode(lines[0]).unwrap();
            prop_assert_eq!(back.key, r.key);
            prop_assert_eq!(back.payload, r.payload);
            prop_assert_eq!(back.headers, r.headers);
            prop_assert_eq!(back.offset, r.offset);
            prop_assert_eq!(back.timestamp_ms, r.timestamp_ms);
        }
    }
}
