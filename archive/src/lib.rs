//! The archive: the raw log kept beyond Kafka's retention.
//!
//! ```text
//! github.* / oot.results / circleci.webhook ──[archive.<topic>]──► store: <topic>/date=YYYY-MM-DD/hour=HH/p<partition>-<first>-<last>.jsonl.gz
//! store ──► processors ──► projections' writers ──► shadow tables ──► swap   (hudstream replay --from-archive)
//! ```
//!
//! The archive stage ([`stage`]) reads every raw topic in a consumer group of its own and
//! writes each batch as gzip-compressed JSON Lines, one file per partition, in the folder of the
//! hour of the batch's first record ([`file`]); only after the file is complete are the offsets
//! committed, so every acknowledged record reaches the archive. A batch written again after a
//! crash makes a file that overlaps an older one; readers skip offsets they have seen.
//!
//! A record is kept whole: topic, partition, offset, timestamp, key, headers and value, the
//! value byte for byte — so the processors see exactly what they saw the first time, and a
//! rebuild from the archive (`hudstream_replay::from_archive`, reading it with [`read`]) makes
//! the same tables as a replay from Kafka.

pub mod file;
pub mod read;
pub mod stage;

pub use read::Archive;
pub use stage::ArchiveStage;
