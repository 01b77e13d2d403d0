//! The one way hudstream writes to Kafka: an idempotent producer with `acks=all` and a bounded
//! wait. An append returns only once every in-sync replica has the record, or fails.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::config::KafkaConfig;
use crate::kafka::client::{client_config, MAX_RECORD_BYTES};
use crate::worker::OutRecord;

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
        Self::with_settings(kafka, &[])
    }

    /// An appender for filling topics in bulk (benchmarks, load generators): the same
    /// guarantees, with a million records allowed in flight and large producer batches.
    pub fn bulk(kafka: &KafkaConfig) -> Result<Self, KafkaError> {
        // A million records queue for longer than a webhook may wait for its answer.
        let kafka = KafkaConfig {
            append_timeout_ms: kafka.append_timeout_ms.max(120_000),
            ..kafka.clone()
        };
        Self::with_settings(
            &kafka,
            &[
                ("linger.ms", "20"),
                ("batch.size", "1000000"),
                ("queue.buffering.max.messages", "1000000"),
                ("queue.buffering.max.kbytes", "2097152"),
            ],
        )
    }

    /// The appender with some producer settings changed (delivery guarantees excepted).
    fn with_settings(kafka: &KafkaConfig, settings: &[(&str, &str)]) -> Result<Self, KafkaError> {
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
        for (key, value) in settings {
            config.set(*key, *value);
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
