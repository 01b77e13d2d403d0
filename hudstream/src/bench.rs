//! `hudstream bench`: throughput and latency of each stage on the real services, printed with
//! the figure each is compared against. Figures, not assertions: nothing here fails on speed.
//!
//! Runs in a namespace of its own (topic prefix and database `bench_<time>`), so it can share a
//! broker and ClickHouse with anything else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;

use hudstream_ingest::fixtures;
use hudstream_ingest::signature::sign_sha256;
use hudstream_processors::workflow_job::normalize;
use hudstream_projections::workflow_job::WorkflowJobRow;
use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::{Config, Secret};
use hudstream_schemas::wire::Codec;
use hudstream_schemas::workflow_job::WorkflowJob;

/// torchci's estimated peak: ~15k workflow_job events per hour for pytorch/pytorch (torchci.md §8.1).
const TORCHCI_PEAK_EVENTS_PER_S: f64 = 15_000.0 / 3600.0;
/// Vector's kafka source, one task, to a blackhole (anchors.md §1).
const VECTOR_KAFKA_SOURCE_MSG_PER_S: f64 = 190_000.0;
/// The `clickhouse` crate's RowBinary insert into the local 18.16 server (local-services.md).
const CLICKHOUSE_CRATE_ROWS_PER_S: f64 = 467_000.0;
/// GitHub's deadline for a 2xx.
const GITHUB_DEADLINE_S: f64 = 10.0;

pub struct BenchArgs {
    pub deliveries: usize,
    pub concurrency: usize,
    pub rows: usize,
}

fn line(name: &str, figure: String, against: String) {
    println!("{name:<34} {figure:<34} {against}");
}

/// The real workflow_job bodies, each re-keyed to one of `count` distinct job ids.
fn job_bodies(count: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    Ok(
        fixtures::rekeyed_workflow_jobs(&fixtures::default_dir(), count, 1_000_000_000, 0)?
            .into_iter()
            .map(|(_, body)| body)
            .collect(),
    )
}

pub async fn run(base: &Config, args: BenchArgs) -> anyhow::Result<()> {
    let ns = format!("bench_{}", chrono_free_stamp());
    let mut config = base.clone();
    config.kafka.topic_prefix = format!("{ns}.");
    config.kafka.group_prefix = ns.clone();
    config.clickhouse.database = ns.clone();
    config.telemetry.metrics_listen = String::new();
    if config.gateway.webhook_secrets.is_empty() {
        config.gateway.webhook_secrets = vec![Secret::new("bench-secret")];
    }
    println!(
        "hudstream bench — namespace {ns}, broker {}, ClickHouse {}",
        config.kafka.brokers, config.clickhouse.url
    );
    println!("{:<34} {:<34} {}", "stage", "measured", "compared with");

    // 1. Processor CPU: normalize + version + Avro encode, one core.
    let bodies = job_bodies(args.deliveries)?;
    let codec = Codec::<WorkflowJob>::new()?;
    let n = 100_000usize;
    let started = Instant::now();
    let mut bytes = 0usize;
    for i in 0..n {
        let body = &bodies[i % bodies.len()];
        bytes += body.len();
        let job = normalize(body).context("normalize")?;
        std::hint::black_box(codec.encode(&job)?);
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = n as f64 / secs;
    // The limit: the processor's own serde_json parse of the same bytes into the fields it
    // reads (`workflow_job::parse`), without normalizing, versioning or encoding.
    let started = Instant::now();
    for i in 0..n {
        hudstream_processors::workflow_job::parse(&bodies[i % bodies.len()])
            .context("typed parse")?;
    }

    let limit = n as f64 / started.elapsed().as_secs_f64();
    line(
        "process.workflow_job (CPU, 1 core)",
        format!(
            "{rate:>9.0} rec/s, {:.1} µs/rec, {:.0} MB/s",
            secs * 1e6 / n as f64,
            bytes as f64 / secs / 1e6
        ),
        format!(
            "serde_json typed parse {limit:.0} rec/s: ×{:.2} (goal ≥ 0.4)",
            rate / limit
        ),
    );
    line(
        "",
        String::new(),
        format!(
            "Vector kafka source 190k msg/s (small msgs): ×{:.2}",
            rate / VECTOR_KAFKA_SOURCE_MSG_PER_S
        ),
    );

    // 2. Gateway: signed deliveries over HTTP, each acknowledged by the broker (acks=all).
    hudstream::create_topics(&config).await?;
    hudstream::migrate(&config).await?;
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/github/webhook", listener.local_addr()?);
    let gw_config = config.clone();
    let gw_shutdown = shutdown.clone();
    let gateway =
        tokio::spawn(
            async move { hudstream::run_gateway(&gw_config, listener, gw_shutdown).await },
        );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let secret = config.gateway.webhook_secrets[0].clone();
    let bodies = Arc::new(bodies);
    let started = Instant::now();
    let mut latencies: Vec<f64> = futures::stream::iter(0..bodies.len())
        .map(|i| {
            let (client, url, secret, bodies) =
                (client.clone(), url.clone(), secret.clone(), bodies.clone());
            async move {
                let body = bodies[i].clone();
                let t = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-github-event", "workflow_job")
                    .header("x-github-delivery", format!("bench-{i}"))
                    .header("x-hub-signature-256", sign_sha256(&secret, &body))
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "gateway answered {}",
                    response.status()
                );
                Ok::<f64, anyhow::Error>(t.elapsed().as_secs_f64())
            }
        })
        .buffer_unordered(args.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)] * 1000.0
    };
    let rate = bodies.len() as f64 / secs;
    line(
        "gateway → broker ack (HTTP, acks=all)",
        format!("{rate:>9.0} deliveries/s, c={}", args.concurrency),
        format!(
            "torchci peak ~4.2 events/s: ×{:.0}",
            rate / TORCHCI_PEAK_EVENTS_PER_S
        ),
    );
    line(
        "gateway latency p50 / p99 / max",
        format!(
            "{:.1} / {:.1} / {:.1} ms",
            pct(0.50),
            pct(0.99),
            latencies[latencies.len() - 1] * 1000.0
        ),
        format!(
            "GitHub's 10 s deadline: p99 uses {:.3}%",
            pct(0.99) / 10.0 / GITHUB_DEADLINE_S
        ),
    );

    // 3. End to end: processors + projections drain what the gateway appended into ClickHouse.
    let clickhouse = ClickHouse::new(&config.clickhouse)?;
    let started = Instant::now();
    let (p_config, p_shutdown) = (config.clone(), shutdown.clone());
    let processors =
        tokio::spawn(async move { hudstream::run_processors(&p_config, p_shutdown).await });
    let (j_config, j_shutdown) = (config.clone(), shutdown.clone());
    let projections =
        tokio::spawn(async move { hudstream::run_projections(&j_config, j_shutdown).await });
    #[derive(serde::Deserialize)]
    struct Count {
        n: u64,
    }
    let expected = bodies.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let rows: Vec<Count> = clickhouse
            .query(&format!(
                "SELECT uniqExact(id) AS n FROM {}.workflow_job",
                ns
            ))
            .await?;
        if rows.first().map(|c| c.n) >= Some(expected) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "pipeline did not drain {expected} jobs in 600 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = expected as f64 / secs;
    line(
        "raw log → ClickHouse (both stages)",
        format!("{rate:>9.0} jobs/s ({expected} in {secs:.2} s, incl. group joins)"),
        format!(
            "torchci peak ~4.2 events/s: ×{:.0}",
            rate / TORCHCI_PEAK_EVENTS_PER_S
        ),
    );
    shutdown.cancel();
    let _ = tokio::join!(gateway, processors, projections);

    // 4. ClickHouse insert path alone: JSONEachRow batches of 5000 rows.
    let sample: Vec<WorkflowJob> = job_bodies(1000)?
        .iter()
        .map(|b| normalize(b))
        .collect::<Result<_, _>>()?;
    let mut rows: Vec<WorkflowJobRow> = Vec::with_capacity(args.rows);
    for i in 0..args.rows {
        let mut job = sample[i % sample.len()].clone();
        job.id = 2_000_000_000 + i as i64;
        rows.push(job.into());
    }
    clickhouse
        .execute(&format!("TRUNCATE TABLE {ns}.workflow_job"))
        .await
        .ok();
    let started = Instant::now();
    for chunk in rows.chunks(5000) {
        clickhouse.insert("workflow_job", chunk).await?;
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = args.rows as f64 / secs;
    line(
        "projection insert (JSONEachRow)",
        format!("{rate:>9.0} rows/s ({} rows, batches of 5000)", args.rows),
        format!(
            "clickhouse crate RowBinary 467k rows/s: ×{:.2}",
            rate / CLICKHOUSE_CRATE_ROWS_PER_S
        ),
    );
    clickhouse
        .execute(&format!("DROP DATABASE IF EXISTS {ns}"))
        .await
        .ok();
    Ok(())
}

fn chrono_free_stamp() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
