//! `hudstream bench`: throughput and latency of each stage on the real services, printed with
//! the figure each is compared against. Figures, not assertions: nothing here fails on speed.
//!
//! Runs in a namespace of its own (topic prefix and database `bench_<time>`), so it can share a
//! broker and ClickHouse with anything else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::commands::load::{namespaced, percentile};
use futures::StreamExt;

use hudstream_ingest::fixtures;
use hudstream_ingest::signature::sign_sha256;
use hudstream_processors::workflow_job::normalize;
use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::worker::OutRecord;
use hudstream_runtime::Config;
use hudstream_schemas::topics::HUD_WORKFLOW_JOB_V1;
use hudstream_schemas::wire::{Codec, RecordType};
use hudstream_schemas::workflow_job::WorkflowJob;

/// torchci's estimated peak: ~15k workflow_job events per hour for pytorch/pytorch (torchci.md §8.1).
const TORCHCI_PEAK_EVENTS_PER_S: f64 = 15_000.0 / 3600.0;
/// Vector's kafka source, one task, to a blackhole (anchors.md §1).
const VECTOR_KAFKA_SOURCE_MSG_PER_S: f64 = 190_000.0;
/// GitHub's deadline for a 2xx.
const GITHUB_DEADLINE_S: f64 = 10.0;

pub struct BenchArgs {
    pub deliveries: usize,
    pub concurrency: usize,
    pub rows: usize,
    pub replay_events: usize,
    /// ClickHouse's native port, for the `clickhouse-client` reference.
    pub clickhouse_tcp_port: Option<u16>,
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
    let (ns, config) = namespaced(base, "bench");
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
    crate::create_topics(&config).await?;
    crate::migrate(&config).await?;
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/github/webhook", listener.local_addr()?);
    let gw_config = config.clone();
    let gw_shutdown = shutdown.clone();
    let gateway =
        tokio::spawn(
            async move { crate::run_gateway(&gw_config, Some(listener), gw_shutdown).await },
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
    let pct = |p: f64| percentile(&latencies, p);
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
        tokio::spawn(async move { crate::run_processors(&p_config, p_shutdown).await });
    let (j_config, j_shutdown) = (config.clone(), shutdown.clone());
    let projections =
        tokio::spawn(async move { crate::run_projections(&j_config, j_shutdown).await });
    let expected = bodies.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let rows: Vec<u64> = clickhouse
            .fetch_all(&format!(
                "SELECT uniqExact(id) AS n FROM {}.workflow_job",
                ns
            ))
            .await?;
        if rows.first().copied() >= Some(expected) {
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

    // 4. The projection writer against clickhouse-client, and 5. a replay of a million jobs.
    projection_insert(&config, &clickhouse, args.rows, args.clickhouse_tcp_port).await?;
    replay(&config, args.replay_events).await?;
    // The replay's database first: this client's session names `ns` as its database, and once
    // `ns` is gone the server refuses the client's every statement (the replay databases of
    // earlier runs were left behind that way, each merging a million rows in the background).
    for database in [format!("{ns}_replay"), ns.clone()] {
        if let Err(e) = clickhouse
            .execute(&format!("DROP DATABASE IF EXISTS {database}"))
            .await
        {
            tracing::warn!(%database, error = %e, "dropping the benchmark's database");
        }
    }
    Ok(())
}

/// `count` completed jobs shaped like ../shared/reference/datasets/pytorch_jobs_2024-08-14.csv:
/// its job names, conclusions and start times, in turn, on a real completed job's body, with
/// ~400 jobs per commit.
fn dataset_jobs(count: usize) -> anyhow::Result<Vec<WorkflowJob>> {
    dataset_jobs_from(count, 0)
}

/// [`dataset_jobs`] with ids (and commits) `first` further on, so that rounds write new jobs.
pub(crate) fn dataset_jobs_from(count: usize, first: i64) -> anyhow::Result<Vec<WorkflowJob>> {
    let csv_path =
        fixtures::default_dir().join("../../reference/datasets/pytorch_jobs_2024-08-14.csv");
    let csv = std::fs::read_to_string(&csv_path)
        .with_context(|| format!("reading {}", csv_path.display()))?;
    let rows: Vec<Vec<String>> = csv
        .lines()
        .skip(1)
        .map(|l| {
            l.trim_matches('"')
                .split("\",\"")
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|f| f.len() == 6)
        .collect();
    anyhow::ensure!(!rows.is_empty(), "no rows in {}", csv_path.display());
    let template = job_bodies(1)?
        .iter()
        .map(|b| normalize(b))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .find(|j| j.status == "completed")
        .context("a completed job fixture")?;
    let mut jobs = Vec::with_capacity(count);
    for i in 0..count {
        let row = &rows[i % rows.len()];
        let mut job = template.clone();
        job.repository_full_name = "pytorch/pytorch".into();
        let n = first + i as i64;
        job.id = 30_000_000_000 + n;
        job.run_id = 10_000_000_000 + n / 8;
        job.head_sha = format!("{:040x}", n / 400);
        let (workflow, name) = row[4]
            .split_once(" / ")
            .unwrap_or(("pull", row[4].as_str()));
        job.workflow_name = workflow.to_string();
        job.name = name.to_string();
        job.conclusion = row[2].clone();
        let started = chrono_like_parse(&row[1]).unwrap_or(1_723_680_000) * 1000;
        job.created_at = started - 60_000;
        job.started_at = Some(started);
        job.completed_at = Some(started + 600_000);
        job.version = ((started / 1000) << 20 | (i as i64 & 0xfffff)) << 2;
        jobs.push(job);
    }
    Ok(jobs)
}

/// `2024-08-14 22:38:01.000000000` → Unix seconds.
fn chrono_like_parse(s: &str) -> Option<i64> {
    let dt = chrono::NaiveDateTime::parse_from_str(s.get(..19)?, "%Y-%m-%d %H:%M:%S").ok()?;
    Some(dt.and_utc().timestamp())
}

pub(crate) fn as_records(
    jobs: &[WorkflowJob],
) -> anyhow::Result<Vec<hudstream_runtime::worker::InRecord>> {
    let codec = Codec::<WorkflowJob>::new()?;
    jobs.iter()
        .enumerate()
        .map(|(i, job)| {
            Ok(hudstream_runtime::worker::InRecord {
                topic: HUD_WORKFLOW_JOB_V1.into(),
                partition: 0,
                offset: i as i64,
                key: Some(job.key().into_bytes()),
                payload: Some(codec.encode(job)?),
                headers: Vec::new(),
                timestamp_ms: None,
            })
        })
        .collect()
}

/// Rows/s of the projection writer on workflow_job rows next to `clickhouse-client` inserting
/// the same rows ([`crate::commands::bench_writer`]).
async fn projection_insert(
    config: &Config,
    clickhouse: &ClickHouse,
    rows: usize,
    tcp_port: Option<u16>,
) -> anyhow::Result<()> {
    let records = as_records(&dataset_jobs(rows)?)?;
    let encoder = hudstream_projections::by_table("workflow_job")?;
    let (ours, against) = crate::commands::bench_writer::writer_against_client(
        config, clickhouse, encoder, &records, rows, tcp_port,
    )
    .await?;
    line(
        "projection writer → ClickHouse",
        format!("{ours:>9.0} rows/s ({rows} jobs, median of 3)"),
        against,
    );
    Ok(())
}

/// A job's life as the jobs topic holds it: queued, in progress, completed — each a record
/// with a higher version — all jobs' events in time order.
fn lifecycle_events(jobs: Vec<WorkflowJob>) -> Vec<WorkflowJob> {
    let mut events = Vec::with_capacity(jobs.len() * 3);
    for job in jobs {
        let started = job.started_at.unwrap_or(job.created_at);
        let mut queued = job.clone();
        queued.status = "queued".into();
        queued.conclusion = String::new();
        queued.started_at = None;
        queued.completed_at = None;
        queued.steps.clear();
        queued.version = job.version - 2;
        let mut running = job.clone();
        running.status = "in_progress".into();
        running.conclusion = String::new();
        running.completed_at = None;
        running.version = job.version - 1;
        events.push((job.created_at, queued));
        events.push((started, running));
        events.push((job.completed_at.unwrap_or(started), job));
    }
    events.sort_by_key(|(at, job)| (*at, job.id));
    events.into_iter().map(|(_, job)| job).collect()
}

/// Events/s of `hudstream replay workflow_job` over `events` job records, in topics of their
/// own (so nothing the earlier sections appended is replayed with them).
async fn replay(base: &Config, events: usize) -> anyhow::Result<()> {
    let mut config = base.clone();
    config.kafka.topic_prefix = format!("{}replay.", base.kafka.topic_prefix);
    // And a database of its own: the earlier sections' jobs in workflow_job are not in these
    // topics, and replay refuses to rebuild a table into one that would lose them.
    config.clickhouse.database = format!("{}_replay", base.clickhouse.database);
    crate::migrate(&config).await?;
    crate::create_topics(&config).await?;
    let config = &config;
    let jobs = events.div_ceil(3);
    let records = as_records(&lifecycle_events(dataset_jobs(jobs)?))?;
    let appended = records.len();
    let appender = hudstream_runtime::kafka::Appender::bulk(&config.kafka)?;
    let outs: Vec<OutRecord> = records
        .into_iter()
        .map(|r| OutRecord {
            topic: r.topic,
            key: r.key.unwrap_or_default(),
            payload: r.payload.unwrap_or_default(),
            headers: Vec::new(),
        })
        .collect();
    let started = Instant::now();
    let sent = futures::stream::iter(outs.iter())
        .map(|r| appender.append(r))
        .buffer_unordered(100_000)
        .filter(|r| futures::future::ready(r.is_err()))
        .count()
        .await;
    anyhow::ensure!(sent == 0, "{sent} records were not appended");
    let append_rate = appended as f64 / started.elapsed().as_secs_f64();
    drop(outs);
    // As `hudstream replay` does.
    crate::allocator::keep_freed_memory();
    let replayer = crate::replayer(config)?;
    let report = replayer
        .replay(
            hudstream_projections::by_table("workflow_job")?,
            &mut |_| {},
        )
        .await?;
    let rate = report.events as f64 / report.elapsed.as_secs_f64();
    line(
        "replay workflow_job (log → table)",
        format!(
            "{rate:>9.0} events/s ({} events of {jobs} jobs in {:.1} s; {} rows written)",
            report.events,
            report.elapsed.as_secs_f64(),
            report.rows_written
        ),
        format!("goal 150k events/s (issue #18): ×{:.2}", rate / 150_000.0),
    );
    line(
        "",
        String::new(),
        format!(
            "(reading the log {:.1} s, waiting for writes {:.1} s; appending took {append_rate:.0} records/s, acks=all)",
            report.reading.as_secs_f64(),
            report.waiting_for_writes.as_secs_f64()
        ),
    );
    Ok(())
}
