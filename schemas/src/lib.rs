//! The contracts between hudstream's stages.
//!
//! Everything another stage — or another team's consumer — relies on lives here and nowhere
//! else: the topic catalogue (which topics exist, what their keys and values are), the record
//! headers, the Avro schemas of derived records with their wire format, and the ClickHouse
//! migrations. Stages depend on this crate; this crate depends on no stage.

pub mod headers;
pub mod issue;
pub mod job_log;
pub mod migrations;
pub mod names;
pub mod oot;
pub mod pull_request;
pub mod push;
pub mod topics;
pub mod wire;
pub mod workflow_job;
pub mod workflow_run;

pub use wire::{DecodeError, EncodeError, RecordType};
