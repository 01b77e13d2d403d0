//! `hudstream load`: a load generator for the gateway, with the raw producer as the baseline.
//!
//! It replays real `workflow_job` deliveries (each re-keyed to its own job id, signed like
//! GitHub signs them) over N connections, flat out or at a fixed rate, and prints requests/s,
//! MB/s and latency percentiles. The baseline pushes the same bytes, keys and headers straight
//! through the same idempotent `acks=all` producer with the same number in flight: the limit
//! the gateway is compared against. At a fixed rate, latency is measured from each request's
//! scheduled start, so a backlog shows up in the figures instead of hiding (no coordinated
//! omission).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::Mutex;

use hudstream_ingest::fixtures;
use hudstream_ingest::signature::sign_sha256;
use hudstream_runtime::kafka::Appender;
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::worker::OutRecord;
use hudstream_runtime::{Config, Secret};
use hudstream_schemas::topics::GITHUB_WORKFLOW_JOB;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Gateway,
    Producer,
    Both,
}

pub struct LoadArgs {
    pub target: Target,
    /// Requests per second; 0 = flat out.
    pub rate: u64,
    pub duration: Duration,
    pub connections: usize,
    /// Approximate payload size in KiB (real fixtures, padded with whitespace if needed).
    pub payload_kib: usize,
    /// With both targets: alternating rounds, compared by their medians.
    pub rounds: usize,
}

pub struct Figures {
    pub requests: usize,
    pub errors: usize,
    pub per_s: f64,
    pub mb_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// Real workflow_job bodies of about `kib` KiB, each with its own job id.
fn bodies(count: usize, kib: usize) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    Ok(fixtures::rekeyed_workflow_jobs(
        &fixtures::default_dir(),
        count,
        3_000_000_000,
        kib * 1024,
    )?)
}

/// The `p` quantile of sorted seconds, in milliseconds.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)] * 1000.0
}

/// The median of a non-empty list.
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Drops a benchmark's own database — on every node when `clickhouse` names a cluster. The
/// figures stand whether or not the clean-up works: a failure is logged, not returned.
pub(crate) async fn drop_bench_database(clickhouse: &hudstream_runtime::clickhouse::ClickHouse) {
    let drop = format!(
        "DROP DATABASE IF EXISTS {}{}",
        clickhouse.database(),
        clickhouse.on_cluster()
    );
    if let Err(e) = clickhouse.execute(&drop).await {
        tracing::warn!(error = %e, "dropping the benchmark's database");
    }
}

/// A namespace of its own for a measuring run: `<prefix>_<unix seconds>`.
pub(crate) fn namespace(prefix: &str) -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{prefix}_{seconds}")
}

/// A benchmark's configuration: `base` in a namespace of its own (topic prefix, consumer
/// groups, database `{prefix}_<time>`), no metrics listener, a webhook secret if none is set.
pub(crate) fn namespaced(base: &Config, prefix: &str) -> (String, Config) {
    let ns = namespace(prefix);
    let mut config = base.clone();
    config.kafka.topic_prefix = format!("{ns}.");
    config.kafka.group_prefix = ns.clone();
    config.clickhouse.database = ns.clone();
    config.telemetry.metrics_listen = String::new();
    if config.gateway.webhook_secrets.is_empty() {
        config.gateway.webhook_secrets = vec![hudstream_runtime::Secret::new("bench-secret")];
    }
    (ns, config)
}

/// Runs one scenario: `send(i)` is one request; returns the figures.
async fn drive<F, Fut>(args: &LoadArgs, sizes: Arc<Vec<usize>>, send: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let send = Arc::new(send);
    // Warm up first, as a long-running gateway is: connections, topic metadata, producer id.
    for i in 0..200 {
        let _ = send(sizes.len() - 1 - (i % sizes.len())).await;
    }
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + args.duration;
    let interval = (args.rate > 0).then(|| Duration::from_secs_f64(1.0 / args.rate as f64));
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let (send, latencies, errors, bytes, next, sizes) = (
            send.clone(),
            latencies.clone(),
            errors.clone(),
            bytes.clone(),
            next.clone(),
            sizes.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // At a fixed rate request i is due at i × interval; flat out, now.
                let scheduled = match interval {
                    Some(every) => started + every * i as u32,
                    None => Instant::now(),
                };
                if scheduled >= deadline {
                    break;
                }
                tokio::time::sleep_until(scheduled.into()).await;
                match send(i).await {
                    Ok(()) => {
                        mine.push(scheduled.elapsed().as_secs_f64());
                        bytes.fetch_add(
                            sizes[i % sizes.len()],
                            std::sync::atomic::Ordering::Relaxed,
                        );
                    }
                    Err(e) => {
                        if errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 3 {
                            eprintln!("request failed: {e:#}");
                        }
                    }
                }
            }
            latencies.lock().await.extend(mine);
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut all = std::mem::take(&mut *latencies.lock().await);
    all.sort_by(f64::total_cmp);
    Figures {
        requests: all.len(),
        errors: errors.load(std::sync::atomic::Ordering::Relaxed),
        per_s: all.len() as f64 / elapsed,
        mb_per_s: bytes.load(std::sync::atomic::Ordering::Relaxed) as f64 / elapsed / 1e6,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
        p999_ms: percentile(&all, 0.999),
        max_ms: all.last().copied().unwrap_or(0.0) * 1000.0,
    }
}

fn print(name: &str, f: &Figures) {
    println!(
        "{name:<22} {:>8.0} req/s {:>7.1} MB/s   p50 {:>6.2} ms  p99 {:>6.2} ms  p999 {:>7.2} ms  max {:>7.2} ms   ({} ok, {} errors)",
        f.per_s, f.mb_per_s, f.p50_ms, f.p99_ms, f.p999_ms, f.max_ms, f.requests, f.errors
    );
}

async fn gateway_round(
    config: &Config,
    args: &LoadArgs,
    deliveries: &Arc<Vec<(String, Vec<u8>)>>,
    sizes: &Arc<Vec<usize>>,
) -> anyhow::Result<Figures> {
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/github/webhook", listener.local_addr()?);
    let (gw_config, gw_shutdown) = (config.clone(), shutdown.clone());
    let server =
        tokio::spawn(
            async move { crate::run_gateway(&gw_config, Some(listener), gw_shutdown).await },
        );
    let secret = hudstream_runtime::secret::collect(
        &config.gateway.webhook_secrets,
        &config.gateway.webhook_secret_files,
    )?
    .into_iter()
    .next()
    .context("no webhook secret")?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()?;
    let url = reqwest::Url::parse(&url)?;
    // Signatures are computed ahead of time, as GitHub's side would have them; bodies are
    // shared, not copied, so the generator spends its CPU on HTTP, not on memcpy.
    let signed: Arc<Vec<(String, bytes::Bytes)>> = Arc::new(
        deliveries
            .iter()
            .map(|(_, b)| (sign_sha256(&secret, b), bytes::Bytes::from(b.clone())))
            .collect(),
    );
    let figures = drive(args, sizes.clone(), move |i| {
        let (client, url, signed) = (client.clone(), url.clone(), signed.clone());
        async move {
            let (signature, body) = &signed[i % signed.len()];
            let response = client
                .post(url)
                .header("content-type", "application/json")
                .header("x-github-event", "workflow_job")
                .header("x-github-delivery", format!("load-{i}"))
                .header("x-hub-signature-256", signature)
                .body(body.clone())
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "gateway answered {}",
                response.status()
            );
            Ok(())
        }
    })
    .await;
    shutdown.cancel();
    let _ = server.await;
    Ok(figures)
}

async fn baseline_round(
    config: &Config,
    args: &LoadArgs,
    deliveries: &Arc<Vec<(String, Vec<u8>)>>,
    sizes: &Arc<Vec<usize>>,
) -> anyhow::Result<Figures> {
    let appender = Appender::new(&config.kafka)?;
    let deliveries = deliveries.clone();
    Ok(drive(args, sizes.clone(), move |i| {
        let (appender, deliveries) = (appender.clone(), deliveries.clone());
        async move {
            let (key, body) = &deliveries[i % deliveries.len()];
            appender
                .append(&OutRecord {
                    topic: GITHUB_WORKFLOW_JOB.into(),
                    key: key.clone().into_bytes(),
                    payload: body.clone(),
                    headers: vec![("github-delivery".into(), format!("load-{i}").into_bytes())],
                })
                .await?;
            Ok(())
        }
    })
    .await)
}

pub async fn run(base: &Config, args: LoadArgs) -> anyhow::Result<()> {
    let mut config = base.clone();
    let ns = namespace("load");
    config.kafka.topic_prefix = format!("{ns}.");
    if config.gateway.webhook_secrets.is_empty() && config.gateway.webhook_secret_files.is_empty() {
        config.gateway.webhook_secrets = vec![Secret::new("load-secret")];
    }
    // The generator refuses nothing itself: let the gateway take every connection.
    config.gateway.max_in_flight = config.gateway.max_in_flight.max(args.connections * 2);
    crate::create_topics(&config).await?;
    let pool = 20_000usize;
    let deliveries = Arc::new(bodies(pool, args.payload_kib)?);
    let sizes = Arc::new(deliveries.iter().map(|(_, b)| b.len()).collect::<Vec<_>>());
    let avg = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64 / 1024.0;
    let mode = if args.rate > 0 {
        format!("{} req/s", args.rate)
    } else {
        "flat out".into()
    };
    println!(
        "hudstream load — {mode}, {} connections, {:.1} KiB real workflow_job payloads, {} s, broker {}, {} partitions",
        args.connections,
        avg,
        args.duration.as_secs(),
        config.kafka.brokers,
        config.kafka.partitions
    );

    // With both targets, alternate rounds and compare medians: on two shared cores a single
    // gateway-then-baseline pass is biased by whatever the broker and the box do meanwhile.
    let rounds = if args.target == Target::Both {
        args.rounds.max(1)
    } else {
        1
    };
    let (mut gateway_rates, mut baseline_rates) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        if rounds > 1 {
            println!("round {round}/{rounds}");
        }
        if matches!(args.target, Target::Gateway | Target::Both) {
            let figures = gateway_round(&config, &args, &deliveries, &sizes).await?;
            print("gateway (HTTP → ack)", &figures);
            gateway_rates.push(figures.per_s);
        }
        if matches!(args.target, Target::Producer | Target::Both) {
            let figures = baseline_round(&config, &args, &deliveries, &sizes).await?;
            print("raw producer baseline", &figures);
            baseline_rates.push(figures.per_s);
        }
    }
    if args.target == Target::Both {
        let (g, b) = (median(gateway_rates), median(baseline_rates));
        println!("medians over {rounds} rounds: gateway {g:.0} req/s, baseline {b:.0} req/s; gateway / baseline throughput: {:.2}", g / b.max(1e-9));
    }
    Ok(())
}
