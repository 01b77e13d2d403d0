//! Wiring: which stages exist and how they start. The `hudstream` binary runs them one per
//! subcommand or all in one process; the end-to-end tests start them in-process the same way.

mod bench;
pub mod cli;
pub mod dead_letters;
mod load;
pub mod status;

use anyhow::Context;
use tokio::net::TcpListener;

use hudstream_api as api;
use hudstream_ingest as ingest;
use hudstream_projections::ProjectionStage;
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

/// Every stage that reads a topic, with that topic: processors, then projections.
pub fn stages() -> anyhow::Result<Vec<(&'static str, &'static str)>> {
    let mut out: Vec<(&'static str, &'static str)> = hudstream_processors::all()?
        .iter()
        .map(|p| (p.stage(), p.input_topic()))
        .collect();
    out.extend(
        hudstream_projections::all()?
            .iter()
            .map(|e| (e.stage(), e.topic())),
    );
    Ok(out)
}

/// Runs every processor until shutdown, each in its own consumer group; the first to fail
/// stops the others.
pub async fn run_processors(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let appender = Appender::new(&config.kafka).context("creating the Kafka producer")?;
    let stages = hudstream_processors::all()?.into_iter().map(|p| {
        let (appender, shutdown) = (appender.clone(), shutdown.clone());
        let stage = p.stage();
        async move {
            let result = run_stage(
                &config.kafka,
                config.pipeline.processor_batches(),
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
        }
    });
    futures::future::join_all(stages)
        .await
        .into_iter()
        .collect()
}

/// Runs every projection until shutdown, each in its own consumer group; the first to fail
/// stops the others. The tables are listed in `hudstream_projections::all`.
pub async fn run_projections(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let appender = Appender::new(&config.kafka).context("creating the Kafka producer")?;
    let clickhouse = ClickHouse::new(&config.clickhouse)?;
    let stages = hudstream_projections::all()?.into_iter().map(|encoder| {
        let (appender, shutdown, clickhouse) =
            (appender.clone(), shutdown.clone(), clickhouse.clone());
        let stage = encoder.stage();
        async move {
            let result = run_stage(
                &config.kafka,
                config.pipeline.projection_batches(),
                ProjectionStage::new(encoder, clickhouse),
                appender,
                shutdown.clone(),
            )
            .await
            .context(stage);
            if result.is_err() {
                shutdown.cancel();
            }
            result
        }
    });
    futures::future::join_all(stages)
        .await
        .into_iter()
        .collect()
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

/// The replayer for this configuration (projection batch limits, five retries per insert).
pub fn replayer(config: &Config) -> anyhow::Result<hudstream_projections::replay::Replayer> {
    Ok(hudstream_projections::replay::Replayer {
        kafka: config.kafka.clone(),
        clickhouse: ClickHouse::new(&config.clickhouse)?,
        appender: Appender::new(&config.kafka).context("creating the Kafka producer")?,
        limits: config.pipeline.projection_batches(),
        max_retries: 5,
    })
}

/// The projections `replay` rebuilds for `which`: one table's, or `all`.
pub fn tables_to_replay(
    which: &str,
) -> anyhow::Result<Vec<std::sync::Arc<dyn hudstream_projections::Encoder>>> {
    if which == "all" {
        hudstream_projections::all()
    } else {
        Ok(vec![hudstream_projections::by_table(which)?])
    }
}
