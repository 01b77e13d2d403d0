//! Rebuilding a table from the log: `hudstream replay <table|all>`.
//!
//! The log is the source of truth and a table is a cache of it. A replay:
//! 1. creates an empty shadow table `<table>__replay` with the table's own definition;
//! 2. reads the table's topic from the first offset still in the log up to the end it had when
//!    the replay started, in a consumer group of its own, and writes it into the shadow with
//!    the live projection's own writer (same rows, same dead letters);
//! 3. swaps the shadow in — `EXCHANGE TABLES` where the server has it (modern ClickHouse,
//!    atomic), else one `RENAME TABLE` of both names (ClickHouse 18.16);
//! 4. catches up: everything appended up to the moment after the swap is written into the new
//!    table, so records the live projection wrote into the old table during the rebuild are
//!    not lost with it (rewriting them is harmless: the table is versioned);
//! 5. drops the old table.
//!
//! The live projection keeps running and keeps serving the old table until the swap; after it,
//! its inserts (by table name) land in the new one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::config::{BatchLimits, KafkaConfig};
use hudstream_runtime::kafka::{dead_letter, Appender, LogReader};
use hudstream_runtime::worker::Action;

use crate::writer::{Encoder, TableWriter};

/// What a replay of one table would do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub table: String,
    pub topic: String,
    pub shadow: String,
    /// Per partition: first offset in the log, end offset (exclusive).
    pub partitions: BTreeMap<i32, (i64, i64)>,
    /// Rows in the table now (before any merge, so versions not yet collapsed count).
    pub rows_now: u64,
}

impl Plan {
    pub fn events(&self) -> u64 {
        self.partitions
            .values()
            .map(|(low, high)| (high - low).max(0) as u64)
            .sum()
    }
}

/// A replay's progress, reported after every batch.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub events_done: u64,
    pub events_total: u64,
    pub elapsed: Duration,
}

impl Progress {
    pub fn events_per_second(&self) -> f64 {
        self.events_done as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Time left at the rate so far.
    pub fn eta(&self) -> Option<Duration> {
        let rate = self.events_per_second();
        (self.events_done > 0 && rate > 0.0).then(|| {
            Duration::from_secs_f64(
                self.events_total.saturating_sub(self.events_done) as f64 / rate,
            )
        })
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub table: String,
    pub events: u64,
    pub rows_written: u64,
    pub dead_letters: u64,
    /// Events appended during the rebuild and written after the swap.
    pub caught_up: u64,
    pub elapsed: Duration,
    /// Time spent reading the log, and waiting for a batch's write after the next was read:
    /// where a replay's time goes (reads and writes overlap otherwise).
    pub reading: Duration,
    pub waiting_for_writes: Duration,
    pub swap: &'static str,
}

#[derive(Clone)]
pub struct Replayer {
    pub kafka: KafkaConfig,
    pub clickhouse: ClickHouse,
    pub appender: Appender,
    pub limits: BatchLimits,
    /// How many times a failed insert is retried before the replay gives up (the live table
    /// is untouched until the swap, so giving up is safe).
    pub max_retries: u32,
}

fn shadow_name(table: &str) -> String {
    format!("{table}__replay")
}

impl Replayer {
    fn group(&self, table: &str) -> String {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        self.kafka.group(&format!("replay.{table}.{millis}"))
    }

    /// A new, empty `<table>__replay` with the table's own definition (a leftover one is
    /// dropped first); answers its name.
    async fn create_shadow(&self, table: &str) -> anyhow::Result<String> {
        let db = self.clickhouse.database();
        let shadow = shadow_name(table);
        self.clickhouse
            .execute(&format!("DROP TABLE IF EXISTS {db}.{shadow}"))
            .await?;
        self.clickhouse
            .execute(&format!("CREATE TABLE {db}.{shadow} AS {db}.{table}"))
            .await
            .with_context(|| {
                format!("creating the shadow table {shadow} (has `hudstream migrate` run?)")
            })?;
        Ok(shadow)
    }

    /// What a replay of `encoder`'s table would read and replace (nothing is changed).
    pub async fn plan(&self, encoder: &Arc<dyn Encoder>) -> anyhow::Result<Plan> {
        let table = encoder.table();
        let reader = LogReader::open(&self.kafka, encoder.topic(), &self.group(table))?;
        let partitions = tokio::task::block_in_place(|| reader.watermarks())?;
        #[derive(serde::Deserialize)]
        struct Count {
            rows: u64,
        }
        let rows_now = self
            .clickhouse
            .query::<Count>(&format!(
                "SELECT count() AS rows FROM {}.{table}",
                self.clickhouse.database()
            ))
            .await
            .with_context(|| format!("reading table {table} (has `hudstream migrate` run?)"))?
            .first()
            .map_or(0, |c| c.rows);
        Ok(Plan {
            table: table.to_string(),
            topic: encoder.topic().to_string(),
            shadow: shadow_name(table),
            partitions,
            rows_now,
        })
    }

    /// Rebuilds `encoder`'s table from its topic and swaps it in.
    pub async fn replay(
        &self,
        encoder: Arc<dyn Encoder>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> anyhow::Result<Report> {
        let started = Instant::now();
        let plan = self.plan(&encoder).await?;
        let db = self.clickhouse.database().to_string();
        let (table, shadow) = (plan.table.clone(), plan.shadow.clone());
        self.create_shadow(&table).await?;
        tracing::info!(%table, %shadow, events = plan.events(), "replay started");

        let mut reader = LogReader::open(&self.kafka, &plan.topic, &self.group(&table))?;
        reader.assign(
            &plan
                .partitions
                .iter()
                .map(|(p, (low, _))| (*p, *low))
                .collect(),
        )?;
        let mut ends: BTreeMap<i32, i64> = plan
            .partitions
            .iter()
            .map(|(p, (_, high))| (*p, *high))
            .collect();
        let mut report = Report {
            table: table.clone(),
            ..Report::default()
        };
        let into_shadow =
            TableWriter::new(encoder.clone(), self.clickhouse.clone()).into_table(&shadow);
        let total = plan.events();
        self.drain(
            &mut reader,
            &mut ends,
            &into_shadow,
            &mut report,
            &mut |done| {
                progress(Progress {
                    events_done: done,
                    events_total: total,
                    elapsed: started.elapsed(),
                })
            },
        )
        .await
        .context("rebuilding the shadow table failed; the live table is unchanged")?;

        report.swap = self.swap(&db, &table, &shadow).await?;
        tracing::info!(%table, swap = report.swap, "shadow table swapped in");

        // Catch up on what was appended meanwhile, into the table now live.
        for (p, (_, high)) in tokio::task::block_in_place(|| reader.watermarks())? {
            let end = ends.entry(p).or_insert(0);
            *end = (*end).max(high);
        }
        let before = report.events;
        let into_live = TableWriter::new(encoder.clone(), self.clickhouse.clone());
        self.drain(&mut reader, &mut ends, &into_live, &mut report, &mut |_| {})
            .await
            .context("the rebuilt table is live, but catching up on what arrived during the rebuild failed; run the replay again")?;
        report.caught_up = report.events - before;
        // After EXCHANGE the old table carries the shadow's name; after RENAME, `__old`.
        let old = if report.swap == "exchange" {
            shadow
        } else {
            format!("{table}__old")
        };
        self.clickhouse
            .execute(&format!("DROP TABLE IF EXISTS {db}.{old}"))
            .await?;
        report.elapsed = started.elapsed();
        tracing::info!(%table, events = report.events, rows = report.rows_written, dead_letters = report.dead_letters, seconds = report.elapsed.as_secs_f64(), "replay finished");
        Ok(report)
    }

    /// Reads up to `ends` — and on, while more keeps coming, for at most `READ_ON` — and
    /// writes every batch with `writer`, publishing dead letters.
    async fn drain(
        &self,
        reader: &mut LogReader,
        ends: &mut BTreeMap<i32, i64>,
        writer: &TableWriter,
        report: &mut Report,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> anyhow::Result<()> {
        let stage = writer.encoder().stage();
        // Up to WRITERS batches are written while the next is read: a replay is bound by the
        // server's inserts, and two at a time keep both cores of a small box busy. Order does
        // not matter (rows are versioned), and nothing is committed until all are written.
        const WRITERS: usize = 2;
        let mut in_flight: std::collections::VecDeque<
            tokio::task::JoinHandle<anyhow::Result<(u64, u64, u64)>>,
        > = Default::default();
        // After the ends, read on until the log is quiet for `QUIET`, but not forever on a busy
        // topic: what arrives after that is the live projection's (and the catch-up's) job.
        const QUIET: Duration = Duration::from_millis(500);
        const READ_ON: Duration = Duration::from_secs(5);
        let mut ends_reached_at: Option<Instant> = None;
        loop {
            let over = ends_reached_at.is_some_and(|t| t.elapsed() > READ_ON);
            let reading = Instant::now();
            let batch = if over {
                Vec::new()
            } else {
                reader.next_batch(self.limits, ends, QUIET).await?
            };
            report.reading += reading.elapsed();
            if ends_reached_at.is_none() && reader.reached(ends) {
                ends_reached_at = Some(Instant::now());
            }
            while in_flight.len() >= WRITERS || (batch.is_empty() && !in_flight.is_empty()) {
                let Some(task) = in_flight.pop_front() else {
                    break;
                };
                let waiting = Instant::now();
                let (events, rows, dead) = task.await.context("replay writer task")??;
                report.waiting_for_writes += waiting.elapsed();
                report.events += events;
                report.rows_written += rows;
                report.dead_letters += dead;
                progress(report.events);
            }
            if batch.is_empty() {
                // Everything read is written: record it in the replay's group.
                reader.commit();
                break;
            }
            let (writer, appender, retries) =
                (writer.clone(), self.appender.clone(), self.max_retries);
            in_flight.push_back(tokio::spawn(async move {
                write_batch(&writer, &appender, &batch, retries, stage).await
            }));
        }
        Ok(())
    }

    async fn swap(&self, db: &str, table: &str, shadow: &str) -> anyhow::Result<&'static str> {
        match self
            .clickhouse
            .execute(&format!("EXCHANGE TABLES {db}.{table} AND {db}.{shadow}"))
            .await
        {
            Ok(()) => Ok("exchange"),
            // Only "this server cannot exchange" falls back: 18.16 does not know the statement
            // (SYNTAX_ERROR), a modern server refuses it outside an Atomic database
            // (NOT_IMPLEMENTED, UNSUPPORTED_METHOD, SUPPORT_IS_DISABLED). Any other failure —
            // a timeout after the exchange may have happened — must not be followed by a
            // rename that would swap the tables back.
            Err(e) if matches!(e.code(), Some(62 | 48 | 1 | 344)) => {
                tracing::debug!(error = %e, "EXCHANGE TABLES unavailable; renaming");
                self.clickhouse
                    .execute(&format!("DROP TABLE IF EXISTS {db}.{table}__old"))
                    .await?;
                self.clickhouse
                    .execute(&format!(
                        "RENAME TABLE {db}.{table} TO {db}.{table}__old, {db}.{shadow} TO {db}.{table}"
                    ))
                    .await
                    .with_context(|| format!("swapping {shadow} in for {table}"))?;
                Ok("rename")
            }
            Err(e) => Err(anyhow::Error::new(e).context(format!(
                "swapping {shadow} in for {table}; check which of the two is live before replaying again"
            ))),
        }
    }
}

/// Writes `batch` with `writer`, retrying a failed insert up to `retries` times, and publishes
/// the dead letters of rows ClickHouse refused. Answers (events, rows, dead letters).
async fn write_batch(
    writer: &TableWriter,
    appender: &Appender,
    batch: &[hudstream_runtime::worker::InRecord],
    retries: u32,
    stage: &'static str,
) -> anyhow::Result<(u64, u64, u64)> {
    let mut attempt = 0;
    let (actions, written) = loop {
        match writer.write(batch).await {
            Ok(done) => break done,
            Err(e) if attempt < retries => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "replay insert failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * (1 << attempt.min(6)))).await;
            }
            Err(e) => return Err(anyhow::Error::new(e).context("replay insert failed")),
        }
    };
    let mut dead = 0;
    for (index, action) in actions {
        if let (Action::DeadLetter { reason }, Some(record)) = (action, batch.get(index)) {
            appender
                .append(&dead_letter(stage, record, &reason))
                .await
                .context("publishing a dead letter")?;
            dead += 1;
        }
    }
    Ok((batch.len() as u64, written.rows as u64, dead))
}

/// A rebuild fed by the caller rather than read from the tables' topics: `hudstream replay
/// --from-archive` pushes the records the processors derive from the archive. Each table's
/// shadow fills as records are [pushed](ShadowBuild::push); [`ShadowBuild::finish`] swaps the
/// shadows in, then catches up on what the live pipeline appended to the tables' topics since
/// [`Replayer::begin`], as a replay from Kafka does.
pub struct ShadowBuild {
    replayer: Replayer,
    started: Instant,
    tables: Vec<ShadowTable>,
}

struct ShadowTable {
    encoder: Arc<dyn Encoder>,
    shadow: String,
    into_shadow: TableWriter,
    pending: Vec<hudstream_runtime::worker::InRecord>,
    pending_bytes: usize,
    /// Positioned at the topic's end as of `begin`, for the catch-up.
    reader: LogReader,
    report: Report,
}

impl Replayer {
    /// Creates an empty shadow of each of `encoders`' tables and notes where their topics end.
    pub async fn begin(&self, encoders: Vec<Arc<dyn Encoder>>) -> anyhow::Result<ShadowBuild> {
        let mut tables = Vec::new();
        for encoder in encoders {
            let table = encoder.table().to_string();
            let shadow = self.create_shadow(&table).await?;
            let mut reader = LogReader::open(&self.kafka, encoder.topic(), &self.group(&table))?;
            let ends: BTreeMap<i32, i64> = tokio::task::block_in_place(|| reader.watermarks())?
                .into_iter()
                .map(|(p, (_, high))| (p, high))
                .collect();
            reader.assign(&ends)?;
            let into_shadow =
                TableWriter::new(encoder.clone(), self.clickhouse.clone()).into_table(&shadow);
            tables.push(ShadowTable {
                report: Report {
                    table: table.clone(),
                    ..Report::default()
                },
                encoder,
                shadow,
                into_shadow,
                pending: Vec::new(),
                pending_bytes: 0,
                reader,
            });
        }
        Ok(ShadowBuild {
            replayer: self.clone(),
            started: Instant::now(),
            tables,
        })
    }
}

impl ShadowBuild {
    /// The topics whose records the tables being rebuilt are made of.
    pub fn topics(&self) -> std::collections::BTreeSet<&'static str> {
        self.tables.iter().map(|t| t.encoder.topic()).collect()
    }

    /// Adds a record of one of [`ShadowBuild::topics`] (others are ignored) to every table
    /// made of its topic; writes a table's batch once it is full.
    pub async fn push(
        &mut self,
        record: hudstream_runtime::worker::InRecord,
    ) -> anyhow::Result<()> {
        let limits = self.replayer.limits;
        let tables: Vec<usize> = (0..self.tables.len())
            .filter(|&i| self.tables[i].encoder.topic() == record.topic)
            .collect();
        // Each topic feeds one table today; should one feed several, the record is copied
        // only for the tables after the first.
        let mut record = Some(record);
        for (n, &i) in tables.iter().enumerate() {
            let r = if n + 1 == tables.len() {
                record.take()
            } else {
                record.clone()
            };
            let Some(r) = r else { break };
            let t = &mut self.tables[i];
            t.pending_bytes += r.payload.as_ref().map_or(0, Vec::len);
            t.pending.push(r);
            if t.pending.len() >= limits.max_records || t.pending_bytes >= limits.max_bytes {
                self.flush(i).await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self, i: usize) -> anyhow::Result<()> {
        let (appender, retries) = (self.replayer.appender.clone(), self.replayer.max_retries);
        let t = &mut self.tables[i];
        if t.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut t.pending);
        t.pending_bytes = 0;
        let (events, rows, dead) = write_batch(
            &t.into_shadow,
            &appender,
            &batch,
            retries,
            t.encoder.stage(),
        )
        .await
        .with_context(|| {
            format!(
                "rebuilding {} failed; the live table is unchanged",
                t.report.table
            )
        })?;
        t.report.events += events;
        t.report.rows_written += rows;
        t.report.dead_letters += dead;
        Ok(())
    }

    /// Drops the shadow tables; the live tables were never touched.
    pub async fn abort(self) -> anyhow::Result<()> {
        let db = self.replayer.clickhouse.database().to_string();
        for t in &self.tables {
            self.replayer
                .clickhouse
                .execute(&format!("DROP TABLE IF EXISTS {db}.{}", t.shadow))
                .await?;
        }
        Ok(())
    }

    /// Writes what is pending, swaps every shadow in, then catches each table up and drops
    /// the old ones. All swaps come first, so a catch-up that fails leaves no table unswapped
    /// (running the rebuild again completes it).
    pub async fn finish(mut self) -> anyhow::Result<Vec<Report>> {
        for i in 0..self.tables.len() {
            self.flush(i).await?;
        }
        let replayer = self.replayer.clone();
        let db = replayer.clickhouse.database().to_string();
        for t in &mut self.tables {
            t.report.swap = replayer.swap(&db, &t.report.table, &t.shadow).await?;
        }
        let mut reports = Vec::new();
        for mut t in self.tables {
            let table = t.report.table.clone();
            let mut ends: BTreeMap<i32, i64> =
                tokio::task::block_in_place(|| t.reader.watermarks())?
                    .into_iter()
                    .map(|(p, (_, high))| (p, high))
                    .collect();
            let before = t.report.events;
            let into_live = TableWriter::new(t.encoder.clone(), replayer.clickhouse.clone());
            replayer
                .drain(&mut t.reader, &mut ends, &into_live, &mut t.report, &mut |_| {})
                .await
                .with_context(|| format!("{table} is rebuilt and live, but catching up on what arrived during the rebuild failed; run the rebuild again"))?;
            t.report.caught_up = t.report.events - before;
            let old = if t.report.swap == "exchange" {
                t.shadow.clone()
            } else {
                format!("{table}__old")
            };
            replayer
                .clickhouse
                .execute(&format!("DROP TABLE IF EXISTS {db}.{old}"))
                .await?;
            t.report.elapsed = self.started.elapsed();
            tracing::info!(%table, events = t.report.events, rows = t.report.rows_written, "rebuilt from records given");
            reports.push(t.report);
        }
        Ok(reports)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_follows_the_rate_so_far() {
        let p = Progress {
            events_done: 500,
            events_total: 1500,
            elapsed: Duration::from_secs(5),
        };
        assert_eq!(p.events_per_second(), 100.0);
        assert_eq!(p.eta(), Some(Duration::from_secs(10)));
        let start = Progress {
            events_done: 0,
            events_total: 10,
            elapsed: Duration::ZERO,
        };
        assert_eq!(start.eta(), None);
    }
}
