//! All Kafka plumbing: client settings, the durable appender, topic creation, and the consumer
//! loop with its commit policy.
//!
//! The appender is an idempotent producer with `acks=all`: an append returns only once every
//! in-sync replica has the record, or fails — the gateway answers 2xx on nothing less.
//!
//! The consumer loop ([`run_stage`]) reads a batch, hands it to the stage, publishes the stage's
//! outputs and dead letters, waits for all their acknowledgements, and only then commits the
//! batch's offsets. A failure anywhere before the commit retries the same batch with backoff;
//! the loop never moves past a batch it could not finish. Delivery is therefore at-least-once,
//! and every sink downstream is idempotent (versioned records, ReplacingMergeTree).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use hudstream_schemas::headers as h;
use hudstream_schemas::topics::DEAD_LETTERS;

use crate::config::{BatchLimits, KafkaConfig};
use crate::worker::{Action, BatchHandler, InRecord, OutRecord};

/// A client configuration with the brokers and every `kafka.client` setting (TLS, SASL, …):
/// the base of every client hudstream creates, so none misses the operator's settings.
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers);
    for (k, v) in &kafka.client {
        config.set(k, v);
    }
    config
}

/// The largest record the producer sends unless `kafka.client` says otherwise: GitHub's 25 MiB
/// delivery cap plus room for key and headers.
pub const MAX_RECORD_BYTES: usize = 26 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("the broker did not acknowledge the append to {topic} within {timeout_ms} ms")]
    Timeout { topic: String, timeout_ms: u64 },
    #[error("the broker refused the append to {topic}: {source}")]
    Refused {
        topic: String,
        #[source]
        source: KafkaError,
    },
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub partition: i32,
    pub offset: i64,
}

/// The one way hudstream writes to Kafka: idempotent, `acks=all`, bounded wait.
///
/// An idempotent producer keeps a producer id and sequence numbers that the broker must know.
/// When a broker loses them (a restart of an in-memory broker, a cluster that expired the
/// producer), the producer can stay stuck: every later append times out or fails fatally. So
/// after a failed append the appender replaces its producer — once per producer generation, so
/// a burst of failures causes one replacement — and a broker that comes back is usable again
/// without restarting the process. Nothing is acknowledged in between.
#[derive(Clone)]
pub struct Appender {
    producer: Arc<std::sync::RwLock<(u64, FutureProducer)>>,
    config: ClientConfig,
    prefix: String,
    timeout: Duration,
}

impl Appender {
    pub fn new(kafka: &KafkaConfig) -> Result<Self, KafkaError> {
        let mut config = client_config(kafka);
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", kafka.linger_ms.to_string())
            // librdkafka gives up on (and reports) a record after this long; the gateway's
            // answer deadline is the same figure, so a 503 means "not appended as far as we know".
            .set("message.timeout.ms", kafka.append_timeout_ms.to_string());
        // librdkafka refuses records over 1 MB by default; GitHub sends up to 25 MiB
        // (`gateway.max_body_bytes`). 26 MiB leaves room for the key and headers. The broker's
        // own `message.max.bytes` must allow as much (README, deployment guide).
        if !kafka.client.contains_key("message.max.bytes") {
            config.set("message.max.bytes", MAX_RECORD_BYTES.to_string());
        }
        let producer: FutureProducer = config.create()?;
        Ok(Self {
            producer: Arc::new(std::sync::RwLock::new((0, producer))),
            config,
            prefix: kafka.topic_prefix.clone(),
            timeout: Duration::from_millis(kafka.append_timeout_ms),
        })
    }

    fn current(&self) -> (u64, FutureProducer) {
        match self.producer.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces generation `failed` with a fresh producer, unless someone already did.
    fn replace(&self, failed: u64, why: &AppendError) {
        let fresh = match self.config.create::<FutureProducer>() {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create a replacement producer");
                return;
            }
        };
        let old = {
            let mut guard = match self.producer.write() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            if guard.0 != failed {
                return;
            }
            tracing::warn!(generation = failed + 1, reason = %why, "replacing the Kafka producer after a failed append");
            metrics::counter!("hudstream_producer_replacements_total").increment(1);
            std::mem::replace(&mut *guard, (failed + 1, fresh))
        };
        // Dropping a producer waits for its queue; keep that off the async threads.
        std::thread::spawn(move || drop(old));
    }

    /// Appends one record and waits for the broker's acknowledgement.
    pub async fn append(&self, record: &OutRecord) -> Result<Appended, AppendError> {
        let topic = format!("{}{}", self.prefix, record.topic);
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (name, value) in &record.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_slice()),
            });
        }
        let (generation, producer) = self.current();
        let future = producer.send(
            FutureRecord::to(&topic)
                .key(&record.key)
                .payload(&record.payload)
                .headers(headers),
            // Queue-full back-pressure counts against the same deadline.
            self.timeout,
        );
        let result =
            match tokio::time::timeout(self.timeout + Duration::from_millis(500), future).await {
                Ok(Ok(delivery)) => Ok(Appended {
                    partition: delivery.partition,
                    offset: delivery.offset,
                }),
                Ok(Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut), _)))
                | Err(_) => Err(AppendError::Timeout {
                    topic: record.topic.clone(),
                    timeout_ms: self.timeout.as_millis() as u64,
                }),
                Ok(Err((source, _))) => Err(AppendError::Refused {
                    topic: record.topic.clone(),
                    source,
                }),
            };
        // A record the broker refused on its merits (too large, say) says nothing about the
        // producer; a timeout or a fatal error does.
        let stuck = match &result {
            Err(AppendError::Timeout { .. }) => true,
            Err(AppendError::Refused { .. }) => producer.client().fatal_error().is_some(),
            Ok(_) => false,
        };
        drop(producer);
        if let (true, Err(e)) = (stuck, &result) {
            self.replace(generation, e);
        }
        result
    }

    /// Waits until every queued record has been acknowledged or failed.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.current().1.flush(timeout)
    }

    /// Asks the cluster for its metadata; answers the number of brokers, or why not.
    pub async fn check_broker(&self, timeout: Duration) -> Result<usize, KafkaError> {
        let (_, producer) = self.current();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .map(|m| m.brokers().len())
        })
        .await
        .unwrap_or(Err(KafkaError::Canceled))
    }
}

/// Creates the given catalogue topics if they do not exist yet. Returns the names created.
pub async fn ensure_topics(kafka: &KafkaConfig, logical: &[String]) -> anyhow::Result<Vec<String>> {
    let admin: AdminClient<DefaultClientContext> = client_config(kafka).create()?;
    let names: Vec<String> = logical.iter().map(|t| kafka.topic(t)).collect();
    let new: Vec<NewTopic> = names
        .iter()
        .map(|n| {
            NewTopic::new(
                n,
                kafka.partitions,
                TopicReplication::Fixed(kafka.replication_factor),
            )
        })
        .collect();
    let results = admin
        .create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
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
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .with_topic(topic)?;
    let mut out = BTreeMap::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        if let Some(e) = t.error() {
            anyhow::bail!("topic {topic}: {e:?}");
        }
        for p in t.partitions() {
            let marks = consumer
                .fetch_watermarks(topic, p.id(), timeout)
                .with_topic(topic)?;
            out.insert(p.id(), marks);
        }
    }
    if out.is_empty() {
        anyhow::bail!("topic {topic} does not exist (run `hudstream topics`)");
    }
    Ok(out)
}

/// A consumer outside any group, assigned to every partition of `logical` from the beginning:
/// for tools and tests that read a whole topic (no group join, so no join delay).
pub fn whole_topic_reader(
    kafka: &KafkaConfig,
    logical: &str,
) -> anyhow::Result<rdkafka::consumer::BaseConsumer> {
    let consumer: rdkafka::consumer::BaseConsumer = client_config(kafka)
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
            positions: BTreeMap::new(),
        })
    }

    /// Per partition: the first offset still in the log and the offset the next append gets,
    /// as the broker reports them.
    pub fn watermarks(&self) -> anyhow::Result<BTreeMap<i32, (i64, i64)>> {
        partition_watermarks(&self.consumer, &self.topic)
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
        ends.iter()
            .all(|(p, end)| self.positions.get(p).copied().unwrap_or(0) >= *end)
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
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        let mut deadline: Option<tokio::time::Instant> = None;
        while batch.len() < limits.max_records && bytes < limits.max_bytes {
            let wait = match deadline {
                Some(d) => d.saturating_duration_since(tokio::time::Instant::now()),
                None if self.reached(ends) => quiet,
                None => Duration::from_secs(30),
            };
            let message = match tokio::time::timeout(wait, self.consumer.recv()).await {
                Ok(Ok(m)) => m,
                Ok(Err(e)) => return Err(anyhow::anyhow!("reading {}: {e}", self.topic)),
                Err(_) if deadline.is_some() || self.reached(ends) => break,
                Err(_) => anyhow::bail!(
                    "no record arrived from {} for 30 s although the log has more (read up to {:?}, ends {:?})",
                    self.topic,
                    self.positions,
                    ends
                ),
            };
            deadline.get_or_insert_with(|| tokio::time::Instant::now() + limits.linger);
            let (partition, offset) = (message.partition(), message.offset());
            if offset < self.positions.get(&partition).copied().unwrap_or(0) {
                continue;
            }
            self.positions.insert(partition, offset + 1);
            let end = ends.entry(partition).or_insert(0);
            *end = (*end).max(offset + 1);
            bytes += message.payload_len();
            batch.push(to_in_record(&self.prefix, &message));
        }
        Ok(batch)
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

trait WithTopic<T> {
    fn with_topic(self, topic: &str) -> anyhow::Result<T>;
}

impl<T> WithTopic<T> for Result<T, KafkaError> {
    fn with_topic(self, topic: &str) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::anyhow!("topic {topic}: {e}"))
    }
}

/// Logs rebalances and commit failures; counts them.
struct StageContext {
    stage: &'static str,
}

impl ClientContext for StageContext {
    /// librdkafka's statistics (every `statistics.interval.ms`): per partition, how far behind
    /// the log this stage is, and where it has committed. On tansu the high watermark is wrong,
    /// so its lag figures are too; on Kafka they are librdkafka's own.
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, t) in &statistics.topics {
            for (id, p) in &t.partitions {
                // -1 is librdkafka's internal "unassigned" partition.
                if *id < 0 || !p.desired {
                    continue;
                }
                let labels = [
                    ("stage", self.stage.to_string()),
                    ("topic", topic.clone()),
                    ("partition", id.to_string()),
                ];
                metrics::gauge!("hudstream_consumer_lag", &labels)
                    .set(p.consumer_lag.max(0) as f64);
                metrics::gauge!("hudstream_consumer_committed_offset", &labels)
                    .set(p.committed_offset as f64);
                metrics::gauge!("hudstream_consumer_position", &labels).set(p.app_offset as f64);
            }
        }
    }
}

impl ConsumerContext for StageContext {
    fn post_rebalance(
        &self,
        _base: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!(
                    stage = self.stage,
                    partitions = tpl.count(),
                    "partitions assigned"
                )
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(
                    stage = self.stage,
                    partitions = tpl.count(),
                    "partitions revoked"
                )
            }
            Rebalance::Error(e) => {
                tracing::warn!(stage = self.stage, error = %e, "rebalance error")
            }
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _offsets: &TopicPartitionList,
    ) {
        if let Err(e) = result {
            // The records will be redelivered and rewritten idempotently; worth a look, not fatal.
            metrics::counter!("hudstream_commit_failures_total", "stage" => self.stage)
                .increment(1);
            tracing::warn!(stage = self.stage, error = %e, "offset commit failed");
        }
    }
}

fn consumer(
    kafka: &KafkaConfig,
    stage: &'static str,
    topic: &str,
) -> Result<StreamConsumer<StageContext>, KafkaError> {
    let consumer: StreamConsumer<StageContext> = client_config(kafka)
        .set("group.id", kafka.group(stage))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", kafka.session_timeout_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            kafka.heartbeat_interval_ms.to_string(),
        )
        .set(
            "statistics.interval.ms",
            kafka.statistics_interval_ms.to_string(),
        )
        .create_with_context(StageContext { stage })?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

/// A consumed message as an [`InRecord`], with the topic prefix stripped.
pub fn to_in_record(prefix: &str, message: &rdkafka::message::BorrowedMessage<'_>) -> InRecord {
    let topic = message.topic();
    let headers = message
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        h.value.map(|v| v.to_vec()).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    InRecord {
        topic: topic.strip_prefix(prefix).unwrap_or(topic).to_string(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(|k| k.to_vec()),
        payload: message.payload().map(|p| p.to_vec()),
        headers,
        timestamp_ms: message.timestamp().to_millis(),
    }
}

/// The dead letter for `record`: its key and value unchanged, its headers plus the reason.
pub fn dead_letter(stage: &str, record: &InRecord, reason: &str) -> OutRecord {
    let mut headers = record.headers.clone();
    headers.push((h::DLQ_REASON.into(), reason.as_bytes().to_vec()));
    headers.push((h::DLQ_STAGE.into(), stage.as_bytes().to_vec()));
    headers.push((h::SOURCE.into(), record.source().into_bytes()));
    OutRecord {
        topic: DEAD_LETTERS.into(),
        key: record.key.clone().unwrap_or_default(),
        payload: record.payload.clone().unwrap_or_default(),
        headers,
    }
}

/// Runs a stage until `shutdown` is cancelled: read a batch, handle it, publish, commit.
///
/// Between batches the loop holds nothing: a batch is handled, its outputs acknowledged and its
/// offsets committed before the next poll, so a partition revoked at a poll has nothing
/// pending — "flush before revoke" holds by construction. The one exception is the linger
/// window while a batch fills: records of a partition revoked then are still handled, and the
/// group refuses their commit (a stale generation), so the new owner reprocesses them —
/// idempotently, as every sink is.
pub async fn run_stage<H: BatchHandler>(
    kafka: &KafkaConfig,
    limits: BatchLimits,
    mut handler: H,
    appender: Appender,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let stage = handler.stage();
    let input = handler.input_topic();
    let input_topic = kafka.topic(input);
    let consumer = Arc::new(consumer(kafka, stage, &input_topic)?);
    tracing::info!(stage, topic = %input_topic, group = %kafka.group(stage), "stage started");
    let linger = limits.linger;
    let max_backoff = limits.max_backoff;
    let mut last_committed: Option<TopicPartitionList> = None;

    'batches: loop {
        // 1. Collect a batch: wait for the first record, then linger for more.
        let first = tokio::select! {
            _ = shutdown.cancelled() => break 'batches,
            m = consumer.recv() => m,
        };
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        match first {
            Ok(m) => {
                bytes += m.payload_len();
                batch.push(to_in_record(&kafka.topic_prefix, &m))
            }
            Err(e) => {
                tracing::warn!(stage, error = %e, "consumer error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < limits.max_records && bytes < limits.max_bytes {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(m)) => {
                    bytes += m.payload_len();
                    batch.push(to_in_record(&kafka.topic_prefix, &m))
                }
                Ok(Err(e)) => {
                    tracing::warn!(stage, error = %e, "consumer error");
                    break;
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        metrics::counter!("hudstream_records_consumed_total", "stage" => stage)
            .increment(batch.len() as u64);
        metrics::histogram!("hudstream_batch_records", "stage" => stage).record(batch.len() as f64);
        metrics::histogram!("hudstream_batch_bytes", "stage" => stage).record(bytes as f64);

        // 2. Handle it; on failure retry the same batch, never skip it.
        let mut backoff = Duration::from_millis(100);
        let actions = loop {
            match handler.handle(&batch).await {
                Ok(actions) => break actions,
                Err(e) => {
                    metrics::counter!("hudstream_batch_retries_total", "stage" => stage)
                        .increment(1);
                    tracing::warn!(
                        stage,
                        records = batch.len(),
                        error = format!("{e:#}"),
                        retry_in_ms = backoff.as_millis() as u64,
                        "batch failed; retrying it"
                    );
                    tokio::select! {
                        // Shutting down mid-retry: the batch stays uncommitted and is redelivered.
                        _ = shutdown.cancelled() => break 'batches,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(max_backoff);
                }
            }
        };

        // 3. Publish outputs and dead letters; wait for every acknowledgement.
        let outputs: Vec<OutRecord> = actions
            .into_iter()
            .filter_map(|(index, action)| match action {
                Action::Publish(out) => Some(out),
                Action::DeadLetter { reason } => {
                    let record = batch.get(index)?;
                    metrics::counter!("hudstream_dead_letters_total", "stage" => stage)
                        .increment(1);
                    tracing::warn!(stage, source = %record.source(), %reason, "dead-lettered");
                    Some(dead_letter(stage, record, &reason))
                }
            })
            .collect();
        let mut pending = outputs;
        let mut backoff = Duration::from_millis(100);
        while !pending.is_empty() {
            let results =
                futures::future::join_all(pending.iter().map(|o| appender.append(o))).await;
            let mut failed = Vec::new();
            for (out, result) in pending.into_iter().zip(results) {
                match result {
                    Ok(_) => {
                        metrics::counter!("hudstream_records_published_total", "stage" => stage, "topic" => out.topic.clone()).increment(1)
                    }
                    Err(e) => {
                        tracing::warn!(stage, error = %e, "publish failed; retrying");
                        failed.push(out);
                    }
                }
            }
            pending = failed;
            if !pending.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => break 'batches,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(max_backoff);
            }
        }

        // 4. Only now commit: the next offset of every partition in the batch.
        // A stage reads one topic, so a batch's offsets are per partition.
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for r in &batch {
            let e = next.entry(r.partition).or_insert(r.offset + 1);
            *e = (*e).max(r.offset + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in next {
            tpl.add_partition_offset(&input_topic, partition, Offset::Offset(offset))?;
            // Our own view of progress, exact even where a broker's statistics are not: the
            // next offset this stage will read, as committed after the batch's writes.
            metrics::gauge!("hudstream_stage_committed_offset", "stage" => stage, "topic" => input, "partition" => partition.to_string())
                .set(offset as f64);
        }
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            tracing::warn!(stage, error = %e, "offset commit failed; the batch will be redelivered");
        }
        last_committed = Some(tpl);
        metrics::histogram!("hudstream_batch_seconds", "stage" => stage)
            .record(started.elapsed().as_secs_f64());
    }

    // Make the last commit durable before leaving the group.
    if let Some(tpl) = last_committed {
        let consumer = consumer.clone();
        let _ = tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync)).await;
    }
    // Closing a consumer can hang when a group rebalance is in flight: the close serves an
    // "assign" event whose `rd_kafka_assign` waits on a group coordinator that is itself
    // shutting down. Close on a thread of its own, so shutdown never waits on (or blocks an
    // async worker with) a close; everything that matters is committed above, and a stuck
    // close ends with the process.
    let closer = std::thread::Builder::new()
        .name(format!("close-{stage}"))
        .spawn(move || drop(consumer));
    if let Err(e) = closer {
        tracing::warn!(stage, error = %e, "cannot start the consumer-closing thread");
    }
    tracing::info!(stage, "stage stopped");
    Ok(())
}
