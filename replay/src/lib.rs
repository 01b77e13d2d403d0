//! Rebuilding tables from the log: `hudstream replay <table|all> [--from-archive]`.
//!
//! The log is the source of truth and a table is a cache of it. Every rebuild has one shape:
//! fill a shadow table (`<table>__replay`, the live table's own definition) with the live
//! projection's own writer, swap it in, catch up on what the live pipeline appended meanwhile,
//! drop the replaced table (the SQL of each step: `hudstream_runtime::clickhouse::shadow`). The
//! live projection keeps serving the old table until the swap and writes into the new one
//! after it (its inserts name the table). A rebuild that fails before the swap drops its
//! shadow and leaves the live table as it was.
//!
//! Two sources feed a shadow:
//! - [`from_kafka`]: the table's own derived topic, from the first offset Kafka still holds;
//! - [`from_archive`]: the raw log as the archive kept it, then Kafka for whatever offsets the
//!   archive lacks, run through the processors — so a fixed processor applies too.
//!
//! **A rebuild never shrinks a table by accident.** Before any swap the shadow is compared with
//! the live table (`ClickHouse::compare_shadow`: entities by the table's ORDER BY, newest
//! versions); if the shadow lacks entities or holds older versions of them — the log lost
//! records to retention, or a broker lost its data — the rebuild is refused, the shadow dropped
//! and the live table left as it is, unless [`Replayer::allow_shrink`]. A replay from Kafka is
//! also refused up front when a partition's first offset is past 0 (retention dropped records):
//! rebuild from the archive instead.
//!
//! [`shadow_build`] is the rebuild fed record by record (the archive path); [`write`] writes a
//! batch into a shadow with retries and publishes the dead letters of refused rows.

pub mod from_archive;
pub mod from_kafka;
pub mod report;
pub mod shadow_build;
mod write;

use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::config::{BatchLimits, KafkaConfig};
use hudstream_runtime::kafka::Appender;

pub use report::{Plan, Progress, Report};
pub use shadow_build::ShadowBuild;

/// What a rebuild needs: the log, the server, an appender for dead letters, batch limits.
#[derive(Clone)]
pub struct Replayer {
    pub kafka: KafkaConfig,
    pub clickhouse: ClickHouse,
    pub appender: Appender,
    pub limits: BatchLimits,
    /// How many times a failed insert is retried before the rebuild gives up (the live table
    /// is untouched until the swap, so giving up is safe).
    pub max_retries: u32,
    /// Swap a rebuilt table in even when it would lose entities or versions the live table
    /// has, or when the log no longer starts at offset 0 (`--allow-shrink`). Off: such a
    /// rebuild is refused before the swap and the live table stays as it is.
    pub allow_shrink: bool,
}

impl Replayer {
    /// Refuses to swap `shadow` in if it would lose anything the live table has (unless
    /// `allow_shrink`); says what it found either way.
    pub async fn guard_shrink(
        &self,
        shadow: &hudstream_runtime::clickhouse::Shadow,
    ) -> anyhow::Result<hudstream_runtime::clickhouse::Shrink> {
        let shrink = self.clickhouse.compare_shadow(shadow).await?;
        if shrink.loses_anything() {
            if self.allow_shrink {
                tracing::warn!(table = %shadow.table, %shrink, "swapping in a smaller table (--allow-shrink)");
            } else {
                anyhow::bail!(
                    "refusing to replace {}: {shrink}. The log no longer holds the records they were made of (retention, or a broker that lost its data). Nothing was changed; rebuild from the archive (--from-archive), or pass --allow-shrink to accept the loss",
                    shadow.table
                );
            }
        }
        Ok(shrink)
    }

    /// A consumer group of the replay's own for `what` (a table, a topic): a rebuild never
    /// disturbs a live stage's offsets, and its progress shows in the usual group tools.
    fn group(&self, what: &str) -> String {
        let millis = chrono::Utc::now().timestamp_millis();
        self.kafka.group(&format!("replay.{what}.{millis}"))
    }
}
