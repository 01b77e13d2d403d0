//! `hudstream bench-cluster`: the projection writer's rows/s into one ClickHouse server and
//! into a cluster (`clickhouse.cluster`, through its distributed `_insert` tables with
//! synchronous inserts), the same real-shaped workflow_job rows, the same batches. The read
//! side on the cluster is `bench-read` run with the cluster's configuration (`hud bench` runs
//! both).

use std::time::Instant;

use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::Config;

use crate::commands::load::namespace;

/// Rows/s of the projection writer into `config`'s ClickHouse: `rows` jobs, written three
/// times (fresh ids each round), the median.
async fn writer_rows_per_second(config: &Config, rows: usize) -> anyhow::Result<f64> {
    let mut config = config.clone();
    config.clickhouse.database = namespace("bench_cluster");
    crate::migrate(&config).await?;
    let clickhouse = ClickHouse::new(&config.clickhouse)?;
    let encoder = hudstream_projections::by_table("workflow_job")?;
    let writer = hudstream_projections::TableWriter::new(encoder, clickhouse.clone());
    let batch = config.pipeline.projection_batch_max_records.max(1);
    let mut rates = Vec::new();
    for round in 0..3 {
        let jobs = crate::commands::bench::dataset_jobs_from(rows, round * rows as i64)?;
        let records = crate::commands::bench::as_records(&jobs)?;
        let started = Instant::now();
        for chunk in records.chunks(batch) {
            writer.write(chunk).await?;
        }
        rates.push(rows as f64 / started.elapsed().as_secs_f64());
    }
    let db = config.clickhouse.database.clone();
    let drop = format!("DROP DATABASE IF EXISTS {db}{}", clickhouse.on_cluster());
    // The figures stand whether or not the clean-up works.
    if let Err(e) = clickhouse.execute(&drop).await {
        tracing::warn!(error = %e, "dropping the benchmark's database");
    }
    rates.sort_by(f64::total_cmp);
    Ok(rates[1])
}

/// Prints the writer's rows/s on one server (`single_url`) and on the cluster `config` names.
pub async fn run(config: &Config, single_url: &str, rows: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        !config.clickhouse.cluster.is_empty(),
        "bench-cluster needs clickhouse.cluster (HUDSTREAM_CLICKHOUSE__CLUSTER) and a url of one of its nodes"
    );
    let mut single = config.clone();
    single.clickhouse.url = single_url.to_string();
    single.clickhouse.cluster = String::new();
    let one = writer_rows_per_second(&single, rows).await?;
    let many = writer_rows_per_second(config, rows).await?;
    println!(
        "{:<34} {:<34} {}",
        "projection writer → one server",
        format!("{one:>9.0} rows/s ({rows} jobs, median of 3)"),
        "the reference"
    );
    println!(
        "{:<34} {:<34} {}",
        format!("projection writer → cluster {}", config.clickhouse.cluster),
        format!("{many:>9.0} rows/s ({rows} jobs, median of 3)"),
        format!(
            "×{:.2} of one server (2 shards × 2 replicas, synchronous distributed inserts)",
            many / one
        )
    );
    Ok(())
}
