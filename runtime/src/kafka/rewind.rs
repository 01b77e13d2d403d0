//! A consumer whose position lies past the end of its log has lost that log: the topic was
//! deleted and created again (or truncated) under the running stage. Put it back at the log's
//! start so it reads what the new log holds.
//!
//! Kafka itself answers a fetch past a log's end with `OFFSET_OUT_OF_RANGE`, and librdkafka
//! then applies `auto.offset.reset` — but only where the broker says so: nisshi deliberately
//! answers such a fetch with no records and no error, and librdkafka (2.12) notices a topic's
//! new id without resetting offsets, so the consumer waits at its old position and — once the
//! new log grows past it — silently skips every record below. The stage watch asks
//! [`rewind_past_the_end`] every interval, which makes the healing independent of the broker.
//!
//! "Past the end" must be certain before anything moves: tansu reports a high watermark one
//! *batch* low, so a consumer that has read the last batch is past tansu's end while the log
//! is whole. Hence the proof: a record is fetched at the reported end. If one comes, the
//! watermark was low and nothing happens (and the proof is asked only of a position that stood
//! still past the end across two looks); if none comes, the log really ends before the
//! consumer's position, and the partition is sought to the group's committed offset when that
//! lies inside the log (a truncation) and otherwise to the log's first offset (a deleted
//! topic's commits are deleted with it, on Kafka and nisshi alike).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::admin::GroupPosition;
use crate::kafka::client::WithTopic;

/// How long a seek may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the proof waits for a record at the reported end.
const PROOF_WAIT: Duration = Duration::from_secs(2);

/// One partition put back at the start of its new log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewound {
    pub partition: i32,
    /// Where the consumer stood, past the log's end.
    pub position: i64,
    /// Where the log ends.
    pub end: i64,
    /// Where the consumer reads next.
    pub to: i64,
}

/// What one look found: partitions put back, and partitions past the reported end whose
/// position has not moved yet — suspects, proven or cleared at the next look.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Looked {
    pub rewound: Vec<Rewound>,
    /// Partition → the consumer's position, past the log's reported end.
    pub suspects: BTreeMap<i32, i64>,
}

/// Seeks every partition of `topic` assigned to `consumer` whose position is past the log's
/// proven end (see the module documentation). `log` is where the log begins and ends and where
/// the group committed, per partition, as the stage watch has just read it; `suspects` what the
/// previous look found: a partition is proven only once its position has stood still past the
/// end across two looks (a consumer reading a live log moves) *and* no record comes at the
/// reported end. `probe` — a client of the same brokers subscribed to nothing — fetches that
/// proof. Blocking.
pub fn rewind_past_the_end<C, X>(
    consumer: &C,
    probe: &BaseConsumer,
    topic: &str,
    log: &[GroupPosition],
    suspects: &BTreeMap<i32, i64>,
) -> anyhow::Result<Looked>
where
    C: Consumer<X>,
    X: ConsumerContext,
{
    let positions = consumer.position().with_topic(topic)?;
    let mut looked = Looked::default();
    for elem in positions.elements_for_topic(topic) {
        let Offset::Offset(position) = elem.offset() else {
            continue;
        };
        let Some(p) = log.iter().find(|p| p.partition == elem.partition()) else {
            continue;
        };
        if position <= p.end {
            continue;
        }
        if suspects.get(&p.partition) != Some(&position) {
            looked.suspects.insert(p.partition, position);
            continue;
        }
        if record_at(probe, topic, p.partition, p.end)? {
            continue; // the broker's end was low, and the log whole
        }
        let to = p
            .committed
            .filter(|c| (p.first..=p.end).contains(c))
            .unwrap_or(p.first);
        consumer
            .seek(topic, p.partition, Offset::Offset(to), REQUEST_TIMEOUT)
            .with_topic(topic)?;
        looked.rewound.push(Rewound {
            partition: p.partition,
            position,
            end: p.end,
            to,
        });
    }
    Ok(looked)
}

/// Whether partition `partition` of `topic` holds a record at `offset` (or later).
fn record_at(
    probe: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
) -> anyhow::Result<bool> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .with_topic(topic)?;
    probe.assign(&tpl).with_topic(topic)?;
    let deadline = Instant::now() + PROOF_WAIT;
    let mut found = false;
    while !found && Instant::now() < deadline {
        match probe.poll(Duration::from_millis(100)) {
            Some(Ok(m)) if m.topic() == topic && m.partition() == partition => {
                found = m.offset() >= offset;
            }
            // An out-of-range answer (Kafka past its end) or nothing: no record there.
            Some(Ok(_)) | Some(Err(_)) | None => {}
        }
    }
    probe.unassign().with_topic(topic)?;
    Ok(found)
}
