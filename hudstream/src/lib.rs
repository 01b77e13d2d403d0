//! Wiring: which stages exist and how they start. The `hudstream` binary runs them one per
//! subcommand or all in one process; the end-to-end tests start them in-process the same way.

mod bench;
pub mod cli;
pub mod dead_letters;
mod load;
mod read_bench;
pub mod reclassify;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use hudstream_classifier::{Options, RulesetFile};
use hudstream_logs::{ClassifyStage, GitHub, LogFetchStage, LogStore};
use hudstream_runtime::health::Health;
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

/// Every stage that reads a topic in this configuration, with that topic: processors, the log
/// stages that are enabled, then projections.
pub fn stages(config: &Config) -> anyhow::Result<Vec<(&'static str, &'static str)>> {
    let mut out: Vec<(&'static str, &'static str)> = hudstream_processors::all()?
        .iter()
        .map(|p| (p.stage(), p.input_topic()))
        .collect();
    if config.logs.enabled {
        if config.logs.fetch_from_github {
            out.push((hudstream_logs::fetch::STAGE, HUD_WORKFLOW_JOB_V1));
        }
        out.push((hudstream_logs::classify::STAGE, HUD_JOB_LOG_V1));
    }
    out.extend(
        hudstream_projections::all()?
            .iter()
            .map(|e| (e.stage(), e.topic())),
    );
    Ok(out)
}

/// Runs one part of the process with its name as error context; if it fails, cancels
/// `shutdown` so the other parts stop too (the first failure stops the whole process).
async fn stopping_others_on_error(
    shutdown: &CancellationToken,
    what: &'static str,
    part: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let result = part.await.context(what);
    if result.is_err() {
        shutdown.cancel();
    }
    result
}

/// Runs `stages` side by side, each under [`stopping_others_on_error`].
async fn run_together(
    shutdown: &CancellationToken,
    stages: Vec<(
        &'static str,
        futures::future::BoxFuture<'_, anyhow::Result<()>>,
    )>,
) -> anyhow::Result<()> {
    futures::future::join_all(
        stages
            .into_iter()
            .map(|(what, stage)| stopping_others_on_error(shutdown, what, stage)),
    )
    .await
    .into_iter()
    .collect()
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

/// Runs the classifier, and the log fetcher unless `logs.fetch_from_github` is false, until
/// shutdown (nothing when `logs.enabled` is false). A ruleset that does not compile, an
/// unreadable App key or an unusable store stop start-up with the reason.
pub async fn run_log_stages(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let logs = &config.logs;
    if !logs.enabled {
        tracing::info!("log fetching and classification are disabled (logs.enabled = false)");
        return Ok(());
    }
    let rules = open_ruleset(config)?;
    let store = LogStore::open(&logs.store)?;
    let appender = Appender::new(&config.kafka).context("creating the Kafka producer")?;
    let limits = config.pipeline.processor_batches();
    tracing::info!(store = ?store, ruleset = %rules.current().hash(), rules = rules.current().rules().len(), fetch_from_github = logs.fetch_from_github, "log stages starting");
    let mut stages: Vec<(
        &'static str,
        futures::future::BoxFuture<'_, anyhow::Result<()>>,
    )> = Vec::new();
    if logs.fetch_from_github {
        let github = Arc::new(GitHub::from_config(logs, shutdown.clone())?);
        let fetch = LogFetchStage::new(
            github,
            store.clone(),
            logs.conclusions.clone(),
            logs.fetch_concurrency,
            logs.max_log_bytes,
        )?;
        stages.push((
            hudstream_logs::fetch::STAGE,
            Box::pin(run_stage(
                &config.kafka,
                limits,
                fetch,
                appender.clone(),
                shutdown.clone(),
            )),
        ));
    }
    let classify = ClassifyStage::new(
        store,
        rules,
        Options {
            context_depth: logs.context_depth,
        },
        logs.classify_concurrency,
        Duration::from_millis(logs.ruleset_reload_ms.max(100)),
    )?;
    stages.push((
        hudstream_logs::classify::STAGE,
        Box::pin(run_stage(
            &config.kafka,
            limits,
            classify,
            appender,
            shutdown.clone(),
        )),
    ));
    run_together(&shutdown, stages).await
}

/// Runs every processor until shutdown, each in its own consumer group; the first to fail
/// stops the others.
pub async fn run_processors(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let appender = Appender::new(&config.kafka).context("creating the Kafka producer")?;
    let stages = hudstream_processors::all()?
        .into_iter()
        .map(|p| {
            let stage = p.stage();
            let run: futures::future::BoxFuture<'_, anyhow::Result<()>> = Box::pin(run_stage(
                &config.kafka,
                config.pipeline.processor_batches(),
                PerRecord(p),
                appender.clone(),
                shutdown.clone(),
            ));
            (stage, run)
        })
        .collect();
    run_together(&shutdown, stages).await
}

/// Runs every projection until shutdown, each in its own consumer group; the first to fail
/// stops the others. The tables are listed in `hudstream_projections::all`.
pub async fn run_projections(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let appender = Appender::new(&config.kafka).context("creating the Kafka producer")?;
    let clickhouse = ClickHouse::new(&config.clickhouse)?;
    let stages = hudstream_projections::all()?
        .into_iter()
        .map(|encoder| {
            let stage = encoder.stage();
            let run: futures::future::BoxFuture<'_, anyhow::Result<()>> = Box::pin(run_stage(
                &config.kafka,
                config.pipeline.projection_batches(),
                ProjectionStage::new(encoder, clickhouse.clone()),
                appender.clone(),
                shutdown.clone(),
            ));
            (stage, run)
        })
        .collect();
    run_together(&shutdown, stages).await
}

/// The reconciler for this configuration: the GitHub client of `[logs]`, the `[reconcile]`
/// settings. Its waits end on `shutdown`.
pub fn reconciler(
    config: &Config,
    shutdown: CancellationToken,
) -> anyhow::Result<hudstream_reconcile::Reconciler> {
    let github = GitHub::from_config(&config.logs, shutdown)
        .context("the reconciler's GitHub client (the [logs] github_* settings)")?;
    Ok(hudstream_reconcile::Reconciler::new(
        Arc::new(github),
        config.reconcile.clone(),
    ))
}

/// Runs the reconciler until shutdown: a pass every `reconcile.interval_ms`.
pub async fn run_reconciler(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let reconciler = reconciler(config, shutdown.clone())?;
    let appender = Appender::new(&config.kafka).context("creating the Kafka producer")?;
    hudstream_reconcile::run(
        reconciler,
        ClickHouse::new(&config.clickhouse)?,
        appender,
        Duration::from_millis(config.reconcile.interval_ms.max(1000)),
        shutdown,
    )
    .await
}

/// Runs the archive stage until shutdown: one consumer per raw topic, each writing its
/// batches into `archive.store`.
pub async fn run_archive(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = LogStore::open(&config.archive.store).with_context(|| {
        format!(
            "opening the archive store (archive.store = {:?})",
            config.archive.store
        )
    })?;
    let appender = Appender::new(&config.kafka).context("creating the Kafka producer")?;
    let limits = config.archive.batches(&config.pipeline);
    tracing::info!(store = ?store, "archive stage starting");
    let stages = hudstream_archive::ArchiveStage::all(&store)
        .into_iter()
        .map(|stage| {
            let name = hudstream_runtime::worker::BatchHandler::stage(&stage);
            let run: futures::future::BoxFuture<'_, anyhow::Result<()>> = Box::pin(run_stage(
                &config.kafka,
                limits,
                stage,
                appender.clone(),
                shutdown.clone(),
            ));
            (name, run)
        })
        .collect();
    run_together(&shutdown, stages).await
}

/// What each stage's `/readyz` asks: the broker, and ClickHouse for the stages that use it.
pub fn health(config: &Config, uses_clickhouse: bool) -> anyhow::Result<Health> {
    let mut health =
        Health::new().broker(&Appender::new(&config.kafka).context("creating the Kafka producer")?);
    if uses_clickhouse {
        health = health.clickhouse(&ClickHouse::new(&config.clickhouse)?);
    }
    Ok(health)
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
    let metrics = async {
        if config.telemetry.metrics_listen.is_empty() {
            Ok(())
        } else {
            hudstream_runtime::telemetry::serve_metrics(
                &config.telemetry.metrics_listen,
                health(config, true)?,
                shutdown.clone(),
            )
            .await
        }
    };
    let mut stages: Vec<(
        &'static str,
        futures::future::BoxFuture<'_, anyhow::Result<()>>,
    )> = vec![
        (
            "gateway",
            Box::pin(run_gateway(config, gateway_listener, shutdown.clone())),
        ),
        (
            "processors",
            Box::pin(run_processors(config, shutdown.clone())),
        ),
        (
            "log stages",
            Box::pin(run_log_stages(config, shutdown.clone())),
        ),
        (
            "projections",
            Box::pin(run_projections(config, shutdown.clone())),
        ),
        (
            "api",
            Box::pin(run_api(config, api_listener, shutdown.clone())),
        ),
        ("metrics", Box::pin(metrics)),
    ];
    if config.reconcile.enabled {
        stages.push((
            "reconciler",
            Box::pin(run_reconciler(config, shutdown.clone())),
        ));
    }
    if config.archive.enabled {
        stages.push(("archive", Box::pin(run_archive(config, shutdown.clone()))));
    }
    run_together(&shutdown, stages).await
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
