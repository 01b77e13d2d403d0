//! `hudstream bench-cluster`: the projection writer's rows/s into one ClickHouse server and
//! into a cluster (`clickhouse.cluster`, through its distributed `_insert` tables with
//! synchronous inserts), the same real-shaped workflow_job rows, the same batches. The read
//! side on the cluster is `bench-read` run with the cluster's configuration (`hud bench` runs
//! both).
//!
//! With `--shard-urls` (one node of each shard, in shard order) it also measures the other way
//! #21 asked to weigh: the writer routing each batch's rows by entity to the shards' local
//! tables itself, one insert per shard at once. That figure exists to justify the choice of
//! the distributed insert (README, "A ClickHouse cluster"); the writer does not do it.

use std::time::{Duration, Instant};

use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::worker::InRecord;
use hudstream_runtime::Config;

use crate::commands::load::{drop_bench_database, namespace};

/// A database of its own for one measurement: `config` naming it, with every migration.
async fn bench_database(config: &Config, prefix: &str) -> anyhow::Result<(Config, ClickHouse)> {
    let mut config = config.clone();
    config.clickhouse.database = namespace(prefix);
    crate::migrate(&config).await?;
    let clickhouse = ClickHouse::new(&config.clickhouse)?;
    Ok((config, clickhouse))
}

/// Round `round` of a measurement: `rows` real-shaped jobs as records, their ids fresh for
/// each round.
fn round_records(rows: usize, round: i64) -> anyhow::Result<Vec<InRecord>> {
    let jobs = crate::commands::bench::dataset_jobs_from(rows, round * rows as i64)?;
    crate::commands::bench::as_records(&jobs)
}

/// The median rows/s of three rounds of `rows` rows that took `times`.
fn median_rate(rows: usize, times: &[Duration]) -> f64 {
    let mut rates: Vec<f64> = times
        .iter()
        .map(|t| rows as f64 / t.as_secs_f64().max(f64::EPSILON))
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Rows/s of the projection writer into `config`'s ClickHouse, in the stage's batches.
async fn writer_rows_per_second(config: &Config, rows: usize) -> anyhow::Result<f64> {
    let (config, clickhouse) = bench_database(config, "bench_cluster").await?;
    let encoder = hudstream_projections::by_table("workflow_job")?;
    let writer = hudstream_projections::TableWriter::new(encoder, clickhouse.clone());
    let batch = config.pipeline.projection_batch_max_records.max(1);
    let rate = async {
        let mut times = Vec::new();
        for round in 0..3 {
            let records = round_records(rows, round)?;
            let started = Instant::now();
            for chunk in records.chunks(batch) {
                writer.write(chunk).await?;
            }
            times.push(started.elapsed());
        }
        anyhow::Ok(median_rate(rows, &times))
    }
    .await;
    drop_bench_database(&clickhouse).await;
    rate
}

/// Rows/s of the projection writer routing rows itself: each batch split by entity over the
/// shards (`shard_urls`, one node each), every part inserted at once into that shard's
/// `workflow_job_local` (its replicas copy it, as they do for a distributed insert). The split
/// hashes the record key with std's hasher, not ClickHouse's `cityHash64`: which shard a job
/// lands on does not change what an insert costs, and the database is dropped afterwards.
async fn routed_rows_per_second(
    config: &Config,
    shard_urls: &[String],
    rows: usize,
) -> anyhow::Result<f64> {
    use std::hash::{Hash, Hasher};
    let (config, cluster) = bench_database(config, "bench_cluster_routed").await?;
    let encoder = hudstream_projections::by_table("workflow_job")?;
    let local = hudstream_runtime::clickhouse::cluster::local_name("workflow_job");
    let batch = config.pipeline.projection_batch_max_records.max(1);
    // Everything that may fail runs inside, so the database is dropped whatever fails.
    let rate = async {
        let writers = shard_urls
            .iter()
            .map(|url| {
                let mut node = config.clickhouse.clone();
                node.url = url.clone();
                node.cluster = String::new();
                Ok(hudstream_projections::TableWriter::new(
                    encoder.clone(),
                    ClickHouse::new(&node)?,
                )
                .into_table(&local))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut times = Vec::new();
        for round in 3..6 {
            // Each batch's parts, split before the clock starts: only the inserts are timed,
            // as for the distributed insert.
            let batches: Vec<Vec<Vec<InRecord>>> = round_records(rows, round)?
                .chunks(batch)
                .map(|chunk| {
                    let mut parts = vec![Vec::new(); writers.len()];
                    for record in chunk {
                        let mut hasher = std::collections::hash_map::DefaultHasher::new();
                        record.key.hash(&mut hasher);
                        parts[hasher.finish() as usize % writers.len()].push(record.clone());
                    }
                    parts
                })
                .collect();
            let started = Instant::now();
            for parts in &batches {
                futures::future::try_join_all(
                    writers
                        .iter()
                        .zip(parts)
                        .map(|(writer, part)| writer.write(part)),
                )
                .await?;
            }
            times.push(started.elapsed());
        }
        anyhow::Ok(median_rate(rows, &times))
    }
    .await;
    drop_bench_database(&cluster).await;
    rate
}

/// Prints the writer's rows/s on one server (`single_url`) and on the cluster `config` names
/// (and, given one node of each shard, routing rows to the shards itself).
pub async fn run(
    config: &Config,
    single_url: &str,
    shard_urls: &[String],
    rows: usize,
) -> anyhow::Result<()> {
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
    if !shard_urls.is_empty() {
        let routed = routed_rows_per_second(config, shard_urls, rows).await?;
        println!(
            "{:<34} {:<34} {}",
            "projection writer → shards' local",
            format!("{routed:>9.0} rows/s ({rows} jobs, median of 3)"),
            format!(
                "×{:.2} of one server, ×{:.2} of the distributed insert (rows routed by the writer, one insert per shard at once)",
                routed / one,
                routed / many
            )
        );
    }
    Ok(())
}
