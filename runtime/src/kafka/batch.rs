//! The one batch collector: records from a consumer up to `max_records`, `max_bytes` or the
//! linger time after the first, whichever comes first. The stage loop and the replay reader
//! both gather their batches here, so both close a batch by the same rule.

use std::time::Duration;

use rdkafka::consumer::{ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::BatchLimits;
use crate::kafka::client::to_in_record;
use crate::worker::InRecord;

/// How long to wait for a batch's first record.
#[derive(Debug, Clone, Copy)]
pub enum FirstRecord<'a> {
    /// Until one comes, or until this token is cancelled.
    UntilCancelled(&'a CancellationToken),
    /// At most this long; an empty batch means nothing came.
    Within(Duration),
}

/// A batch, and the consumer error that ended it early, if one did.
#[derive(Debug, Default)]
pub struct Collected {
    pub records: Vec<InRecord>,
    pub bytes: usize,
    pub error: Option<KafkaError>,
    /// The first wait was cancelled: the caller is shutting down.
    pub cancelled: bool,
}

/// Collects one batch from `consumer`. Records `keep` refuses (a reader skipping what it has
/// seen) neither count nor start the linger. After the first kept record, the batch closes at
/// `limits.linger`, `limits.max_records` or `limits.max_bytes`. A consumer error ends the batch
/// (it is returned with what was read before it).
pub async fn collect<C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    prefix: &str,
    limits: BatchLimits,
    first: FirstRecord<'_>,
    mut keep: impl FnMut(&InRecord) -> bool,
) -> Collected {
    let mut out = Collected::default();
    let mut deadline: Option<Instant> = None;
    while out.records.len() < limits.max_records && out.bytes < limits.max_bytes {
        let message = match (deadline, first) {
            (Some(deadline), _) => match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(m) => m,
                Err(_) => break,
            },
            (None, FirstRecord::Within(wait)) => {
                match tokio::time::timeout(wait, consumer.recv()).await {
                    Ok(m) => m,
                    Err(_) => break,
                }
            }
            (None, FirstRecord::UntilCancelled(token)) => tokio::select! {
                _ = token.cancelled() => {
                    out.cancelled = true;
                    break;
                }
                m = consumer.recv() => m,
            },
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                out.error = Some(e);
                break;
            }
        };
        let record = to_in_record(prefix, &message);
        if !keep(&record) {
            continue;
        }
        out.bytes += record.payload.as_ref().map_or(0, Vec::len);
        out.records.push(record);
        deadline.get_or_insert_with(|| Instant::now() + limits.linger);
    }
    out
}
