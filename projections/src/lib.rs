//! ClickHouse writers: one projection per table, each fed by one derived topic.
//!
//! A projection decodes a batch, turns each record into a row, and inserts the whole batch in
//! one statement. If the insert fails the batch is retried as a whole and no offset moves (the
//! runtime's consumer loop guarantees that); a record that cannot be decoded is dead-lettered,
//! not retried forever. Rows carry the record's content-derived `version`, and every table is a
//! `ReplacingMergeTree(version)`, so writing a batch twice — after a retry, a rebalance or a
//! full replay — leaves the same table.

pub mod workflow_job;
