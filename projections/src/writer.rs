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

use futures::future::BoxFuture;

use hudstream_runtime::clickhouse::{ClickHouse, ClickHouseError, CHECK_COLUMN_REFUSED};
use hudstream_runtime::worker::{Action, BatchHandler, InRecord};
use hudstream_schemas::wire::peek_version;

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
    /// Whether a newer version of an entity replaces the older ones in this table (its
    /// ORDER BY names the entity, as the record key does). Then a batch writes only each key's
    /// newest record — what `ReplacingMergeTree` would keep anyway — which saves most rows in a
    /// replay, where a job's queued, in-progress and completed records come close together.
    /// Not for tables that keep every version (OOT callbacks) or whose key is not the row's
    /// identity (dead letters).
    const LATEST_VERSION_WINS: bool = true;
    /// Whether a row the server refuses is dead-lettered. Only the dead-letter table says no:
    /// its records already are dead letters, and they stay in their topic whatever happens.
    const DEAD_LETTER_REFUSED_ROWS: bool = true;
    /// The rows for one record, or why the record cannot be projected (it is dead-lettered).
    fn rows(&self, record: &InRecord) -> Result<Vec<Self::Row>, String>;
}

/// What inserting some records of a batch did.
#[derive(Debug, Default)]
pub struct Inserted {
    /// Rows now in the table.
    pub rows: usize,
    /// INSERT statements sent (1 unless rows were refused and the batch was narrowed down).
    pub inserts: usize,
    /// Records that yielded no rows because they could not be read, with the reason (batch
    /// indices).
    pub unreadable: Vec<(usize, String)>,
    /// Records a row of which the server refused on its own, with the server's answer.
    pub refused: Vec<(usize, ClickHouseError)>,
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
    fn latest_version_wins(&self) -> bool;
    /// Inserts the rows of the records at `indices` into `target` in one INSERT, and narrows a
    /// refusal caused by the rows down to the rows refused on their own. `Err` means nothing is
    /// known to be written: retry.
    fn insert<'a>(
        &'a self,
        clickhouse: &'a ClickHouse,
        target: &'a str,
        batch: &'a [InRecord],
        indices: &'a [usize],
    ) -> BoxFuture<'a, Result<Inserted, ClickHouseError>>;
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
    fn latest_version_wins(&self) -> bool {
        P::LATEST_VERSION_WINS
    }

    fn insert<'a>(
        &'a self,
        clickhouse: &'a ClickHouse,
        target: &'a str,
        batch: &'a [InRecord],
        indices: &'a [usize],
    ) -> BoxFuture<'a, Result<Inserted, ClickHouseError>> {
        Box::pin(insert_rows(self, clickhouse, target, batch, indices))
    }

    fn json_lines(&self, batch: &[InRecord]) -> Result<String, String> {
        // Every record's rows, superseded or not: golden files show what each record becomes.
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

/// Decodes the records at `indices` into rows and streams them to the server as one INSERT
/// (the crate sends each full buffer while later rows are decoded, so our decoding and the
/// server's parsing overlap). If the server refuses the rows, halves of them are inserted
/// again until each refused row stands alone. (Order does not matter: rows are versioned.)
async fn insert_rows<P: Projection>(
    projection: &P,
    clickhouse: &ClickHouse,
    target: &str,
    batch: &[InRecord],
    indices: &[usize],
) -> Result<Inserted, ClickHouseError> {
    let mut inserted = Inserted::default();
    // Every row with its record's batch index, kept for narrowing down a refusal.
    let mut rows: Vec<(P::Row, usize)> = Vec::with_capacity(indices.len());
    let mut insert = clickhouse.insert::<P::Row>(target).await?;
    let mut failed = None;
    for &index in indices {
        match projection.rows(&batch[index]) {
            Ok(rows_of_record) => {
                for row in rows_of_record {
                    if failed.is_none() {
                        // A failed write carries the server's answer; the rest is only decoded.
                        failed = insert.write(&row).await.err();
                    }
                    rows.push((row, index));
                }
            }
            Err(reason) => inserted.unreadable.push((index, reason)),
        }
    }
    let first = match failed {
        Some(error) => Err(error),
        None if rows.is_empty() => Ok(()),
        None => insert.end().await,
    };
    inserted.inserts += 1;
    let mut pending = Vec::new();
    match first {
        Ok(()) => inserted.rows += rows.len(),
        Err(e) if e.is_refused_data() && !rows.is_empty() => pending.push((0, rows.len(), e)),
        Err(e) => return Err(e),
    }
    // Refused ranges of rows, each split in two and retried until the refused rows stand alone.
    while let Some((lo, hi, error)) = pending.pop() {
        if hi - lo == 1 {
            inserted.refused.push((rows[lo].1, error));
            continue;
        }
        let mid = lo + (hi - lo) / 2;
        for (a, b) in [(mid, hi), (lo, mid)] {
            let half: Vec<&P::Row> = rows[a..b].iter().map(|(row, _)| row).collect();
            let result = clickhouse.insert_all(target, half).await;
            inserted.inserts += 1;
            match result {
                Ok(()) => inserted.rows += b - a,
                Err(e) if e.is_refused_data() => pending.push((a, b, e)),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(inserted)
}

/// Declares the projection of a derived topic whose records become one row each
/// (`From<Record> for Row`): the struct and its [`Projection`] impl. The topic is the record
/// type's; the stage is `project.<table>`.
#[macro_export]
macro_rules! avro_projection {
    (
        $(#[$meta:meta])*
        pub struct $name:ident: $record:ty => $row:ty {
            table: $table:literal
            $(, latest_version_wins: $latest:expr)?
            $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name;

        impl $crate::writer::Projection for $name {
            type Row = $row;
            const TABLE: &'static str = $table;
            const TOPIC: &'static str =
                <$record as hudstream_schemas::wire::RecordType>::TOPIC;
            const STAGE: &'static str = concat!("project.", $table);
            $(const LATEST_VERSION_WINS: bool = $latest;)?

            fn rows(
                &self,
                record: &hudstream_runtime::worker::InRecord,
            ) -> Result<Vec<$row>, String> {
                Ok(vec![record.decode::<$record>()?.into()])
            }
        }
    };
}

/// What one [`TableWriter::write`] did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Written {
    /// Rows now in the table.
    pub rows: usize,
    /// Records not written because a newer version of the same entity in the batch was.
    pub superseded: usize,
    /// INSERT statements sent (1 unless rows were refused and the batch was narrowed down).
    pub inserts: usize,
    /// Rows the server refused on their own (dead-lettered).
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
        let target = clickhouse.insert_target(encoder.table());
        Self {
            encoder,
            clickhouse,
            target,
        }
    }

    /// The same writer, inserting into `table` instead (replay's shadow table).
    pub fn into_table(mut self, table: &str) -> Self {
        self.target = self.clickhouse.insert_target(table);
        self
    }

    pub fn encoder(&self) -> &Arc<dyn Encoder> {
        &self.encoder
    }

    /// Writes a batch. `Ok` means every row is in the table except those in the returned
    /// actions (dead letters, by index into the batch); `Err` means retry the whole batch.
    ///
    /// Where a newer version of an entity supersedes the older ones, only each key's newest
    /// record is written. If that one cannot be written (unreadable, or refused by the server),
    /// the key's next-newest record gets its turn in another round — so the table ends as if
    /// every record had been written, whatever the batch boundaries.
    pub async fn write(
        &self,
        batch: &[InRecord],
    ) -> Result<(Vec<(usize, Action)>, Written), ClickHouseError> {
        let table = self.encoder.table();
        let mut actions = Vec::new();
        let mut written = Written::default();
        let mut candidates: Vec<usize> = (0..batch.len()).collect();
        while !candidates.is_empty() {
            let (keep, superseded) = if self.encoder.latest_version_wins() {
                newest_per_entity(batch, &candidates)
            } else {
                (std::mem::take(&mut candidates), Vec::new())
            };
            let failed_before = actions.len();
            self.write_records(batch, &keep, &mut actions, &mut written)
                .await?;
            // Keys whose newest record failed: their older records are the next candidates.
            let failed: std::collections::HashSet<&[u8]> = actions[failed_before..]
                .iter()
                .filter_map(|(index, _)| batch[*index].key.as_deref())
                .collect();
            let before = superseded.len();
            candidates = superseded
                .into_iter()
                .filter(|i| batch[*i].key.as_deref().is_some_and(|k| failed.contains(k)))
                .collect();
            written.superseded += before - candidates.len();
        }
        if written.superseded > 0 {
            metrics::counter!("hudstream_projection_rows_superseded_total", "table" => table)
                .increment(written.superseded as u64);
        }
        metrics::counter!("hudstream_projection_rows_written_total", "table" => table)
            .increment(written.rows as u64);
        if written.refused_rows > 0 {
            metrics::counter!("hudstream_projection_rows_refused_total", "table" => table)
                .increment(written.refused_rows as u64);
        }
        Ok((actions, written))
    }

    /// Writes the records at `indices` in one INSERT, narrowing down refused rows; appends a
    /// dead letter per unreadable record and per refused row.
    async fn write_records(
        &self,
        batch: &[InRecord],
        indices: &[usize],
        actions: &mut Vec<(usize, Action)>,
        written: &mut Written,
    ) -> Result<(), ClickHouseError> {
        let table = self.encoder.table();
        let started = Instant::now();
        let inserted = self
            .encoder
            .insert(&self.clickhouse, &self.target, batch, indices)
            .await?;
        metrics::histogram!("hudstream_projection_insert_seconds", "table" => table)
            .record(started.elapsed().as_secs_f64());
        let rows = inserted.rows + inserted.refused.len();
        metrics::histogram!("hudstream_projection_batch_rows", "table" => table)
            .record(rows as f64);
        // What the rows were made of: the records' Avro bytes.
        let bytes: usize = indices
            .iter()
            .map(|&i| batch[i].payload.as_ref().map_or(0, Vec::len))
            .sum();
        metrics::histogram!("hudstream_projection_batch_bytes", "table" => table)
            .record(bytes as f64);
        written.inserts += inserted.inserts;
        written.rows += inserted.rows;
        actions.extend(
            inserted
                .unreadable
                .into_iter()
                .map(|(index, reason)| (index, Action::DeadLetter { reason })),
        );
        for (index, error) in inserted.refused {
            written.refused_rows += 1;
            let reason = refusal_reason(table, &error);
            if self.encoder.dead_letters_refused_rows() {
                actions.push((index, Action::DeadLetter { reason }));
            } else {
                // Dead letters are not dead-lettered again (that could loop); the record stays
                // in its topic, readable with `hudstream dead-letters list`.
                let record = batch.get(index).map(InRecord::source).unwrap_or_default();
                tracing::error!(table, source = %record, %reason, "row refused; it remains only in its topic");
            }
        }
        Ok(())
    }
}

/// Splits `candidates` (batch indices, in order) into the records to write — for each record
/// key, the one with the highest version (the later one on a tie) — and the superseded rest.
/// Records without a key or a readable version are all written.
fn newest_per_entity(batch: &[InRecord], candidates: &[usize]) -> (Vec<usize>, Vec<usize>) {
    use std::collections::hash_map::Entry;
    let mut newest: std::collections::HashMap<&[u8], (i64, usize)> =
        std::collections::HashMap::with_capacity(candidates.len());
    let mut keep = vec![false; batch.len()];
    for &index in candidates {
        keep[index] = true;
        let record = &batch[index];
        let key = record.key.as_deref().filter(|k| !k.is_empty());
        let version = record.payload.as_deref().and_then(peek_version);
        let (Some(key), Some(version)) = (key, version) else {
            continue;
        };
        match newest.entry(key) {
            Entry::Vacant(e) => {
                e.insert((version, index));
            }
            Entry::Occupied(mut e) => {
                let (best, at) = *e.get();
                if version >= best {
                    keep[at] = false;
                    e.insert((version, index));
                } else {
                    keep[index] = false;
                }
            }
        }
    }
    candidates.iter().partition(|&&i| keep[i])
}

fn refusal_reason(table: &str, error: &ClickHouseError) -> String {
    let hint = if error.code() == Some(CHECK_COLUMN_REFUSED) {
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

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
