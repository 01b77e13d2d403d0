//! The `hudstream` binary's library: the list of stages ([`stages`]), the command line
//! ([`cli`], grammar and dispatch) and each one-shot command's body ([`commands`], a file per
//! command). The end-to-end tests start stages in-process through the same functions.

pub mod allocator;
pub mod cli;
pub mod commands;
pub mod stages;

use anyhow::Context;

use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::health::Health;
use hudstream_runtime::kafka::{ensure_topics, Appender};
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::telemetry;
use hudstream_runtime::Config;
use hudstream_schemas::migrations::MIGRATIONS;
use hudstream_schemas::topics::catalogue;

pub use stages::{
    bind, drci_poster, open_ruleset, reconciler, run_api, run_archive, run_drci, run_gateway,
    run_log_stages, run_processors, run_projections, run_reconciler,
};

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

/// What a process's `/readyz` asks: the broker, whether its stages are consuming, and ClickHouse
/// when one of its stages uses it.
pub fn health(config: &Config, uses_clickhouse: bool) -> anyhow::Result<Health> {
    let mut health = Health::new()
        .broker(&Appender::new(&config.kafka).context("creating the Kafka producer")?)
        .consuming();
    if uses_clickhouse {
        health = health.clickhouse(&ClickHouse::new(&config.clickhouse)?);
    }
    Ok(health)
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `telemetry.metrics_listen` (nothing when it is
/// empty) for a process running `stages`, until shutdown.
pub async fn serve_metrics(
    config: &Config,
    stages: &[&stages::Stage],
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if config.telemetry.metrics_listen.is_empty() {
        return Ok(());
    }
    let uses_clickhouse = stages.iter().any(|s| s.uses_clickhouse);
    telemetry::serve_metrics(
        &config.telemetry.metrics_listen,
        health(config, uses_clickhouse)?,
        shutdown,
    )
    .await
}

/// Runs every stage this configuration enables ([`stages::Stage::in_run`]) in this process,
/// with the metrics endpoint, until shutdown; the first stage to fail stops the rest.
pub async fn run_all(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let running: Vec<&stages::Stage> = stages::STAGES
        .iter()
        .filter(|s| (s.in_run)(config))
        .collect();
    let mut parts: Vec<(
        &'static str,
        futures::future::BoxFuture<'_, anyhow::Result<()>>,
    )> = running
        .iter()
        .map(|s| (s.name, (s.start)(config, None, shutdown.clone())))
        .collect();
    parts.push((
        "metrics",
        Box::pin(serve_metrics(config, &running, shutdown.clone())),
    ));
    stages::run_together(&shutdown, parts).await
}

/// The replayer for this configuration (replay's batch limits, five retries per insert).
pub fn replayer(config: &Config) -> anyhow::Result<hudstream_replay::Replayer> {
    Ok(hudstream_replay::Replayer {
        kafka: config.kafka.clone(),
        clickhouse: ClickHouse::new(&config.clickhouse)?,
        appender: Appender::new(&config.kafka).context("creating the Kafka producer")?,
        limits: config.pipeline.replay_batches(),
        max_retries: 5,
        allow_shrink: false,
    })
}

/// The projections `replay` rebuilds for `which`: one table's, or `all`.
pub fn tables_to_replay(
    which: &str,
) -> anyhow::Result<Vec<std::sync::Arc<dyn hudstream_projections::Encoder>>> {
    if which == "all" {
        Ok(hudstream_projections::all())
    } else {
        Ok(vec![hudstream_projections::by_table(which)?])
    }
}
