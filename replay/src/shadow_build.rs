//! A rebuild fed by the caller rather than read from the tables' topics: `hudstream replay
//! --from-archive` pushes the records the processors derive from the archive. Each table's
//! shadow fills as records are [pushed](ShadowBuild::push); [`ShadowBuild::finish`] swaps the
//! shadows in, then catches up on what the live pipeline appended to the tables' topics since
//! [`Replayer::begin`], as a replay from Kafka does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use hudstream_projections::{Encoder, TableWriter};
use hudstream_runtime::clickhouse::Shadow;
use hudstream_runtime::kafka::LogReader;
use hudstream_runtime::worker::InRecord;

use crate::write::write_batch;
use crate::{Replayer, Report};

pub struct ShadowBuild {
    replayer: Replayer,
    started: Instant,
    tables: Vec<ShadowTable>,
}

struct ShadowTable {
    encoder: Arc<dyn Encoder>,
    shadow: Shadow,
    into_shadow: TableWriter,
    pending: Vec<InRecord>,
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
            let shadow = self.clickhouse.create_shadow(&table).await?;
            let mut reader = LogReader::open(&self.kafka, encoder.topic(), &self.group(&table))?;
            let ends: BTreeMap<i32, i64> = tokio::task::block_in_place(|| reader.watermarks())?
                .into_iter()
                .map(|(p, (_, high))| (p, high))
                .collect();
            reader.assign(&ends)?;
            let into_shadow =
                TableWriter::new(encoder.clone(), self.clickhouse.clone()).into_table(&shadow.name);
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
    pub fn topics(&self) -> BTreeSet<&'static str> {
        self.tables.iter().map(|t| t.encoder.topic()).collect()
    }

    /// Adds a record of one of [`ShadowBuild::topics`] (others are ignored) to every table
    /// made of its topic; writes a table's batch once it is full.
    pub async fn push(&mut self, record: InRecord) -> anyhow::Result<()> {
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
        let done = write_batch(
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
        t.report.add(done);
        Ok(())
    }

    /// Drops the shadow tables; the live tables were never touched.
    pub async fn abort(self) -> anyhow::Result<()> {
        for t in &self.tables {
            self.replayer.clickhouse.drop_shadow(&t.shadow).await?;
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
        // Nothing is swapped unless no table would lose anything.
        for i in 0..self.tables.len() {
            if let Err(e) = replayer.guard_shrink(&self.tables[i].shadow).await {
                return match self.abort().await {
                    Ok(()) => Err(e),
                    Err(abort) => {
                        Err(e.context(format!("dropping the shadows failed too: {abort}")))
                    }
                };
            }
        }
        for t in &mut self.tables {
            t.report.swap = Some(replayer.clickhouse.swap_in(&t.shadow).await?);
        }
        let mut reports = Vec::new();
        for mut t in self.tables {
            let table = t.report.table.clone();
            let mut ends: BTreeMap<i32, i64> =
                tokio::task::block_in_place(|| t.reader.watermarks())?
                    .into_iter()
                    .map(|(p, (_, high))| (p, high))
                    .collect();
            replayer
                .catch_up(&t.encoder, &mut t.reader, &mut ends, &mut t.report)
                .await
                .with_context(|| format!("{table} is rebuilt and live, but catching up on what arrived during the rebuild failed; run the rebuild again"))?;
            if let Some(swap) = t.report.swap {
                replayer.clickhouse.drop_replaced(&t.shadow, swap).await?;
            }
            t.report.elapsed = self.started.elapsed();
            tracing::info!(%table, events = t.report.events, rows = t.report.rows_written, "rebuilt from records given");
            reports.push(t.report);
        }
        Ok(reports)
    }
}
