//! Wiring: which stages exist and how they start. The `hudstream` binary runs them one per
//! subcommand or all in one process; the end-to-end tests start them in-process the same way.

mod bench;
pub mod cli;
pub mod dead_letters;
mod load;
pub mod reclassify;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use hudstream_classifier::{Options, RulesetFile};
use hudstream_logs::{ClassifyStage, GitHub, LogFetchStage, LogStore};
use hudstream_schemas::topics::{HUD_JOB_LOG_V1, HUD_WORKFLOW_JOB_V1};

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
    ingest::serve(&config.gateway, &config.logs, listener, appender, shutdown).await
}

/// Every stage that reads a topic, with that topic: processors, then projections.
pub fn stages() -> anyhow::Result<Vec<(&'static str, &'static str)>> {
    let mut out: Vec<(&'static str, &'static str)> = hudstream_processors::all()?
        .iter()
        .map(|p| (p.stage(), p.input_topic()))
        .collect();
    out.push((hudstream_logs::fetch::STAGE, HUD_WORKFLOW_JOB_V1));
    out.push((hudstream_logs::classify::STAGE, HUD_JOB_LOG_V1));
    out.extend(
        hudstream_projections::all()?
            .iter()
            .map(|e| (e.stage(), e.topic())),
    );
    Ok(out)
}

/// Opens the configured ruleset; an invalid rule fails here with its name and regex error.
pub fn open_ruleset(config: &Config) -> anyhow::Result<Arc<RulesetFile>> {
    let path = &config.logs.ruleset;
    Ok(Arc::new(RulesetFile::open(path).with_context(|| {
        format!(
            "loading the classifier ruleset (logs.ruleset = {})",
            path.display()
        )
    })?))
}

/// Runs the log fetcher and the classifier until shutdown (nothing when `logs.enabled` is
/// false). A ruleset that does not compile, an unreadable App key or an unusable store stop
/// start-up with the reason.
pub async fn run_log_stages(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    if !config.logs.enabled {
        tracing::info!("log fetching and classification are disabled (logs.enabled = false)");
        return Ok(());
    }
    let logs = &config.logs;
    let rules = open_ruleset(config)?;
    let store = LogStore::open(&logs.store)?;
    let github = Arc::new(GitHub::from_config(logs)?);
    let appender = Appender::new(&config.kafka).context("creating the Kafka producer")?;
    tracing::info!(store = ?store, ruleset = %rules.current().hash(), rules = rules.current().rules().len(), "log stages starting");
    let fetch = LogFetchStage::new(
        github,
        store.clone(),
        logs.conclusions.clone(),
        logs.fetch_concurrency,
    )?;
    let classify = ClassifyStage::new(
        store,
        rules,
        Options {
            context_depth: logs.context_depth,
        },
        Duration::from_millis(logs.ruleset_reload_ms.max(100)),
    )?;
    let stop_on_error = |r: anyhow::Result<()>| {
        if r.is_err() {
            shutdown.cancel();
        }
        r
    };
    let (f, c) = tokio::join!(
        async {
            if !logs.fetch_from_github {
                tracing::info!(
                    "not fetching logs from GitHub (logs.fetch_from_github = false); uploads only"
                );
                return Ok(());
            }
            stop_on_error(
                run_stage(
                    &config.kafka,
                    config.pipeline.processor_batches(),
                    fetch,
                    appender.clone(),
                    shutdown.clone(),
                )
                .await
                .context(hudstream_logs::fetch::STAGE),
            )
        },
        async {
            stop_on_error(
                run_stage(
                    &config.kafka,
                    config.pipeline.processor_batches(),
                    classify,
                    appender.clone(),
                    shutdown.clone(),
                )
                .await
                .context(hudstream_logs::classify::STAGE),
            )
        },
    );
    f.and(c)
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
    let (g, p, l, j, a, m) = tokio::join!(
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
                run_log_stages(config, shutdown.clone())
                    .await
                    .context("log stages"),
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
    g.and(p).and(l).and(j).and(a).and(m)
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
