//! All Kafka plumbing, one module per role. Nothing outside this module creates a Kafka client.
//!
//! - [`client`]: the configuration every client starts from (brokers plus every `kafka.client`
//!   setting: TLS, SASL, …), and the conversion of a consumed message into an [`InRecord`].
//! - [`append`]: the durable appender. An idempotent producer with `acks=all`: an append returns
//!   only once every in-sync replica has the record, or fails — the gateway answers 2xx on
//!   nothing less.
//! - [`admin`]: topic creation, partition watermarks and a group's committed offsets.
//! - [`read`]: reading a topic outside the live stages — a whole topic for tools and tests, and
//!   [`LogReader`], the log side of a replay.
//! - [`follow`]: following derived topics from where a table's writer stands (the API's
//!   in-memory read model): every partition assigned, no group join, nothing committed.
//! - [`batch`]: the one batch collector (records up to a count, a size or a linger time).
//! - [`stage`]: the consumer loop every stage runs ([`run_stage`]) with its commit policy.
//! - [`watch`]: whether each stage is consuming (its lag from the group's commits and the log's
//!   ends, stalled stages in `/readyz` and metrics).
//! - [`rewind`]: a stage whose topic was deleted and created again under it is put back at the
//!   new log's start (the watch asks every interval).
//!
//! The commit policy, in one sentence: a batch's offsets are committed only after every output
//! of the batch has been acknowledged by the broker (or written by the sink), and a batch that
//! fails is retried, never skipped. Delivery is therefore at-least-once, and every sink
//! downstream is idempotent (versioned records, ReplacingMergeTree).
//!
//! [`InRecord`]: crate::worker::InRecord

pub mod admin;
pub mod append;
pub mod batch;
pub mod client;
pub mod follow;
pub mod read;
pub mod rewind;
pub mod stage;
pub mod watch;

pub use admin::{committed_offsets, ensure_topics, partition_watermarks};
pub use append::{AppendError, Appended, Appender};
pub use client::{client_config, to_in_record, MAX_RECORD_BYTES};
pub use follow::{FollowFrom, Follower};
pub use read::{whole_topic_reader, LogReader};
pub use stage::{dead_letter, run_stage};
