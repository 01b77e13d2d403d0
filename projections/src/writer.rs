//! The one ClickHouse writer every table uses: encode a batch, insert it in one statement, and
//! isolate the rows the server refuses.
//!
//! A [`Projection`] only says how a record becomes rows of its table. [`TableWriter`] does the
//! rest, the same way for every table:
//! - the batch becomes one `RowBinary` body and one `INSERT` (ClickHouse writes a part per
//!   insert, so one insert per batch is what keeps "too many parts" away);
//! - a transient failure (server down, timeout, a missing table while a migration is pending)
//!   is returned as an error: the consumer loop retries the whole batch with backoff and
//!   commits nothing, so no batch is ever skipped;
//! - a failure caused by the data itself (a `_check_*` integrity column, a value the column
//!   cannot hold) is narrowed down by halving the batch: the halves that go in are written,
//!   and each row refused on its own is dead-lettered with the server's reason. Re-inserting
//!   rows that already went in is harmless: every table is a `ReplacingMergeTree(version)`.
//!
//! Replay uses the same writer with a different target table (the shadow table).

use std::sync::Arc;
use std::time::Instant;

use hudstream_runtime::clickhouse::{ClickHouse, ClickHouseError};
use hudstream_runtime::worker::{Action, BatchHandler, InRecord};
use hudstream_schemas::wire::{Codec, RecordType};

use crate::row::Row;

/// How the records of one topic become the rows of one table.
pub trait Projection: Send + Sync + 'static {
    type Row: Row;
    /// The table (in the configured database); its DDL is in `schemas/migrations/`.
    const TABLE: &'static str;
    /// The catalogue topic it is fed from.
    const TOPIC: &'static str;
    /// The stage name: consumer group, metrics, dead-letter headers.
    const STAGE: &'static str;
    /// Whether a row the server refuses is dead-lettered. Only the dead-letter table says no:
    /// its records already are dead letters, and they stay in their topic whatever happens.
    const DEAD_LETTER_REFUSED_ROWS: bool = true;
    /// The rows for one record, or why the record cannot be projected (it is dead-lettered).
    fn rows(&self, record: &InRecord) -> Result<Vec<Self::Row>, String>;
}

/// A batch encoded for one insert.
#[derive(Debug, Default)]
pub struct Encoded {
    /// Every row, `RowBinary`, back to back.
    pub body: Vec<u8>,
    /// Per row: where it ends in `body`, and the index of its record in the batch.
    pub rows: Vec<(usize, usize)>,
    /// Records that yielded no rows because they could not be read, with the reason.
    pub unreadable: Vec<(usize, String)>,
}

/// A projection with its row type erased, so writers, replay and the table list need no
/// generics.
pub trait Encoder: Send + Sync + 'static {
    fn table(&self) -> &'static str;
    fn topic(&self) -> &'static str;
    fn stage(&self) -> &'static str;
    fn columns(&self) -> &'static [&'static str];
    fn types(&self) -> Vec<String>;
    fn dead_letters_refused_rows(&self) -> bool;
    fn encode(&self, batch: &[InRecord]) -> Encoded;
    /// The batch's rows as `JSONEachRow` lines (golden files, the SQL compatibility check).
    fn json_lines(&self, batch: &[InRecord]) -> Result<String, String>;
}

impl<P: Projection> Encoder for P {
    fn table(&self) -> &'static str {
        P::TABLE
    }
    fn topic(&self) -> &'static str {
        P::TOPIC
    }
    fn stage(&self) -> &'static str {
        P::STAGE
    }
    fn columns(&self) -> &'static [&'static str] {
        P::Row::COLUMNS
    }
    fn types(&self) -> Vec<String> {
        P::Row::types()
    }
    fn dead_letters_refused_rows(&self) -> bool {
        P::DEAD_LETTER_REFUSED_ROWS
    }

    fn encode(&self, batch: &[InRecord]) -> Encoded {
        let mut encoded = Encoded {
            body: Vec::with_capacity(batch.iter().map(|r| r.payload_len()).sum::<usize>()),
            rows: Vec::with_capacity(batch.len()),
            unreadable: Vec::new(),
        };
        for (index, record) in batch.iter().enumerate() {
            match self.rows(record) {
                Ok(rows) => {
                    for row in rows {
                        row.write_binary(&mut encoded.body);
                        encoded.rows.push((encoded.body.len(), index));
                    }
                }
                Err(reason) => encoded.unreadable.push((index, reason)),
            }
        }
        encoded
    }

    fn json_lines(&self, batch: &[InRecord]) -> Result<String, String> {
        let mut out = Vec::new();
        for record in batch {
            for row in self.rows(record)? {
                row.write_json(&mut out);
                out.push(b'\n');
            }
        }
        String::from_utf8(out).map_err(|e| e.to_string())
    }
}

trait PayloadLen {
    fn payload_len(&self) -> usize;
}

impl PayloadLen for InRecord {
    fn payload_len(&self) -> usize {
        self.payload.as_ref().map_or(0, Vec::len)
    }
}

/// Decodes the Avro value of a derived record, with the reason as text when it cannot.
pub struct AvroRecords<T: RecordType> {
    codec: Codec<T>,
}

impl<T: RecordType> AvroRecords<T> {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            codec: Codec::new()?,
        })
    }

    pub fn decode(&self, record: &InRecord) -> Result<T, String> {
        match record.payload.as_deref() {
            None => Err("record has no value (a tombstone); derived topics never carry one".into()),
            Some(bytes) => self.codec.decode(bytes).map_err(|e| e.to_string()),
        }
    }
}

/// What one [`TableWriter::write`] did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Written {
    pub rows: usize,
    pub inserts: usize,
    pub refused_rows: usize,
}

/// Writes batches of one projection into one table.
#[derive(Clone)]
pub struct TableWriter {
    encoder: Arc<dyn Encoder>,
    clickhouse: ClickHouse,
    target: String,
}

impl TableWriter {
    /// A writer into the projection's own table.
    pub fn new(encoder: Arc<dyn Encoder>, clickhouse: ClickHouse) -> Self {
        let target = encoder.table().to_string();
        Self {
            encoder,
            clickhouse,
            target,
        }
    }

    /// The same writer, inserting into `table` instead (replay's shadow table).
    pub fn into_table(mut self, table: &str) -> Self {
        self.target = table.to_string();
        self
    }

    pub fn encoder(&self) -> &Arc<dyn Encoder> {
        &self.encoder
    }

    /// Writes a batch. `Ok` means every row is in the table except those in the returned
    /// actions (dead letters, by index into the batch); `Err` means retry the whole batch.
    pub async fn write(
        &self,
        batch: &[InRecord],
    ) -> Result<(Vec<(usize, Action)>, Written), ClickHouseError> {
        let table = self.encoder.table();
        let encoded = self.encoder.encode(batch);
        let mut actions: Vec<(usize, Action)> = encoded
            .unreadable
            .into_iter()
            .map(|(index, reason)| (index, Action::DeadLetter { reason }))
            .collect();
        let mut written = Written::default();
        if encoded.rows.is_empty() {
            return Ok((actions, written));
        }
        metrics::histogram!("hudstream_projection_batch_rows", "table" => table)
            .record(encoded.rows.len() as f64);
        metrics::histogram!("hudstream_projection_batch_bytes", "table" => table)
            .record(encoded.body.len() as f64);

        let body = bytes::Bytes::from(encoded.body);
        let rows = &encoded.rows;
        let start_of = |row: usize| if row == 0 { 0 } else { rows[row - 1].0 };
        // Ranges of rows still to insert; a refused range is split in two until the refused
        // rows stand alone. Depth-first, so rows go in in batch order.
        let mut pending = vec![(0usize, rows.len())];
        while let Some((lo, hi)) = pending.pop() {
            let started = Instant::now();
            let result = self
                .clickhouse
                .insert_row_binary(
                    &self.target,
                    self.encoder.columns(),
                    body.slice(start_of(lo)..rows[hi - 1].0),
                )
                .await;
            written.inserts += 1;
            metrics::histogram!("hudstream_projection_insert_seconds", "table" => table)
                .record(started.elapsed().as_secs_f64());
            match result {
                Ok(()) => written.rows += hi - lo,
                Err(e) if e.is_refused_data() && hi - lo > 1 => {
                    let mid = lo + (hi - lo) / 2;
                    pending.push((mid, hi));
                    pending.push((lo, mid));
                }
                Err(e) if e.is_refused_data() => {
                    written.refused_rows += 1;
                    let index = rows[lo].1;
                    let reason = refusal_reason(table, &e);
                    if self.encoder.dead_letters_refused_rows() {
                        actions.push((index, Action::DeadLetter { reason }));
                    } else {
                        // Dead letters are not dead-lettered again (that could loop); the
                        // record stays in its topic, readable with `hudstream dead-letters list`.
                        let record = batch.get(index).map(InRecord::source).unwrap_or_default();
                        tracing::error!(table, source = %record, %reason, "row refused; it remains only in its topic");
                    }
                }
                Err(e) => return Err(e),
            }
        }
        metrics::counter!("hudstream_projection_rows_written_total", "table" => table)
            .increment(written.rows as u64);
        if written.refused_rows > 0 {
            metrics::counter!("hudstream_projection_rows_refused_total", "table" => table)
                .increment(written.refused_rows as u64);
        }
        Ok((actions, written))
    }
}

fn refusal_reason(table: &str, error: &ClickHouseError) -> String {
    let hint = if error.code() == Some(395) {
        " (a _check_* integrity column of the table refused it: see the table's DDL in schemas/migrations)"
    } else {
        ""
    };
    format!(
        "ClickHouse refused this row of {table}, alone; the rest of its batch was written{hint}: {}",
        error.message()
    )
}

/// A projection running as a stage of the consumer loop.
pub struct ProjectionStage {
    writer: TableWriter,
}

impl ProjectionStage {
    pub fn new(encoder: Arc<dyn Encoder>, clickhouse: ClickHouse) -> Self {
        Self {
            writer: TableWriter::new(encoder, clickhouse),
        }
    }
}

impl BatchHandler for ProjectionStage {
    fn stage(&self) -> &'static str {
        self.writer.encoder.stage()
    }

    fn input_topic(&self) -> &'static str {
        self.writer.encoder.topic()
    }

    async fn handle(&mut self, batch: &[InRecord]) -> anyhow::Result<Vec<(usize, Action)>> {
        let (actions, _) = self.writer.write(batch).await?;
        Ok(actions)
    }
}
