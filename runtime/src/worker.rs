//! What a stage returns, and the two shapes of stage.
//!
//! A stage never talks to Kafka. It receives records and returns [`Action`]s — publish this,
//! dead-letter that — and the consumer loop in [`crate::kafka`] carries them out: it publishes
//! every output, waits for the broker's acknowledgements, and only then commits the input
//! offsets. A stage that cannot finish a batch (ClickHouse down) returns an error and the loop
//! retries the same batch; it never skips past it.

use std::future::Future;

use hudstream_schemas::headers as h;
use hudstream_schemas::wire::{EncodeError, Outputs, RecordSink, RecordType};

/// A record read from a topic. `topic` is the catalogue (logical) name, without any prefix.
#[derive(Debug, Clone)]
pub struct InRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp_ms: Option<i64>,
}

impl InRecord {
    /// The first header with this name, if any.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The first header with this name as text, if present and UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The record's value, or the dead-letter reason when it has none.
    pub fn value(&self) -> Result<&[u8], String> {
        self.payload
            .as_deref()
            .ok_or_else(|| "record has no value (a tombstone?)".to_string())
    }

    /// The record's Avro value decoded as a `T` (of any published version of its schema), or
    /// the dead-letter reason.
    pub fn decode<T: RecordType>(&self) -> Result<T, String> {
        let codec = T::codec().map_err(|e| e.to_string())?;
        codec.decode(self.value()?).map_err(|e| e.to_string())
    }

    /// `topic/partition/offset`: where this record is, for provenance headers and logs.
    pub fn source(&self) -> String {
        format!("{}/{}/{}", self.topic, self.partition, self.offset)
    }
}

/// A record to append. `topic` is the catalogue (logical) name; the prefix is added on send.
#[derive(Debug, Clone, PartialEq)]
pub struct OutRecord {
    pub topic: String,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl OutRecord {
    /// `value` encoded with its type's codec, on its type's topic under its key, with the
    /// schema header every derived record carries.
    pub fn encoded<T: RecordType>(value: &T) -> Result<OutRecord, EncodeError> {
        let codec = T::codec().map_err(|e| EncodeError::Schema {
            name: T::NAME,
            reason: e.to_string(),
        })?;
        Ok(OutRecord {
            topic: T::TOPIC.to_string(),
            key: value.key().into_bytes(),
            payload: codec.encode(value)?,
            headers: vec![(h::SCHEMA.to_string(), codec.schema_header().into_bytes())],
        })
    }
}

/// What to do about one input record.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Append this derived record.
    Publish(OutRecord),
    /// Set the input record aside on the dead-letter topic, unchanged, with this reason.
    DeadLetter { reason: String },
}

impl OutRecord {
    /// `record`, derived from `input`: on its type's topic, under its key, naming its schema,
    /// its source record and the GitHub delivery it came from.
    pub fn derived<T: RecordType>(record: &T, input: &InRecord) -> Result<OutRecord, EncodeError> {
        let mut out = OutRecord::encoded(record)?;
        out.headers
            .push((h::SOURCE.to_string(), input.source().into_bytes()));
        if let Some(delivery) = input.header(h::GITHUB_DELIVERY) {
            out.headers
                .push((h::GITHUB_DELIVERY.to_string(), delivery.to_vec()));
        }
        Ok(out)
    }
}

impl Action {
    /// Publish `record`, derived from `input` ([`OutRecord::derived`]). A record that cannot be
    /// encoded dead-letters the input instead.
    pub fn publish<T: RecordType>(record: &T, input: &InRecord) -> Action {
        match OutRecord::derived(record, input) {
            Ok(out) => Action::Publish(out),
            Err(e) => Action::DeadLetter {
                reason: e.to_string(),
            },
        }
    }
}

/// Where a stage publishes outputs too many to return at once — a test report's pages of
/// cases, millions for one report. Publishing waits while the runtime's bounded queue is full,
/// so memory stays bounded whatever the input; the runtime appends what is queued as it comes
/// and commits the batch only after the handler returned and every queued record was
/// acknowledged (the same rule as for returned actions). If the handler fails, what it
/// published stays published, and the retried batch publishes it again: outputs must be
/// versioned by content, as every derived record is.
pub struct Outbox {
    queue: tokio::sync::mpsc::Sender<Outgoing>,
}

/// A record queued in an [`Outbox`], and who waits for its acknowledgement, if anyone.
pub struct Outgoing {
    pub record: OutRecord,
    pub acknowledged: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The runtime stopped taking records (it is shutting down); the batch will not be committed.
#[derive(Debug, thiserror::Error)]
#[error("the outbox is closed: the stage is shutting down")]
pub struct OutboxClosed;

impl Outbox {
    /// An outbox feeding `queue` (the runtime's end of it).
    pub fn new(queue: tokio::sync::mpsc::Sender<Outgoing>) -> Outbox {
        Outbox { queue }
    }

    /// Queues `record`, derived from `input`, waiting while the queue is full.
    pub async fn publish<T: RecordType>(
        &self,
        record: &T,
        input: &InRecord,
    ) -> Result<(), OutboxError> {
        self.append(OutRecord::derived(record, input)?).await?;
        Ok(())
    }

    /// Queues a record made by hand (a raw topic's), waiting while the queue is full.
    pub async fn append(&self, record: OutRecord) -> Result<(), OutboxClosed> {
        let outgoing = Outgoing {
            record,
            acknowledged: None,
        };
        self.queue.send(outgoing).await.map_err(|_| OutboxClosed)
    }

    /// Queues `record` and waits until the broker acknowledged it — for a stage that must know
    /// its outputs are in the log before it does something else (marks work done, say).
    pub async fn append_acknowledged(&self, record: OutRecord) -> Result<(), OutboxClosed> {
        let (acknowledged, ack) = tokio::sync::oneshot::channel();
        let outgoing = Outgoing {
            record,
            acknowledged: Some(acknowledged),
        };
        self.queue.send(outgoing).await.map_err(|_| OutboxClosed)?;
        ack.await.map_err(|_| OutboxClosed)
    }
}

/// Why [`Outbox::publish`] did not queue a record.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Closed(#[from] OutboxClosed),
}

/// Publishes every record a processor derived from `input`.
struct Publisher<'a> {
    input: &'a InRecord,
    actions: Vec<Action>,
}

impl RecordSink for Publisher<'_> {
    fn record<T: RecordType>(&mut self, record: &T) {
        self.actions.push(Action::publish(record, self.input));
    }
}

/// Derives from one record's value and publishes what comes out. A record without a value, or
/// one `derive` refuses, becomes a dead letter carrying the reason; every processor shares this
/// rule.
pub fn derive_and_publish<O: Outputs, E: std::fmt::Display>(
    input: &InRecord,
    derive: impl FnOnce(&[u8]) -> Result<O, E>,
) -> Vec<Action> {
    let payload = match input.value() {
        Ok(payload) => payload,
        Err(reason) => return vec![Action::DeadLetter { reason }],
    };
    match derive(payload) {
        Ok(outputs) => {
            let mut publisher = Publisher {
                input,
                actions: Vec::new(),
            };
            outputs.each(&mut publisher);
            publisher.actions
        }
        Err(e) => vec![Action::DeadLetter {
            reason: e.to_string(),
        }],
    }
}

/// A stateless derivation: a pure function from one input record to actions.
pub trait Processor: Send + Sync + 'static {
    /// The stage name, used for the consumer group, metrics and dead-letter headers.
    fn stage(&self) -> &'static str;
    /// The catalogue topic it reads.
    fn input_topic(&self) -> &'static str;
    fn process(&self, record: &InRecord) -> Vec<Action>;
}

/// A stage that handles a whole batch at once (a ClickHouse writer). It returns the actions
/// for the records it could not handle, by index into the batch; an `Err` means "nothing was
/// written, retry this batch".
pub trait BatchHandler: Send + 'static {
    fn stage(&self) -> &'static str;
    fn input_topic(&self) -> &'static str;
    fn handle(
        &mut self,
        batch: &[InRecord],
    ) -> impl Future<Output = anyhow::Result<Vec<(usize, Action)>>> + Send;

    /// [`handle`](Self::handle) for a stage that also publishes as it goes, through `outbox`
    /// (see [`Outbox`]). The runtime calls this one; most stages only return actions.
    fn handle_streaming(
        &mut self,
        batch: &[InRecord],
        outbox: &Outbox,
    ) -> impl Future<Output = anyhow::Result<Vec<(usize, Action)>>> + Send {
        let _ = outbox;
        self.handle(batch)
    }
}

/// Runs a [`Processor`] as a [`BatchHandler`].
pub struct PerRecord<P>(pub P);

impl<P: Processor> BatchHandler for PerRecord<P> {
    fn stage(&self) -> &'static str {
        self.0.stage()
    }

    fn input_topic(&self) -> &'static str {
        self.0.input_topic()
    }

    async fn handle(&mut self, batch: &[InRecord]) -> anyhow::Result<Vec<(usize, Action)>> {
        Ok(batch
            .iter()
            .enumerate()
            .flat_map(|(i, record)| self.0.process(record).into_iter().map(move |a| (i, a)))
            .collect())
    }
}

/// Any processor, for lists of them.
pub struct DynProcessor(pub Box<dyn Processor>);

impl Processor for DynProcessor {
    fn stage(&self) -> &'static str {
        self.0.stage()
    }

    fn input_topic(&self) -> &'static str {
        self.0.input_topic()
    }

    fn process(&self, record: &InRecord) -> Vec<Action> {
        self.0.process(record)
    }
}
