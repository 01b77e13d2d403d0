//! `[pipeline]`: how stages batch, retry and are watched, and the batch limits each role
//! derives from it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Processors: most records per batch.
    pub batch_max_records: usize,
    /// Processors: most input bytes (record values) per batch.
    pub batch_max_bytes: usize,
    /// Processors: how long a batch waits to fill up after its first record.
    pub batch_linger_ms: u64,
    /// Projections: most records per ClickHouse insert. ClickHouse writes one part per insert,
    /// so big, infrequent inserts are what it wants.
    pub projection_batch_max_records: usize,
    /// Projections: most input bytes per insert (bounds each projection's memory).
    pub projection_batch_max_bytes: usize,
    /// Projections: how long an insert waits to fill up after its first record.
    pub projection_batch_linger_ms: u64,
    /// Replay: most records per insert into the shadow table. A replay reads a log that is all
    /// there, so its batches are bigger than a live projection's: more of an entity's versions
    /// meet in one batch and only the newest is written (1 M job events: 612 k rows written
    /// with the projection's limits, 416 k with these).
    pub replay_batch_max_records: usize,
    /// Replay: most input bytes per insert. A replay holds at most three batches (one being
    /// read, two being written), so this bounds its memory at about three times this.
    pub replay_batch_max_bytes: usize,
    /// Longest pause between retries of a failed batch.
    pub retry_max_backoff_ms: u64,
    /// How often each stage's lag is computed from its group's commits and the log's ends.
    pub watch_interval_ms: u64,
    /// A stage with records waiting that commits nothing for this long is stalled (`/readyz`,
    /// `hudstream_stage_stalled`).
    pub stall_after_ms: u64,
}

/// When a batch is complete: whichever limit is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_records: usize,
    pub max_bytes: usize,
    pub linger: std::time::Duration,
    /// Longest pause between retries of a batch that failed.
    pub max_backoff: std::time::Duration,
    /// How often the stage's lag is computed ([`crate::kafka::watch`]).
    pub watch_interval: std::time::Duration,
    /// Records waiting and nothing committed this long (at least twice the linger, plus 15 s):
    /// the stage is stalled.
    pub stall_after: std::time::Duration,
}

impl PipelineConfig {
    pub fn processor_batches(&self) -> BatchLimits {
        BatchLimits {
            max_records: self.batch_max_records.max(1),
            max_bytes: self.batch_max_bytes.max(1),
            linger: std::time::Duration::from_millis(self.batch_linger_ms),
            max_backoff: std::time::Duration::from_millis(self.retry_max_backoff_ms.max(1)),
            watch_interval: std::time::Duration::from_millis(self.watch_interval_ms.max(100)),
            stall_after: std::time::Duration::from_millis(self.stall_after_ms),
        }
    }

    pub fn projection_batches(&self) -> BatchLimits {
        BatchLimits {
            max_records: self.projection_batch_max_records.max(1),
            max_bytes: self.projection_batch_max_bytes.max(1),
            linger: std::time::Duration::from_millis(self.projection_batch_linger_ms),
            max_backoff: std::time::Duration::from_millis(self.retry_max_backoff_ms.max(1)),
            watch_interval: std::time::Duration::from_millis(self.watch_interval_ms.max(100)),
            stall_after: std::time::Duration::from_millis(self.stall_after_ms),
        }
    }

    /// A replay's batches: the projections' limits with replay's own sizes (a replay never
    /// lingers for records that are not there yet: its reader stops at the log's ends).
    pub fn replay_batches(&self) -> BatchLimits {
        BatchLimits {
            max_records: self.replay_batch_max_records.max(1),
            max_bytes: self.replay_batch_max_bytes.max(1),
            ..self.projection_batches()
        }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            batch_max_records: 5000,
            batch_max_bytes: 16 << 20,
            batch_linger_ms: 200,
            projection_batch_max_records: 50_000,
            projection_batch_max_bytes: 32 << 20,
            projection_batch_linger_ms: 1000,
            replay_batch_max_records: 200_000,
            replay_batch_max_bytes: 128 << 20,
            retry_max_backoff_ms: 10_000,
            watch_interval_ms: 10_000,
            stall_after_ms: 45_000,
        }
    }
}
