//! Rebuilding a table from its own topic: `hudstream replay <table>`.
//!
//! 1. create the shadow table;
//! 2. read the table's topic from the first offset still in the log up to the end it had when
//!    the replay started, in a consumer group of its own, and write it into the shadow with the
//!    live projection's own writer (same rows, same dead letters);
//! 3. compare it with the live table and refuse if it would lose entities or versions
//!    (`Replayer::guard_shrink`), else swap it in;
//! 4. catch up: everything appended up to the moment after the swap is written into the new
//!    table, so records the live projection wrote into the old table during the rebuild are
//!    not lost with it (rewriting them is harmless: the table is versioned);
//! 5. drop the old table.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::JoinHandle;

use hudstream_projections::{Encoder, TableWriter};
use hudstream_runtime::clickhouse::Shadow;
use hudstream_runtime::kafka::LogReader;

use crate::write::{write_batch, BatchWritten};
use crate::{Plan, Progress, Replayer, Report};

/// Batches written while the next is read: a replay is bound by the server's inserts, and two
/// at a time keep both cores of a small box busy. Order does not matter (rows are versioned),
/// and nothing is committed until all are written.
const WRITERS: usize = 2;
/// After the ends, read on until the log is quiet this long: a broker whose watermarks lag
/// behind the log (tansu's point one past its last *batch*) has records past them that are not
/// fetched yet. 50 ms was tried and was too short under load: a replay of a 50-record log read
/// 31 (the shrink guard refused it) — the wait is what makes a replay on such a broker whole…
const QUIET: Duration = Duration::from_millis(500);
/// …but not forever on a busy topic: what arrives after that is the live projection's (and
/// the catch-up's) job.
const READ_ON: Duration = Duration::from_secs(5);

impl Replayer {
    /// What a replay of `encoder`'s table would read and replace (nothing is changed).
    pub async fn plan(&self, encoder: &Arc<dyn Encoder>) -> anyhow::Result<Plan> {
        let table = encoder.table();
        let reader = LogReader::open(&self.kafka, encoder.topic(), &self.group(table))?;
        let partitions = tokio::task::block_in_place(|| reader.watermarks())?;
        let rows_now = self
            .clickhouse
            .fetch_all::<u64>(&format!(
                "SELECT count() AS rows FROM {}.{table}",
                self.clickhouse.database()
            ))
            .await
            .with_context(|| format!("reading table {table} (has `hudstream migrate` run?)"))?
            .first()
            .copied()
            .unwrap_or(0);
        Ok(Plan {
            table: table.to_string(),
            topic: encoder.topic().to_string(),
            shadow: Shadow::of(table).name,
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
        let table = plan.table.clone();
        let truncated = plan.truncated();
        if !truncated.is_empty() && !self.allow_shrink {
            anyhow::bail!(
                "refusing to rebuild {table} from {}: the log no longer starts at offset 0 (partition:first offset {}), so records the table was made of are gone (retention). Nothing was changed; rebuild from the archive (--from-archive), or pass --allow-shrink to rebuild from what is left",
                plan.topic,
                truncated
                    .iter()
                    .map(|(p, low)| format!("{p}:{low}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        let shadow = self.clickhouse.create_shadow(&table).await?;
        tracing::info!(%table, shadow = %shadow.name, events = plan.events(), "replay started");

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
            TableWriter::new(encoder.clone(), self.clickhouse.clone()).into_table(&shadow.name);
        let total = plan.events();
        let rebuilt = self
            .drain(
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
            .await;
        if let Err(e) = rebuilt {
            self.clickhouse.drop_shadow(&shadow).await?;
            return Err(
                e.context("rebuilding the shadow table failed; the live table is unchanged")
            );
        }

        if let Err(e) = self.guard_shrink(&shadow).await {
            self.clickhouse.drop_shadow(&shadow).await?;
            return Err(e);
        }
        let swap = self.clickhouse.swap_in(&shadow).await?;
        report.swap = Some(swap);
        tracing::info!(%table, %swap, "shadow table swapped in");
        self.catch_up(&encoder, &mut reader, &mut ends, &mut report)
            .await
            .context("the rebuilt table is live, but catching up on what arrived during the rebuild failed; run the replay again")?;
        tracing::debug!(%table, caught_up = report.caught_up, "caught up");
        self.clickhouse.drop_replaced(&shadow, swap).await?;
        report.elapsed = started.elapsed();
        tracing::info!(%table, events = report.events, rows = report.rows_written, dead_letters = report.dead_letters, seconds = report.elapsed.as_secs_f64(), "replay finished");
        Ok(report)
    }

    /// After the swap: writes what the topic gained since the rebuild's ends into the table
    /// now live.
    pub(crate) async fn catch_up(
        &self,
        encoder: &Arc<dyn Encoder>,
        reader: &mut LogReader,
        ends: &mut BTreeMap<i32, i64>,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        let asked = Instant::now();
        for (p, (_, high)) in tokio::task::block_in_place(|| reader.watermarks())? {
            let end = ends.entry(p).or_insert(0);
            *end = (*end).max(high);
        }
        tracing::debug!(
            seconds = asked.elapsed().as_secs_f64(),
            ?ends,
            "catch-up: the log's ends after the swap"
        );
        let before = report.events;
        let into_live = TableWriter::new(encoder.clone(), self.clickhouse.clone());
        self.drain(reader, ends, &into_live, report, &mut |_| {})
            .await?;
        report.caught_up = report.events - before;
        Ok(())
    }

    /// Reads up to `ends` — and on, while more keeps coming, for at most [`READ_ON`] — and
    /// writes every batch with `writer`, publishing dead letters.
    pub(crate) async fn drain(
        &self,
        reader: &mut LogReader,
        ends: &mut BTreeMap<i32, i64>,
        writer: &TableWriter,
        report: &mut Report,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> anyhow::Result<()> {
        let stage = writer.encoder().stage();
        let mut in_flight: VecDeque<JoinHandle<anyhow::Result<BatchWritten>>> = VecDeque::new();
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
                let done = task.await.context("replay writer task")??;
                report.waiting_for_writes += waiting.elapsed();
                report.add(done);
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
}
