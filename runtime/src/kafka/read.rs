//! Reading a topic outside the live stages: a whole topic (tools and tests) and [`LogReader`],
//! the log side of a replay.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::{BatchLimits, KafkaConfig};
use crate::kafka::admin::partition_watermarks;
use crate::kafka::batch::{collect, FirstRecord};
use crate::kafka::client::client_config;
use crate::worker::InRecord;

/// How long a reader waits for a record the broker says exists before it calls the log stuck.
const DUE_RECORD_WAIT: Duration = Duration::from_secs(30);

/// A consumer outside any group, assigned to every partition of `logical` from the beginning:
/// for tools and tests that read a whole topic (no group join, so no join delay).
pub fn whole_topic_reader(kafka: &KafkaConfig, logical: &str) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = client_config(kafka)
        .set("group.id", format!("{}.reader", kafka.group_prefix))
        .set("enable.auto.commit", "false")
        .create()?;
    let topic = kafka.topic(logical);
    let mut tpl = TopicPartitionList::new();
    for partition in partition_watermarks(&consumer, &topic)?.keys() {
        tpl.add_partition_offset(&topic, *partition, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    Ok(consumer)
}

/// Reads a topic's partitions from given offsets to their ends: the log side of a replay.
///
/// It uses a consumer group of its own (so a rebuild never disturbs the live stage's offsets,
/// and its progress is visible with the usual group tools), but assigns the partitions itself
/// instead of subscribing: there is no group join to wait for and no rebalance mid-rebuild.
///
/// Where a partition ends is what the broker says (its high watermark), but the reader does not
/// stop there blindly: after reaching it, it keeps reading until the log has been quiet for a
/// moment, and a record past the end moves the end. Records appended meanwhile are simply read
/// too, and a broker whose watermarks lag behind (tansu reports one past the last *batch*, not
/// the last record) loses nothing.
pub struct LogReader {
    consumer: StreamConsumer,
    /// For the watermarks: asked on a connection of their own (see [`LogReader::watermarks`]).
    kafka: KafkaConfig,
    topic: String,
    prefix: String,
    /// Per partition: the next offset to read.
    positions: BTreeMap<i32, i64>,
}

impl LogReader {
    /// Opens `logical` for reading in consumer group `group` (a full group id).
    pub fn open(kafka: &KafkaConfig, logical: &str, group: &str) -> anyhow::Result<Self> {
        let consumer: StreamConsumer = client_config(kafka)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Replays read far more than they wait: fetch big.
            .set("fetch.max.bytes", "104857600")
            .set("max.partition.fetch.bytes", "16777216")
            .set("queued.max.messages.kbytes", "262144")
            .create()?;
        Ok(Self {
            consumer,
            topic: kafka.topic(logical),
            prefix: kafka.topic_prefix.clone(),
            kafka: kafka.clone(),
            positions: BTreeMap::new(),
        })
    }

    /// Per partition: the first offset still in the log and the offset the next append gets,
    /// as the broker reports them.
    ///
    /// Asked by a client of its own: on the reader's connection each request would queue behind
    /// the reader's long-polling fetch (a broker answers one connection's requests in order), and
    /// a replay's catch-up spent 4.3 s on the 16 requests of 8 partitions' watermarks.
    pub fn watermarks(&self) -> anyhow::Result<BTreeMap<i32, (i64, i64)>> {
        let probe: BaseConsumer = client_config(&self.kafka)
            .set(
                "group.id",
                format!("{}.watermarks", self.kafka.group_prefix),
            )
            .set("enable.auto.commit", "false")
            .create()?;
        partition_watermarks(&probe, &self.topic)
    }

    /// Starts reading each partition at the given offset.
    pub fn assign(&mut self, from: &BTreeMap<i32, i64>) -> anyhow::Result<()> {
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in from {
            tpl.add_partition_offset(&self.topic, *partition, Offset::Offset(*offset))?;
        }
        self.consumer.assign(&tpl)?;
        self.positions = from.clone();
        Ok(())
    }

    /// Whether every partition has been read up to `ends` (exclusive).
    pub fn reached(&self, ends: &BTreeMap<i32, i64>) -> bool {
        reached(&self.positions, ends)
    }

    /// The next batch of records, within `limits`. Before `ends` are reached it waits as long
    /// as records are due (30 s at most, then it is an error); after, only `quiet` for more.
    /// Empty means: ends reached, and nothing more came for `quiet`. A record at or past a
    /// partition's end moves that end.
    pub async fn next_batch(
        &mut self,
        limits: BatchLimits,
        ends: &mut BTreeMap<i32, i64>,
        quiet: Duration,
    ) -> anyhow::Result<Vec<InRecord>> {
        let due = !self.reached(ends);
        let first = FirstRecord::Within(if due { DUE_RECORD_WAIT } else { quiet });
        let positions = &mut self.positions;
        let collected = collect(&self.consumer, &self.prefix, limits, first, |record| {
            let next = positions.entry(record.partition).or_insert(0);
            if record.offset < *next {
                return false; // seen already (a fetch from before an assign)
            }
            *next = record.offset + 1;
            let end = ends.entry(record.partition).or_insert(0);
            *end = (*end).max(record.offset + 1);
            true
        })
        .await;
        if let Some(e) = collected.error {
            anyhow::bail!("reading {}: {e}", self.topic);
        }
        if collected.records.is_empty() && due {
            anyhow::bail!(
                "no record arrived from {} for {} s although the log has more (read up to {:?}, ends {:?})",
                self.topic,
                DUE_RECORD_WAIT.as_secs(),
                self.positions,
                ends
            );
        }
        Ok(collected.records)
    }

    /// Records progress in this reader's group (for the usual group tools; a replay that
    /// stops is started again from the beginning).
    pub fn commit(&self) {
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in &self.positions {
            if tpl
                .add_partition_offset(&self.topic, *partition, Offset::Offset(*offset))
                .is_err()
            {
                return;
            }
        }
        let _ = self.consumer.commit(&tpl, CommitMode::Async);
    }
}

fn reached(positions: &BTreeMap<i32, i64>, ends: &BTreeMap<i32, i64>) -> bool {
    ends.iter()
        .all(|(p, end)| positions.get(p).copied().unwrap_or(0) >= *end)
}
