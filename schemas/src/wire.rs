//! The wire format of derived records: Avro single-object encoding.
//!
//! Every derived record is `C3 01` + the 8-byte little-endian CRC-64-AVRO (Rabin) fingerprint of
//! its writer schema's canonical form + the Avro binary datum
//! (<https://avro.apache.org/docs/1.11.1/specification/#single-object-encoding>). A consumer in
//! any language can decode it with nothing but the `.avsc` files in `schemas/avro/`: look the
//! fingerprint up among the published versions, then resolve against the version it reads.
//!
//! Each record type lists every schema version it has ever published; the last one is the one
//! we write. Decoding accepts any of them and resolves to the current one, which is how old
//! topics stay readable after a schema change (the compatibility test in this module proves it
//! for every pair of versions).

use std::marker::PhantomData;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::{rabin::Rabin, Schema};
use serde::{de::DeserializeOwned, Serialize};

/// The two marker bytes that open every single-object-encoded Avro record.
pub const MAGIC: [u8; 2] = [0xC3, 0x01];
const HEADER_LEN: usize = 10;

/// A derived record type: its published Avro schemas, the topic it is published on and its
/// key. Declared with [`record_type!`](crate::record_type), which also gives it one shared
/// [`Codec`].
pub trait RecordType: Serialize + DeserializeOwned + Sized + 'static {
    /// The Avro full name, e.g. `hudstream.WorkflowJob`.
    const NAME: &'static str;
    /// Every published version of the schema (JSON), oldest first. Index + 1 is the version
    /// number; the last one is the writer schema.
    const SCHEMAS: &'static [&'static str];
    /// The derived topic its records are published on (a catalogue name).
    const TOPIC: &'static str;
    /// What the key is, for the topic catalogue, e.g. `{owner}/{repo}/{job id}`.
    const KEY: &'static str;
    /// The record's Kafka key: every record of one entity has the same key, so an entity's
    /// records stay in order in one partition.
    fn key(&self) -> String;
    /// The codec of this type, built once per process.
    fn codec() -> Result<&'static Codec<Self>, &'static SchemaError>;
}

/// Receives the records a processor derived, one at a time, whatever their types.
pub trait RecordSink {
    fn record<T: RecordType>(&mut self, record: &T);
}

/// What a processor derives from one input: one record, several, some or none (each handed to
/// a [`RecordSink`], which publishes it on its type's topic).
pub trait Outputs {
    fn each<S: RecordSink>(self, sink: &mut S);
}

impl<T: RecordType> Outputs for T {
    fn each<S: RecordSink>(self, sink: &mut S) {
        sink.record(&self);
    }
}

impl<T: Outputs> Outputs for Option<T> {
    fn each<S: RecordSink>(self, sink: &mut S) {
        if let Some(outputs) = self {
            outputs.each(sink);
        }
    }
}

impl<T: Outputs> Outputs for Vec<T> {
    fn each<S: RecordSink>(self, sink: &mut S) {
        for outputs in self {
            outputs.each(sink);
        }
    }
}

impl<A: Outputs, B: Outputs> Outputs for (A, B) {
    fn each<S: RecordSink>(self, sink: &mut S) {
        self.0.each(sink);
        self.1.each(sink);
    }
}

/// Declares a derived record type (a struct with `Serialize` and `Deserialize`):
///
/// ```ignore
/// record_type! {
///     WorkflowJob {
///         name: "hudstream.WorkflowJob",
///         topic: "hud.workflow_job.v1",
///         key: "{owner}/{repo}/{job id}" => |job| format!("{}/{}", job.repository_full_name, job.id),
///         schemas: ["../avro/workflow_job.v1.avsc"],
///     }
/// }
/// ```
#[macro_export]
macro_rules! record_type {
    (
        $ty:ident {
            name: $name:literal,
            topic: $topic:literal,
            key: $key_doc:literal => |$record:ident| $key:expr,
            schemas: [$($schema:literal),+ $(,)?] $(,)?
        }
    ) => {
        impl $crate::wire::RecordType for $ty {
            const NAME: &'static str = $name;
            const SCHEMAS: &'static [&'static str] = &[$(include_str!($schema)),+];
            const TOPIC: &'static str = $topic;
            const KEY: &'static str = $key_doc;

            fn key(&self) -> String {
                let $record = self;
                $key
            }

            fn codec() -> Result<
                &'static $crate::wire::Codec<Self>,
                &'static $crate::wire::SchemaError,
            > {
                static CODEC: std::sync::OnceLock<
                    Result<$crate::wire::Codec<$ty>, $crate::wire::SchemaError>,
                > = std::sync::OnceLock::new();
                CODEC.get_or_init($crate::wire::Codec::new).as_ref()
            }
        }
    };
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("could not encode a {name} record as Avro: {source}")]
    Avro {
        name: &'static str,
        #[source]
        source: serde_avro_fast::ser::SerError,
    },
    #[error("cannot encode a {name} record: its published schema is invalid: {reason}")]
    Schema { name: &'static str, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("record is {len} bytes, too short for the 10-byte Avro single-object header")]
    TooShort { len: usize },
    #[error("record does not start with the Avro single-object marker C3 01 (found {found:02X?})")]
    BadMagic { found: [u8; 2] },
    #[error("record was written with schema fingerprint {fingerprint}, which is not a published version of {name}")]
    UnknownSchema {
        name: &'static str,
        fingerprint: String,
    },
    #[error("record is not a valid {name} datum: {source}")]
    Avro {
        name: &'static str,
        #[source]
        source: Box<apache_avro::Error>,
    },
    #[error("record is not a valid {name} datum: {source}")]
    Datum {
        name: &'static str,
        #[source]
        source: serde_avro_fast::de::DeError,
    },
    #[error("{trailing} bytes follow the {name} datum")]
    TrailingBytes { name: &'static str, trailing: usize },
}

#[derive(Debug, thiserror::Error)]
#[error("published schema version {version} of {name} is invalid: {source}")]
pub struct SchemaError {
    name: &'static str,
    version: usize,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

struct Published {
    fingerprint: [u8; 8],
    schema: Schema,
}

/// Encoder and decoder of one record type. Build it once per stage; it is cheap to share.
pub struct Codec<T: RecordType> {
    versions: Vec<Published>,
    /// The current schema for `serde_avro_fast`, which reads a datum straight into `T` — about
    /// ten times faster than `apache_avro`'s `Value` tree, and the projections' and replay's
    /// hottest path. Records of older versions still go through `apache_avro`'s resolution.
    fast_current: serde_avro_fast::Schema,
    _type: PhantomData<fn() -> T>,
}

impl<T: RecordType> Codec<T> {
    /// Parses every published schema of `T`. Fails only if a published schema is broken, which
    /// the unit tests of each record type rule out.
    pub fn new() -> Result<Self, SchemaError> {
        let mut versions = Vec::with_capacity(T::SCHEMAS.len());
        for (index, json) in T::SCHEMAS.iter().enumerate() {
            let schema = Schema::parse_str(json).map_err(|source| SchemaError {
                name: T::NAME,
                version: index + 1,
                source: Box::new(source),
            })?;
            versions.push(Published {
                fingerprint: fingerprint(&schema),
                schema,
            });
        }
        let current_json = T::SCHEMAS.last().copied().unwrap_or_default();
        let fast_current =
            current_json
                .parse()
                .map_err(|e: serde_avro_fast::schema::SchemaError| SchemaError {
                    name: T::NAME,
                    version: T::SCHEMAS.len(),
                    source: Box::new(e),
                })?;
        Ok(Self {
            versions,
            fast_current,
            _type: PhantomData,
        })
    }

    fn current(&self) -> &Published {
        // `SCHEMAS` is never empty: enforced by the record types' unit tests.
        &self.versions[self.versions.len() - 1]
    }

    /// The version number written into the `hudstream-schema` header, e.g. `hudstream.WorkflowJob/1`.
    pub fn schema_header(&self) -> String {
        format!("{}/{}", T::NAME, self.versions.len())
    }

    /// Encodes `value` with the current schema, in single-object encoding.
    pub fn encode(&self, value: &T) -> Result<Vec<u8>, EncodeError> {
        // serde_avro_fast writes the datum from the value directly, with the schema parsed once
        // in `new` (apache_avro's writer resolves the schema again on every call).
        let mut out = Vec::with_capacity(HEADER_LEN + 512);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.current().fingerprint);
        let mut config = serde_avro_fast::ser::SerializerConfig::new(&self.fast_current);
        serde_avro_fast::to_datum(value, out, &mut config).map_err(|source| EncodeError::Avro {
            name: T::NAME,
            source,
        })
    }

    /// Decodes a record written with any published version, resolved to the current one.
    pub fn decode(&self, bytes: &[u8]) -> Result<T, DecodeError> {
        if bytes.len() < HEADER_LEN {
            return Err(DecodeError::TooShort { len: bytes.len() });
        }
        if bytes[..2] != MAGIC {
            return Err(DecodeError::BadMagic {
                found: [bytes[0], bytes[1]],
            });
        }
        let fp = &bytes[2..HEADER_LEN];
        let writer = self
            .versions
            .iter()
            .find(|v| v.fingerprint == fp)
            .ok_or_else(|| DecodeError::UnknownSchema {
                name: T::NAME,
                fingerprint: fp.iter().map(|b| format!("{b:02x}")).collect(),
            })?;
        let avro = |source| DecodeError::Avro {
            name: T::NAME,
            source: Box::new(source),
        };
        let mut datum = &bytes[HEADER_LEN..];
        let current = self.current();
        if std::ptr::eq(writer, current) {
            let mut state =
                serde_avro_fast::de::DeserializerState::from_reader(datum, &self.fast_current);
            let value =
                T::deserialize(state.deserializer()).map_err(|source| DecodeError::Datum {
                    name: T::NAME,
                    source,
                })?;
            let rest = state.into_reader().into_inner();
            if !rest.is_empty() {
                return Err(DecodeError::TrailingBytes {
                    name: T::NAME,
                    trailing: rest.len(),
                });
            }
            return Ok(value);
        }
        // An older version: apache_avro resolves it to the current schema.
        let reader = GenericDatumReader::builder(&writer.schema)
            .reader_schema(&current.schema)
            .build()
            .map_err(avro)?;
        let value = reader.read_value(&mut datum).map_err(avro)?;
        if !datum.is_empty() {
            return Err(DecodeError::TrailingBytes {
                name: T::NAME,
                trailing: datum.len(),
            });
        }
        apache_avro::from_value::<T>(&value).map_err(avro)
    }
}

/// The `version` of a derived record without decoding it: every hudstream record type has
/// `version: long` as its first field (a test checks every published schema), so it is the
/// zig-zag varint right after the single-object header. Consumers can compare versions — and
/// skip superseded records — at the cost of reading a few bytes. `None` if the bytes are not a
/// single-object-encoded record.
pub fn peek_version(bytes: &[u8]) -> Option<i64> {
    if bytes.len() <= HEADER_LEN || bytes[..2] != MAGIC {
        return None;
    }
    let mut value: u64 = 0;
    for (i, byte) in bytes[HEADER_LEN..].iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

/// The CRC-64-AVRO fingerprint of a schema's parsing canonical form, little-endian.
pub fn fingerprint(schema: &Schema) -> [u8; 8] {
    let fp = schema.fingerprint::<Rabin>();
    let mut out = [0u8; 8];
    out.copy_from_slice(&fp.bytes[..8]);
    out
}

/// Checks that data written with every published version of `T` can be read with every later
/// one (and so with the current one). Used by each record type's compatibility test.
pub fn check_backward_compatible<T: RecordType>() -> Result<(), String> {
    let schemas: Vec<Schema> = T::SCHEMAS
        .iter()
        .map(|json| Schema::parse_str(json).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    for (w, writer) in schemas.iter().enumerate() {
        for (r, reader) in schemas.iter().enumerate().skip(w) {
            apache_avro::schema_compatibility::SchemaCompatibility::can_read(writer, reader)
                .map_err(|e| {
                    format!(
                        "{} version {} cannot read data written with version {}: {e}",
                        T::NAME,
                        r + 1,
                        w + 1
                    )
                })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract `peek_version` relies on.
    #[test]
    fn every_published_schema_starts_with_a_long_version() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/avro");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("avro dir") {
            let path = entry.expect("entry").path();
            let json: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
            let first = &json["fields"][0];
            assert_eq!(
                (first["name"].as_str(), first["type"].as_str()),
                (Some("version"), Some("long")),
                "{}",
                path.display()
            );
            seen += 1;
        }
        assert!(seen >= 10);
    }

    #[test]
    fn peek_version_reads_the_first_field_without_decoding() {
        use crate::workflow_job::WorkflowJob;
        let codec = Codec::<WorkflowJob>::new().expect("codec");
        for version in [0i64, 1, -1, 1_590_873_863_293_352_368, i64::MAX, i64::MIN] {
            let job = WorkflowJob {
                version,
                repository_full_name: "o/r".into(),
                id: 1,
                run_id: 2,
                run_attempt: 1,
                node_id: String::new(),
                head_sha: String::new(),
                head_branch: String::new(),
                workflow_name: String::new(),
                name: String::new(),
                status: "queued".into(),
                conclusion: String::new(),
                created_at: 0,
                started_at: None,
                completed_at: None,
                queue_time_s: None,
                duration_s: None,
                labels: vec![],
                runner_id: None,
                runner_name: String::new(),
                runner_group_id: None,
                runner_group_name: String::new(),
                steps: vec![],
                url: String::new(),
                html_url: String::new(),
                run_url: String::new(),
                check_run_url: String::new(),
            };
            let bytes = codec.encode(&job).expect("encodes");
            assert_eq!(peek_version(&bytes), Some(version));
            // The same bytes as apache_avro's writer, the reference implementation.
            let reference =
                apache_avro::writer::datum::GenericDatumWriter::builder(&codec.current().schema)
                    .build()
                    .and_then(|w| w.write_ser_to_vec(&job))
                    .expect("apache_avro encodes");
            assert_eq!(&bytes[HEADER_LEN..], &reference[..]);
            assert_eq!(codec.decode(&bytes).expect("decodes").version, version);
        }
        assert_eq!(peek_version(b"{}"), None);
    }
}
