//! The one batch collector: records from a consumer up to `max_records`, `max_bytes` or the
//! linger time after the first, whichever comes first. The stage loop and the replay reader
//! both gather their batches here, so both close a batch by the same rule.

use std::time::Duration;

use futures::{FutureExt, StreamExt};
use rdkafka::consumer::{ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::BatchLimits;
use crate::kafka::client::to_in_record;
use crate::worker::InRecord;

/// The most records a batch reserves room for up front (~140 MiB of `InRecord`s): above
/// it, the batch grows as it fills.
const RESERVED_RECORDS_MAX: usize = 1 << 20;

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
    // Room for a full batch at once, reserved with the first record (an idle stage waiting
    // for one holds none): grown by doubling, a replay's 200,000-record batch was copied ~18
    // times, each time into freshly mapped memory the kernel had to zero first (a profile of
    // `hud bench`'s replay: ~20 % of its CPU in page faults and memmove). Space never written
    // is never touched, so a small batch costs only its address range. Capped, so that a
    // configured limit far beyond any real batch reserves no absurd range.
    let mut out = Collected::default();
    let mut deadline: Option<Instant> = None;
    // One stream for the whole batch: `recv` makes a stream (and registers a waker) per
    // message, which a replay reading a million records pays a million times.
    let mut messages = consumer.stream();
    while out.records.len() < limits.max_records && out.bytes < limits.max_bytes {
        // A record already fetched is taken without arming a timer: reading a backlog, nearly
        // every one is.
        let at_hand = match deadline {
            Some(_) => messages.next().now_or_never(),
            None => None,
        };
        let message = match (at_hand, deadline, first) {
            (Some(m), _, _) => m,
            (None, Some(deadline), _) => {
                match tokio::time::timeout_at(deadline, messages.next()).await {
                    Ok(m) => m,
                    Err(_) => break,
                }
            }
            (None, None, FirstRecord::Within(wait)) => {
                match tokio::time::timeout(wait, messages.next()).await {
                    Ok(m) => m,
                    Err(_) => break,
                }
            }
            (None, None, FirstRecord::UntilCancelled(token)) => tokio::select! {
                _ = token.cancelled() => {
                    out.cancelled = true;
                    break;
                }
                m = messages.next() => m,
            },
        };
        let message = match message {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                out.error = Some(e);
                break;
            }
            // A consumer's stream does not end; should it, the batch does.
            None => break,
        };
        let record = to_in_record(prefix, &message);
        if !keep(&record) {
            continue;
        }
        out.bytes += record.payload.as_ref().map_or(0, Vec::len);
        if out.records.is_empty() {
            out.records
                .reserve(limits.max_records.min(RESERVED_RECORDS_MAX));
        }
        out.records.push(record);
        deadline.get_or_insert_with(|| Instant::now() + limits.linger);
    }
    out
}
