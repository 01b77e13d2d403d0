//! Administration: creating topics, and asking the broker where partitions begin and end and
//! where a consumer group has committed.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::kafka::client::{client_config, WithTopic, MAX_RECORD_BYTES};

/// How long one metadata or offset request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates the given catalogue topics if they do not exist yet. Returns the names created.
pub async fn ensure_topics(kafka: &KafkaConfig, logical: &[String]) -> anyhow::Result<Vec<String>> {
    let admin: AdminClient<DefaultClientContext> = client_config(kafka).create()?;
    let names: Vec<String> = logical.iter().map(|t| kafka.topic(t)).collect();
    // Kafka's default (~1 MiB) would refuse GitHub's largest deliveries (25 MiB).
    let max_message_bytes = MAX_RECORD_BYTES.to_string();
    let new: Vec<NewTopic> = names
        .iter()
        .map(|n| {
            NewTopic::new(
                n,
                kafka.partitions,
                TopicReplication::Fixed(kafka.replication_factor),
            )
            .set("max.message.bytes", &max_message_bytes)
        })
        .collect();
    let results = admin
        .create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT)),
        )
        .await?;
    let mut created = Vec::new();
    for result in results {
        match result {
            Ok(name) => created.push(name),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("cannot create topic {name}: {code}"),
        }
    }
    Ok(created)
}

/// Per partition of `topic` (a full name): the first offset still in the log and the offset the
/// next append gets, as the broker reports them. An error names a missing topic.
pub fn partition_watermarks<C: ConsumerContext, T: Consumer<C>>(
    consumer: &T,
    topic: &str,
) -> anyhow::Result<BTreeMap<i32, (i64, i64)>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .with_topic(topic)?;
    let mut out = BTreeMap::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        if let Some(e) = t.error() {
            anyhow::bail!("topic {topic}: {e:?}");
        }
        for p in t.partitions() {
            let marks = consumer
                .fetch_watermarks(topic, p.id(), REQUEST_TIMEOUT)
                .with_topic(topic)?;
            out.insert(p.id(), marks);
        }
    }
    if out.is_empty() {
        anyhow::bail!("topic {topic} does not exist (run `hudstream topics`)");
    }
    Ok(out)
}

/// One partition as a consumer group sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupPosition {
    pub partition: i32,
    /// The first offset still in the log.
    pub first: i64,
    /// The offset the next append gets (the broker's high watermark).
    pub end: i64,
    /// The next offset the group will read; `None` before its first commit.
    pub committed: Option<i64>,
}

/// Where consumer group `group` (a full group id) stands in `logical`, per partition, with the
/// partition's ends — without joining the group, so it answers while the stage runs or not.
pub fn committed_offsets(
    kafka: &KafkaConfig,
    group: &str,
    logical: &str,
) -> anyhow::Result<Vec<GroupPosition>> {
    group_positions(&group_reader(kafka, group)?, kafka, logical)
}

/// A client that reads `group`'s committed offsets (it never joins the group), to be reused.
pub fn group_reader(kafka: &KafkaConfig, group: &str) -> anyhow::Result<BaseConsumer> {
    Ok(client_config(kafka)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?)
}

/// [`committed_offsets`] through a [`group_reader`].
pub fn group_positions(
    consumer: &BaseConsumer,
    kafka: &KafkaConfig,
    logical: &str,
) -> anyhow::Result<Vec<GroupPosition>> {
    let topic = kafka.topic(logical);
    let marks = partition_watermarks(consumer, &topic)?;
    let mut tpl = TopicPartitionList::new();
    for partition in marks.keys() {
        tpl.add_partition(&topic, *partition);
    }
    let committed = consumer
        .committed_offsets(tpl, REQUEST_TIMEOUT)
        .with_topic(&topic)?;
    Ok(marks
        .into_iter()
        .map(|(partition, (first, end))| GroupPosition {
            partition,
            first,
            end,
            committed: committed
                .find_partition(&topic, partition)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                }),
        })
        .collect())
}
