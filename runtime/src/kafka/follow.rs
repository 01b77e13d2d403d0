//! Following derived topics from where a table's writer stands: the API's in-memory read model.
//!
//! A [`Follower`] is assigned every partition of its topics itself — no group join, so every
//! reader sees every record, and a second API instance does not take partitions from the
//! first. Each topic starts at the offsets committed by the group that writes the table the
//! reader loads first (its projection): the runtime commits a projection's offsets only after
//! the rows are in ClickHouse, so everything before them is in the table, and everything from
//! them on is read here. Loaded table plus followed log is the whole log, whatever the lag of
//! either; a record seen twice (in the table and on the topic) is merged by its version.
//!
//! The follower commits nothing: a restart loads the tables again and follows from the
//! writers' commits again.

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::{BatchLimits, KafkaConfig};
use crate::kafka::admin::{group_positions, group_reader};
use crate::kafka::batch::{collect, FirstRecord};
use crate::kafka::client::client_config;
use crate::shutdown::CancellationToken;
use crate::worker::InRecord;

/// One topic to follow, and the consumer groups whose commits say where to start.
#[derive(Debug, Clone)]
pub struct FollowFrom {
    /// The topic's logical name.
    pub topic: &'static str,
    /// The full ids of the groups that write what the reader loads (the projections of the
    /// topic); each partition starts at the lowest of their commits.
    pub writer_groups: Vec<String>,
}

/// Where a follower starts one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The group had not committed: the partition is read from the log's start.
    pub from_log_start: bool,
}

/// A consumer assigned to every partition of its topics, from their writers' commits.
pub struct Follower {
    consumer: StreamConsumer,
    prefix: String,
    starts: Vec<Start>,
}

impl Follower {
    /// Looks up where each topic's writer stands and assigns the partitions there. Call it
    /// *before* loading the tables: what the writers commit afterwards is read twice, never
    /// missed.
    pub fn open(kafka: &KafkaConfig, reader: &str, topics: &[FollowFrom]) -> anyhow::Result<Self> {
        let mut starts = Vec::new();
        for follow in topics {
            let mut lowest: std::collections::BTreeMap<i32, (i64, bool)> = Default::default();
            for group in &follow.writer_groups {
                let positions = group_positions(&group_reader(kafka, group)?, kafka, follow.topic)
                    .map_err(|e| anyhow::anyhow!("following {} from {group}: {e}", follow.topic))?;
                for p in positions {
                    // A commit below the log's start (retention removed records the writer
                    // had written) starts at the log's start; no commit means nothing written.
                    let start = match p.committed {
                        Some(c) if c >= p.first => (c, false),
                        _ => (p.first, true),
                    };
                    let entry = lowest.entry(p.partition).or_insert(start);
                    if start.0 < entry.0 {
                        *entry = start;
                    }
                }
            }
            for (partition, (offset, from_log_start)) in lowest {
                starts.push(Start {
                    topic: follow.topic.to_string(),
                    partition,
                    offset,
                    from_log_start,
                });
            }
        }
        let consumer: StreamConsumer = client_config(kafka)
            .set("group.id", kafka.group(reader))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // A fetch returns as soon as a record is there (fetch.min.bytes = 1): the default
            // wait only paces an idle consumer's polling of the broker.
            .set("queued.max.messages.kbytes", "65536")
            .create()?;
        let mut tpl = TopicPartitionList::new();
        for s in &starts {
            tpl.add_partition_offset(
                &kafka.topic(&s.topic),
                s.partition,
                Offset::Offset(s.offset),
            )?;
        }
        consumer.assign(&tpl)?;
        Ok(Self {
            consumer,
            prefix: kafka.topic_prefix.clone(),
            starts,
        })
    }

    /// Where each partition started.
    pub fn starts(&self) -> &[Start] {
        &self.starts
    }

    /// The next records: waits for the first until `shutdown` (an empty batch then), then
    /// gathers within `limits`. A consumer error is returned as an error.
    pub async fn next_batch(
        &self,
        limits: BatchLimits,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Vec<InRecord>> {
        let collected = collect(
            &self.consumer,
            &self.prefix,
            limits,
            FirstRecord::UntilCancelled(shutdown),
            |_| true,
        )
        .await;
        match collected.error {
            Some(e) if collected.records.is_empty() => Err(anyhow::anyhow!("following: {e}")),
            _ => Ok(collected.records),
        }
    }

    /// Records within `wait` at most (tests and tools).
    pub async fn poll(&self, limits: BatchLimits, wait: Duration) -> anyhow::Result<Vec<InRecord>> {
        let collected = collect(
            &self.consumer,
            &self.prefix,
            limits,
            FirstRecord::Within(wait),
            |_| true,
        )
        .await;
        match collected.error {
            Some(e) if collected.records.is_empty() => Err(anyhow::anyhow!("following: {e}")),
            _ => Ok(collected.records),
        }
    }
}
