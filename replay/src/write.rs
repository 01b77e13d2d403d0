//! Writing one batch into a shadow table: retried a few times (the live table is untouched
//! until the swap, so a rebuild that gives up loses nothing), and the dead letters of rows the
//! server refused appended as the live projection would.

use std::time::Duration;

use anyhow::Context;

use hudstream_projections::TableWriter;
use hudstream_runtime::kafka::{dead_letter, Appender};
use hudstream_runtime::retry::Backoff;
use hudstream_runtime::worker::{Action, InRecord};

/// What one batch came to.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BatchWritten {
    pub events: u64,
    pub rows: u64,
    pub dead_letters: u64,
}

/// Writes `batch` with `writer`, retrying a failed insert up to `retries` times, and publishes
/// the dead letters of rows ClickHouse refused.
pub(crate) async fn write_batch(
    writer: &TableWriter,
    appender: &Appender,
    batch: &[InRecord],
    retries: u32,
    stage: &'static str,
) -> anyhow::Result<BatchWritten> {
    let mut backoff = Backoff::new(Duration::from_millis(400), Duration::from_millis(12_800));
    let mut attempt = 0;
    let (actions, written) = loop {
        match writer.write(batch).await {
            Ok(done) => break done,
            Err(e) if attempt < retries => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "replay insert failed; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => return Err(anyhow::Error::new(e).context("replay insert failed")),
        }
    };
    let mut dead_letters = 0;
    for (index, action) in actions {
        if let (Action::DeadLetter { reason }, Some(record)) = (action, batch.get(index)) {
            appender
                .append(&dead_letter(stage, record, &reason))
                .await
                .context("publishing a dead letter")?;
            dead_letters += 1;
        }
    }
    Ok(BatchWritten {
        events: batch.len() as u64,
        rows: written.rows as u64,
        dead_letters,
    })
}
