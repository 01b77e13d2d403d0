//! The consumer loop every stage runs: read a batch, let the stage turn it into actions, publish
//! them and wait for every acknowledgement, then commit the batch's offsets.
//!
//! A failure anywhere before the commit retries the same batch with back-off; the loop never
//! moves past a batch it could not finish. Records a stage cannot read go to the dead-letter
//! topic with the reason, and the stream goes on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use hudstream_schemas::headers as h;
use hudstream_schemas::topics::DEAD_LETTERS;

use crate::config::{BatchLimits, KafkaConfig};
use crate::kafka::append::Appender;
use crate::kafka::batch::{collect, FirstRecord};
use crate::kafka::client::client_config;
use crate::retry::Backoff;
use crate::worker::{Action, BatchHandler, InRecord, OutRecord, Outbox, Outgoing};

/// The first wait after a failure; waits double up to `BatchLimits::max_backoff`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Logs rebalances and commit failures; counts them; reports lag from librdkafka's statistics.
struct StageContext {
    stage: &'static str,
    group: String,
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
                crate::kafka::watch::assigned(&self.group, tpl.count());
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

/// The stage's consumer: its own group, manual commits, subscribed to `topic` (a full name).
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
        .create_with_context(StageContext {
            stage,
            group: kafka.group(stage),
        })?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
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

/// The records a batch's actions append: derived records, and dead letters of its inputs.
fn outputs(
    stage: &'static str,
    batch: &[InRecord],
    actions: Vec<(usize, Action)>,
) -> Vec<OutRecord> {
    actions
        .into_iter()
        .filter_map(|(index, action)| match action {
            Action::Publish(out) => Some(out),
            Action::DeadLetter { reason } => {
                let record = batch.get(index)?;
                metrics::counter!("hudstream_dead_letters_total", "stage" => stage).increment(1);
                tracing::warn!(stage, source = %record.source(), %reason, "dead-lettered");
                Some(dead_letter(stage, record, &reason))
            }
        })
        .collect()
}

/// Appends every output and waits for every acknowledgement, retrying the ones that fail.
/// Answers `false` if shutdown came first (the batch is then not committed).
async fn publish_all(
    stage: &'static str,
    appender: &Appender,
    mut pending: Vec<OutRecord>,
    mut backoff: Backoff,
    shutdown: &CancellationToken,
) -> bool {
    while !pending.is_empty() {
        let results = futures::future::join_all(pending.iter().map(|o| appender.append(o))).await;
        let mut failed = Vec::new();
        for (out, result) in pending.into_iter().zip(results) {
            match result {
                Ok(_) => metrics::counter!("hudstream_records_published_total", "stage" => stage, "topic" => out.topic.clone()).increment(1),
                Err(e) => {
                    tracing::warn!(stage, error = %e, "publish failed; retrying");
                    failed.push(out);
                }
            }
        }
        pending = failed;
        if !pending.is_empty() && !backoff.wait(shutdown).await {
            return false;
        }
    }
    true
}

/// Records a stage may have queued in its [`Outbox`] before publishing waits.
const OUTBOX_QUEUE: usize = 4;
/// Appends of outbox records awaiting acknowledgement at once. Outbox records are large (a
/// page of a report's cases, up to ~1 MiB): this and the queue bound a stage's memory.
const OUTBOX_IN_FLIGHT: usize = 16;

/// Appends what a stage queues in its outbox as it comes, up to [`OUTBOX_IN_FLIGHT`] awaiting
/// acknowledgement (the queue stays full beyond, so the stage waits), each retried with
/// back-off until acknowledged. Answers once the outbox is closed and everything queued was
/// acknowledged — `true` — or when shutdown came first — `false`.
async fn drain_outbox(
    stage: &'static str,
    appender: &Appender,
    mut queued: tokio::sync::mpsc::Receiver<Outgoing>,
    max_backoff: Duration,
    shutdown: &CancellationToken,
) -> bool {
    use futures::stream::{FuturesUnordered, StreamExt};
    let append_until_acknowledged = |outgoing: Outgoing| async move {
        let Outgoing {
            record: out,
            acknowledged,
        } = outgoing;
        let mut backoff = Backoff::new(FIRST_BACKOFF, max_backoff);
        loop {
            match appender.append(&out).await {
                Ok(_) => {
                    metrics::counter!("hudstream_records_published_total", "stage" => stage, "topic" => out.topic.clone()).increment(1);
                    if let Some(waiting) = acknowledged {
                        // The stage may have stopped waiting; that is its business.
                        let _ = waiting.send(());
                    }
                    return true;
                }
                Err(e) => {
                    tracing::warn!(stage, error = %e, "publish failed; retrying");
                    if !backoff.wait(shutdown).await {
                        return false;
                    }
                }
            }
        }
    };
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            Some(acknowledged) = in_flight.next(), if !in_flight.is_empty() => {
                let acknowledged: bool = acknowledged;
                if !acknowledged {
                    return false;
                }
            }
            next = queued.recv(), if open && in_flight.len() < OUTBOX_IN_FLIGHT => match next {
                Some(out) => in_flight.push(append_until_acknowledged(out)),
                None => open = false,
            },
            else => return true,
        }
    }
}

/// The next offset of every partition in the batch: what to commit once it is done. A stage
/// reads one topic, so a batch's offsets are per partition.
fn next_offsets(batch: &[InRecord]) -> BTreeMap<i32, i64> {
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for r in batch {
        let e = next.entry(r.partition).or_insert(r.offset + 1);
        *e = (*e).max(r.offset + 1);
    }
    next
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
    let mut last_committed: Option<TopicPartitionList> = None;
    let group = kafka.group(stage);
    // A batch may linger before its commit: a stage is stalled only well past that.
    let stall_after = limits
        .stall_after
        .max(limits.linger * 2 + Duration::from_secs(15));
    tokio::spawn(crate::kafka::watch::watch(
        kafka.clone(),
        stage,
        input.to_string(),
        Arc::downgrade(&consumer),
        limits.watch_interval,
        stall_after,
        shutdown.clone(),
    ));

    'batches: loop {
        // 1. Collect a batch: wait for the first record, then linger for more.
        let first = FirstRecord::UntilCancelled(&shutdown);
        let collected = collect(&*consumer, &kafka.topic_prefix, limits, first, |_| true).await;
        if collected.cancelled {
            break 'batches;
        }
        if let Some(e) = &collected.error {
            tracing::warn!(stage, error = %e, "consumer error");
        }
        let batch = collected.records;
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let started = Instant::now();
        metrics::counter!("hudstream_records_consumed_total", "stage" => stage)
            .increment(batch.len() as u64);
        metrics::histogram!("hudstream_batch_records", "stage" => stage).record(batch.len() as f64);
        metrics::histogram!("hudstream_batch_bytes", "stage" => stage)
            .record(collected.bytes as f64);

        // 2. Handle it — appending what it publishes as it goes — and wait for every
        // acknowledgement of that; on failure retry the same batch, never skip it.
        let mut backoff = Backoff::new(FIRST_BACKOFF, limits.max_backoff);
        let actions = loop {
            let (queue, queued) = tokio::sync::mpsc::channel(OUTBOX_QUEUE);
            let outbox = Outbox::new(queue);
            let handler = &mut handler;
            let batch = &batch;
            let handling = async move {
                let result = handler.handle_streaming(batch, &outbox).await;
                // Closing the outbox tells the drain that nothing more is coming.
                drop(outbox);
                result
            };
            let draining = drain_outbox(stage, &appender, queued, limits.max_backoff, &shutdown);
            let (result, drained) = tokio::join!(handling, draining);
            if !drained {
                // Shutting down with queued records unacknowledged: no commit.
                break 'batches;
            }
            match result {
                Ok(actions) => break actions,
                Err(e) => {
                    metrics::counter!("hudstream_batch_retries_total", "stage" => stage)
                        .increment(1);
                    tracing::warn!(
                        stage,
                        records = batch.len(),
                        error = format!("{e:#}"),
                        retry_in_ms = backoff.upcoming().as_millis() as u64,
                        "batch failed; retrying it"
                    );
                    // Shutting down mid-retry: the batch stays uncommitted and is redelivered.
                    if !backoff.wait(&shutdown).await {
                        break 'batches;
                    }
                }
            }
        };

        // 3. Publish outputs and dead letters; wait for every acknowledgement.
        let pending = outputs(stage, &batch, actions);
        let backoff = Backoff::new(FIRST_BACKOFF, limits.max_backoff);
        if !publish_all(stage, &appender, pending, backoff, &shutdown).await {
            break 'batches;
        }

        // 4. Only now commit: the next offset of every partition in the batch.
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in next_offsets(&batch) {
            tpl.add_partition_offset(&input_topic, partition, Offset::Offset(offset))?;
            // Our own view of progress, exact even where a broker's statistics are not: the
            // next offset this stage will read, as committed after the batch's writes.
            metrics::gauge!("hudstream_stage_committed_offset", "stage" => stage, "topic" => input, "partition" => partition.to_string())
                .set(offset as f64);
        }
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            tracing::warn!(stage, error = %e, "offset commit failed; the batch will be redelivered");
        } else {
            crate::kafka::watch::committed(&group);
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
