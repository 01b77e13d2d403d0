//! The projection writer against `clickhouse-client`: rows/s of the writer (Avro decode,
//! RowBinary encode, one insert per batch over HTTP) next to `clickhouse-client` inserting the
//! same rows from a RowBinary file over the native protocol — the server's own limit, measured
//! in the same run. Alternating rounds, compared by their medians. Used by `hudstream bench`
//! (job rows) and `hudstream bench-tests` (test-case rows).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use hudstream_projections::Encoder;
use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::worker::InRecord;
use hudstream_runtime::Config;

use crate::commands::load::median;

/// The writer's median rows/s, and what it is compared with (clickhouse-client's median and
/// the ratio, or why it was not measured). `rows` is how many rows `records` make.
pub async fn writer_against_client(
    config: &Config,
    clickhouse: &ClickHouse,
    encoder: Arc<dyn Encoder>,
    records: &[InRecord],
    rows: usize,
    tcp_port: Option<u16>,
) -> anyhow::Result<(f64, String)> {
    let db = clickhouse.database().to_string();
    let table = encoder.table();
    let writer = hudstream_projections::TableWriter::new(encoder.clone(), clickhouse.clone())
        .into_table("bench_writer");
    let file = std::env::temp_dir().join(format!("hudstream-bench-{db}-{table}.rowbinary"));
    let columns: Vec<String> = encoder.columns().iter().map(|c| format!("`{c}`")).collect();
    let batch = config.pipeline.projection_batch_max_records.max(1);
    if let Some(port) = tcp_port {
        // clickhouse-client's input: the very rows the writer sends, as the server dumps them.
        clickhouse
            .execute(&format!("DROP TABLE IF EXISTS {db}.bench_source"))
            .await?;
        clickhouse
            .execute(&format!("CREATE TABLE {db}.bench_source AS {db}.{table}"))
            .await?;
        let source = writer.clone().into_table("bench_source");
        for chunk in records.chunks(batch) {
            source.write(chunk).await?;
        }
        let query = format!(
            "SELECT {} FROM {db}.bench_source FORMAT RowBinary",
            columns.join(", ")
        );
        clickhouse_client(
            port,
            &query,
            |c| Ok(c.stdout(std::fs::File::create(&file)?)),
        )?;
    }
    let (mut ours, mut client) = (Vec::new(), Vec::new());
    for round in 0..3 {
        for bench_table in ["bench_writer", "bench_client"] {
            clickhouse
                .execute(&format!("DROP TABLE IF EXISTS {db}.{bench_table}"))
                .await?;
            clickhouse
                .execute(&format!("CREATE TABLE {db}.{bench_table} AS {db}.{table}"))
                .await?;
        }
        let started = Instant::now();
        for chunk in records.chunks(batch) {
            writer.write(chunk).await?;
        }
        ours.push(rows as f64 / started.elapsed().as_secs_f64());
        if let Some(port) = tcp_port {
            let query = format!(
                "INSERT INTO {db}.bench_client ({}) FORMAT RowBinary",
                columns.join(", ")
            );
            let started = Instant::now();
            clickhouse_client(port, &query, |c| Ok(c.stdin(std::fs::File::open(&file)?)))?;
            client.push(rows as f64 / started.elapsed().as_secs_f64());
        }
        tracing::debug!(round, table, "projection insert round done");
    }
    let _ = std::fs::remove_file(&file);
    let ours = median(ours);
    let against = if client.is_empty() {
        "(no --clickhouse-tcp-port: clickhouse-client not measured)".to_string()
    } else {
        let limit = median(client);
        format!(
            "clickhouse-client RowBinary {limit:.0} rows/s: ×{:.2} (goal ≥ 0.7)",
            ours / limit
        )
    };
    Ok((ours, against))
}

/// Runs `clickhouse-client` on the local server's native port with `query`, its input or output
/// set by `io`.
pub fn clickhouse_client(
    port: u16,
    query: &str,
    io: impl FnOnce(&mut std::process::Command) -> anyhow::Result<&mut std::process::Command>,
) -> anyhow::Result<()> {
    let mut command = std::process::Command::new("clickhouse-client");
    command.args([
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--query",
        query,
    ]);
    let status = io(&mut command)?
        .status()
        .context("running clickhouse-client")?;
    anyhow::ensure!(status.success(), "clickhouse-client failed: {status}");
    Ok(())
}
