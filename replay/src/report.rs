//! What a rebuild would do, is doing and did.

use std::collections::BTreeMap;
use std::time::Duration;

use hudstream_runtime::clickhouse::Swap;

/// What a replay of one table would do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub table: String,
    pub topic: String,
    pub shadow: String,
    /// Per partition: first offset in the log, end offset (exclusive).
    pub partitions: BTreeMap<i32, (i64, i64)>,
    /// Rows in the table now (before any merge, so versions not yet collapsed count).
    pub rows_now: u64,
}

impl Plan {
    /// Partitions whose log no longer starts at offset 0, with their first offset: records
    /// the table may have been made of are gone.
    pub fn truncated(&self) -> Vec<(i32, i64)> {
        self.partitions
            .iter()
            .filter(|(_, (low, _))| *low > 0)
            .map(|(p, (low, _))| (*p, *low))
            .collect()
    }

    pub fn events(&self) -> u64 {
        self.partitions
            .values()
            .map(|(low, high)| (high - low).max(0) as u64)
            .sum()
    }
}

/// A replay's progress, reported after every batch.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub events_done: u64,
    pub events_total: u64,
    pub elapsed: Duration,
}

impl Progress {
    pub fn events_per_second(&self) -> f64 {
        self.events_done as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Time left at the rate so far.
    pub fn eta(&self) -> Option<Duration> {
        let rate = self.events_per_second();
        (self.events_done > 0 && rate > 0.0).then(|| {
            Duration::from_secs_f64(
                self.events_total.saturating_sub(self.events_done) as f64 / rate,
            )
        })
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub table: String,
    pub events: u64,
    pub rows_written: u64,
    pub dead_letters: u64,
    /// Events appended during the rebuild and written after the swap.
    pub caught_up: u64,
    pub elapsed: Duration,
    /// Time spent reading the log, and waiting for a batch's write after the next was read:
    /// where a replay's time goes (reads and writes overlap otherwise).
    pub reading: Duration,
    pub waiting_for_writes: Duration,
    /// How the rebuilt table replaced the live one.
    pub swap: Option<Swap>,
}

impl Report {
    /// Counts a batch the rebuild wrote.
    pub(crate) fn add(&mut self, batch: crate::write::BatchWritten) {
        self.events += batch.events;
        self.rows_written += batch.rows;
        self.dead_letters += batch.dead_letters;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_follows_the_rate_so_far() {
        let p = Progress {
            events_done: 500,
            events_total: 1500,
            elapsed: Duration::from_secs(5),
        };
        assert_eq!(p.events_per_second(), 100.0);
        assert_eq!(p.eta(), Some(Duration::from_secs(10)));
        let start = Progress {
            events_done: 0,
            events_total: 10,
            elapsed: Duration::ZERO,
        };
        assert_eq!(start.eta(), None);
    }
}
