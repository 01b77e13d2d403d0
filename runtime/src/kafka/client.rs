//! The base of every Kafka client hudstream creates, and consumed messages as [`InRecord`]s.

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};

use crate::config::KafkaConfig;
use crate::worker::InRecord;

/// A client configuration with the brokers and every `kafka.client` setting (TLS, SASL, …):
/// the base of every client hudstream creates, so none misses the operator's settings.
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers);
    // librdkafka learns of a topic created after a consumer subscribed, or of partitions added
    // to it, only when it refreshes its metadata — every 5 minutes by default, which left
    // stages that started before their topics idle with records waiting. Every 10 s, a stage
    // starts consuming a new topic or partition within seconds (`kafka.client` may override).
    config.set(
        "topic.metadata.refresh.interval.ms",
        METADATA_REFRESH_MS.to_string(),
    );
    // After a broker restart librdkafka tries its connection again with a backoff that doubles
    // up to `reconnect.backoff.max.ms`, 10 s by default: a gateway could answer 503 for 10 s
    // after its broker was back (its appends wait `kafka.append_timeout_ms`, 5 s). Capped at
    // 1 s, every client is back within a second of its broker, for one connection attempt a
    // second per broker while it is down.
    config.set(
        "reconnect.backoff.max.ms",
        RECONNECT_BACKOFF_MAX_MS.to_string(),
    );
    for (k, v) in &kafka.client {
        config.set(k, v);
    }
    config
}

/// How often every client refreshes topic metadata (see [`client_config`]).
pub const METADATA_REFRESH_MS: u64 = 10_000;

/// The longest a client waits before connecting to a broker again (see [`client_config`]).
pub const RECONNECT_BACKOFF_MAX_MS: u64 = 1_000;

/// The largest record the producer sends unless `kafka.client` says otherwise: GitHub's 25 MiB
/// delivery cap plus room for key and headers.
pub const MAX_RECORD_BYTES: usize = 26 * 1024 * 1024;

/// A consumed message as an [`InRecord`], with the topic prefix stripped.
pub fn to_in_record<M: Message>(prefix: &str, message: &M) -> InRecord {
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

/// Kafka errors with the topic they concern, for messages an operator can act on.
pub(crate) trait WithTopic<T> {
    fn with_topic(self, topic: &str) -> anyhow::Result<T>;
}

impl<T> WithTopic<T> for Result<T, KafkaError> {
    fn with_topic(self, topic: &str) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::anyhow!("topic {topic}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_refreshes_metadata_and_reconnects_often_unless_the_operator_says_otherwise() {
        let mut kafka = KafkaConfig::default();
        let config = client_config(&kafka);
        assert_eq!(config.get("reconnect.backoff.max.ms"), Some("1000"));
        assert_eq!(
            config.get("topic.metadata.refresh.interval.ms"),
            Some("10000")
        );
        assert_eq!(
            config.get("bootstrap.servers"),
            Some(kafka.brokers.as_str())
        );
        kafka
            .client
            .insert("reconnect.backoff.max.ms".into(), "5000".into());
        kafka
            .client
            .insert("security.protocol".into(), "ssl".into());
        let config = client_config(&kafka);
        assert_eq!(config.get("reconnect.backoff.max.ms"), Some("5000"));
        assert_eq!(config.get("security.protocol"), Some("ssl"));
    }
}
