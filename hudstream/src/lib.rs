//! Wiring: which stages exist and how they start. The `hudstream` binary runs them one per
//! subcommand or all in one process; the end-to-end tests start them in-process the same way.

pub mod dead_letters;

use anyhow::Context;
use tokio::net::TcpListener;

use hudstream_api as api;
use hudstream_ingest as ingest;
use hudstream_processors::check_run::CheckRunProcessor;
use hudstream_processors::issues::{IssueCommentProcessor, IssuesProcessor};
use hudstream_processors::oot::OotProcessor;
use hudstream_processors::pull_request::PullRequestProcessor;
use hudstream_processors::push::PushProcessor;
use hudstream_processors::workflow_job::WorkflowJobProcessor;
use hudstream_processors::workflow_run::WorkflowRunProcessor;
use hudstream_projections::workflow_job::WorkflowJobProjection;
use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::kafka::{ensure_topics, run_stage, Appender};
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::worker::{PerRecord, Processor};
use hudstream_runtime::Config;
use hudstream_schemas::migrations::MIGRATIONS;
use hudstream_schemas::topics::catalogue;

/// Creates every catalogue topic that does not exist yet; returns the ones created.
pub async fn create_topics(config: &Config) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = catalogue().into_iter().map(|t| t.name).collect();
    ensure_topics(&config.kafka, &names)
        .await
        .with_context(|| format!("creating topics on {}", config.kafka.brokers))
}

/// Applies pending ClickHouse migrations; returns the versions applied.
pub async fn migrate(config: &Config) -> anyhow::Result<Vec<u32>> {
    let clickhouse = ClickHouse::new(&config.clickhouse)?;
    clickhouse
        .migrate(MIGRATIONS)
        .await
        .with_context(|| format!("migrating ClickHouse at {}", config.clickhouse.url))
}

/// Runs the gateway on `listener` until shutdown.
pub async fn run_gateway(
    config: &Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let appender = Appender::new(&config.kafka).context("creating the Kafka producer")?;
    ingest::serve(&config.gateway, listener, appender, shutdown).await
}

/// Runs every processor until shutdown, each in its own consumer group; the first to fail
/// stops the others. A new processor is one more line in the list.
pub async fn run_processors(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let appender = Appender::new(&config.kafka).context("creating the Kafka producer")?;
    let stages: Vec<futures::future::BoxFuture<'_, anyhow::Result<()>>> = vec![
        processor(config, WorkflowJobProcessor::new()?, &appender, &shutdown),
        processor(config, WorkflowRunProcessor::new()?, &appender, &shutdown),
        processor(config, PullRequestProcessor::new()?, &appender, &shutdown),
        processor(config, PushProcessor::new()?, &appender, &shutdown),
        processor(config, OotProcessor::new()?, &appender, &shutdown),
        processor(config, IssuesProcessor::new()?, &appender, &shutdown),
        processor(config, IssueCommentProcessor::new()?, &appender, &shutdown),
        processor(config, CheckRunProcessor::new()?, &appender, &shutdown),
    ];
    futures::future::join_all(stages)
        .await
        .into_iter()
        .collect()
}

/// One processor's consumer loop; its failure (named after its stage) stops the others.
fn processor<'a, P: Processor>(
    config: &'a Config,
    p: P,
    appender: &Appender,
    shutdown: &CancellationToken,
) -> futures::future::BoxFuture<'a, anyhow::Result<()>> {
    let (appender, shutdown) = (appender.clone(), shutdown.clone());
    let stage = p.stage();
    Box::pin(async move {
        let result = run_stage(
            &config.kafka,
            &config.pipeline,
            PerRecord(p),
            appender,
            shutdown.clone(),
        )
        .await
        .context(stage);
        if result.is_err() {
            shutdown.cancel();
        }
        result
    })
}

/// Runs every projection until shutdown.
pub async fn run_projections(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let appender = Appender::new(&config.kafka).context("creating the Kafka producer")?;
    let clickhouse = ClickHouse::new(&config.clickhouse)?;
    run_stage(
        &config.kafka,
        &config.pipeline,
        WorkflowJobProjection::new(clickhouse)?,
        appender,
        shutdown,
    )
    .await
}

/// Runs the read API on `listener` until shutdown.
pub async fn run_api(
    config: &Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    api::serve(listener, ClickHouse::new(&config.clickhouse)?, shutdown).await
}

/// Binds a listen address with an error that names the setting.
pub async fn bind(address: &str, setting: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} ({setting})"))
}

/// Runs every stage in this process until shutdown; the first stage to fail stops the rest.
pub async fn run_all(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let gateway_listener = bind(&config.gateway.listen, "gateway.listen").await?;
    let api_listener = bind(&config.api.listen, "api.listen").await?;
    let guard = shutdown.clone();
    let stop_all = |r: anyhow::Result<()>| {
        if r.is_err() {
            guard.cancel();
        }
        r
    };
    let metrics = async {
        if config.telemetry.metrics_listen.is_empty() {
            Ok(())
        } else {
            hudstream_runtime::telemetry::serve_metrics(
                &config.telemetry.metrics_listen,
                shutdown.clone(),
            )
            .await
        }
    };
    let (g, p, j, a, m) = tokio::join!(
        async {
            stop_all(
                run_gateway(config, gateway_listener, shutdown.clone())
                    .await
                    .context("gateway"),
            )
        },
        async {
            stop_all(
                run_processors(config, shutdown.clone())
                    .await
                    .context("processors"),
            )
        },
        async {
            stop_all(
                run_projections(config, shutdown.clone())
                    .await
                    .context("projections"),
            )
        },
        async {
            stop_all(
                run_api(config, api_listener, shutdown.clone())
                    .await
                    .context("api"),
            )
        },
        async { stop_all(metrics.await.context("metrics")) },
    );
    g.and(p).and(j).and(a).and(m)
}
