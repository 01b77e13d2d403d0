//! The one list of stages: what runs, what each needs, and how it starts.
//!
//! `hudstream <stage>` runs one (its subcommands come from this list), `hudstream run` runs
//! every stage its configuration enables in one process, the end-to-end harness starts them
//! in-process the same way, and the deployment-file test checks that each is deployed. A new
//! stage is one more entry of [`STAGES`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use tokio::net::TcpListener;

use hudstream_classifier::{Options, RulesetFile};
use hudstream_github::GitHub;
use hudstream_logs::{ClassifyStage, LogFetchStage};
use hudstream_projections::ProjectionStage;
use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::kafka::{run_stage, Appender};
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::store::BlobStore;
use hudstream_runtime::worker::{BatchHandler, PerRecord, Processor};
use hudstream_runtime::Config;
use hudstream_schemas::topics::{
    HUD_JOB_LOG_V1, HUD_WORKFLOW_JOB_V1, HUD_WORKFLOW_RUN_V1, TESTS_REPORTS,
};

/// Where a stage answers HTTP (`/healthz`, `/readyz`, `/metrics` and its own endpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http {
    /// On a listener of its own, at this setting (`gateway.listen`, `api.listen`).
    Own(&'static str),
    /// On `telemetry.metrics_listen`, served beside it.
    Metrics,
}

/// A pass a stage can make once and exit (`hudstream <stage> --once [--dry-run]`).
pub struct Once {
    pub about: &'static str,
    pub run: fn(&Config, bool) -> BoxFuture<'_, anyhow::Result<()>>,
}

/// One long-running stage.
pub struct Stage {
    /// Its subcommand, and its name in deployments.
    pub name: &'static str,
    pub about: &'static str,
    /// Whether it needs ClickHouse (its `/readyz` asks it; the broker is asked for all).
    pub uses_clickhouse: bool,
    pub http: Http,
    /// Whether `hudstream run` (and the test harness) runs it under this configuration.
    pub in_run: fn(&Config) -> bool,
    /// Runs it until `shutdown`. A stage with [`Http::Own`] takes a bound listener, or binds
    /// its setting's address when given none.
    pub start:
        fn(&Config, Option<TcpListener>, CancellationToken) -> BoxFuture<'_, anyhow::Result<()>>,
    pub once: Option<Once>,
}

/// Every stage, in the order `run` starts them.
pub const STAGES: &[Stage] = &[
    Stage {
        name: "gateway",
        about: "Serve the webhook gateway (GitHub, OOT results, CircleCI, log uploads).",
        uses_clickhouse: false,
        http: Http::Own("gateway.listen"),
        in_run: always,
        start: |c, l, s| Box::pin(run_gateway(c, l, s)),
        once: None,
    },
    Stage {
        name: "process",
        about: "Run the processors (raw topics → derived topics).",
        uses_clickhouse: false,
        http: Http::Metrics,
        in_run: always,
        start: |c, _, s| Box::pin(run_processors(c, s)),
        once: None,
    },
    Stage {
        name: "logs",
        about: "Run the log fetcher and the classifier (jobs → stored logs → verdicts).",
        uses_clickhouse: false,
        http: Http::Metrics,
        in_run: always,
        start: |c, _, s| Box::pin(run_log_stages(c, s)),
        once: None,
    },
    Stage {
        name: "tests",
        about: "Run the test-report parser and the artifact fetcher (stored reports → pages of test cases and summaries).",
        uses_clickhouse: false,
        http: Http::Metrics,
        in_run: |c| c.tests.enabled,
        start: |c, _, s| Box::pin(run_test_report_stages(c, s)),
        once: None,
    },
    Stage {
        name: "project",
        about: "Run the projections (derived topics → ClickHouse).",
        uses_clickhouse: true,
        http: Http::Metrics,
        in_run: always,
        start: |c, _, s| Box::pin(run_projections(c, s)),
        once: None,
    },
    Stage {
        name: "api",
        about: "Serve the read API and the HUD pages.",
        uses_clickhouse: true,
        http: Http::Own("api.listen"),
        in_run: always,
        start: |c, l, s| Box::pin(run_api(c, l, s)),
        once: None,
    },
    Stage {
        name: "reconcile",
        about: "Ask GitHub about jobs and runs that lost webhooks left stale, and append what it says to the raw topics (marked `hudstream-origin: reconciler`); a pass every reconcile.interval_ms.",
        uses_clickhouse: true,
        http: Http::Metrics,
        in_run: |c| c.reconcile.enabled,
        start: |c, _, s| Box::pin(run_reconciler(c, s)),
        once: Some(Once {
            about: "One pass, print what it did, and exit.",
            run: |c, dry_run| Box::pin(crate::commands::reconcile::once(c, dry_run)),
        }),
    },
    Stage {
        name: "drci",
        about: "Keep Dr.CI's comment on each pull request with recent job activity, edited when the class of any of its jobs changes (posts with the [logs] GitHub credentials); a pass every drci.interval_ms.",
        uses_clickhouse: true,
        http: Http::Metrics,
        in_run: |c| c.drci.enabled,
        start: |c, _, s| Box::pin(run_drci(c, s)),
        once: Some(Once {
            about: "One pass, print what it posted, and exit.",
            run: |c, dry_run| Box::pin(crate::commands::drci::once(c, dry_run)),
        }),
    },
    Stage {
        name: "archive",
        about: "Copy every raw topic into compressed, time-partitioned files in archive.store.",
        uses_clickhouse: false,
        http: Http::Metrics,
        in_run: |c| c.archive.enabled,
        start: |c, _, s| Box::pin(run_archive(c, s)),
        once: None,
    },
];

fn always(_: &Config) -> bool {
    true
}

/// The stage named `name`.
pub fn find(name: &str) -> Option<&'static Stage> {
    STAGES.iter().find(|s| s.name == name)
}

/// Every consumer of a topic in this configuration — (stage, topic), one consumer group
/// each: processors, the log stages that are enabled, then projections.
pub fn consumers(config: &Config) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = hudstream_processors::all()
        .iter()
        .map(|p| (p.stage(), p.input_topic()))
        .collect();
    if config.logs.enabled {
        if config.logs.fetch_from_github {
            out.push((hudstream_logs::fetch::STAGE, HUD_WORKFLOW_JOB_V1));
        }
        out.push((hudstream_logs::classify::STAGE, HUD_JOB_LOG_V1));
    }
    if config.tests.enabled {
        if config.tests.fetch_artifacts {
            out.push((hudstream_test_reports::fetch::STAGE, HUD_WORKFLOW_RUN_V1));
        }
        out.push((hudstream_test_reports::parse::STAGE, TESTS_REPORTS));
    }
    out.extend(
        hudstream_projections::all()
            .iter()
            .map(|e| (e.stage(), e.topic())),
    );
    out
}

/// Runs parts of one process side by side, each with its name as error context; the first to
/// fail cancels `shutdown`, so the others stop too.
pub async fn run_together(
    shutdown: &CancellationToken,
    parts: Vec<(&'static str, BoxFuture<'_, anyhow::Result<()>>)>,
) -> anyhow::Result<()> {
    futures::future::join_all(parts.into_iter().map(|(what, part)| async move {
        let result = part.await.context(what);
        if result.is_err() {
            shutdown.cancel();
        }
        result
    }))
    .await
    .into_iter()
    .collect()
}

/// Runs every handler of one stage with the consumer loop, one consumer group each.
async fn run_handlers<H: BatchHandler>(
    config: &Config,
    limits: hudstream_runtime::config::BatchLimits,
    handlers: Vec<H>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let appender = Appender::new(&config.kafka).context("creating the Kafka producer")?;
    let parts = handlers
        .into_iter()
        .map(|handler| {
            let name = handler.stage();
            let run: BoxFuture<'_, anyhow::Result<()>> = Box::pin(run_stage(
                &config.kafka,
                limits,
                handler,
                appender.clone(),
                shutdown.clone(),
            ));
            (name, run)
        })
        .collect();
    run_together(&shutdown, parts).await
}

/// Binds a listen address with an error that names the setting.
pub async fn bind(address: &str, setting: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} ({setting})"))
}

/// The listener given, else one bound to `address`.
async fn listening(
    given: Option<TcpListener>,
    address: &str,
    setting: &str,
) -> anyhow::Result<TcpListener> {
    match given {
        Some(listener) => Ok(listener),
        None => bind(address, setting).await,
    }
}

/// Runs the gateway on `listener` (else on `gateway.listen`) until shutdown.
pub async fn run_gateway(
    config: &Config,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = listening(listener, &config.gateway.listen, "gateway.listen").await?;
    let appender = Appender::new(&config.kafka).context("creating the Kafka producer")?;
    // POST /admin/backfill runs backfills with the gateway's producer (only with admin tokens).
    let backfills: Option<Arc<dyn hudstream_ingest::admin::Backfills>> = Some(Arc::new(
        hudstream_reconcile::backfill_runs::BackfillRuns::new(
            config,
            appender.clone(),
            shutdown.clone(),
        ),
    ));
    hudstream_ingest::serve(config, listener, appender, backfills, shutdown).await
}

/// Runs the read API on `listener` (else on `api.listen`) until shutdown.
pub async fn run_api(
    config: &Config,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = listening(listener, &config.api.listen, "api.listen").await?;
    let clickhouse = ClickHouse::new(&config.clickhouse)?;
    if !config.api.watch_trunks.is_empty() {
        tokio::spawn(hudstream_api::trunk::watch_trunks(
            clickhouse.clone(),
            config.api.watch_trunks.clone(),
            std::time::Duration::from_secs(config.api.trunk_check_interval_s.max(1)),
            shutdown.clone(),
        ));
    }
    let hot = config
        .api
        .hot_window
        .enabled
        .then(|| hudstream_api::hot_window::HotWindow::new(&config.api.hot_window));
    if let Some(hot) = &hot {
        tokio::spawn(hudstream_api::hot_window::feed::run(
            hot.clone(),
            clickhouse.clone(),
            config.kafka.clone(),
            // Applying a record to memory is cheap: no reason to wait for a batch to fill.
            hudstream_runtime::config::BatchLimits {
                linger: std::time::Duration::from_millis(20),
                ..config.pipeline.processor_batches()
            },
            shutdown.clone(),
        ));
    }
    let state = hudstream_api::ApiState { clickhouse, hot };
    hudstream_api::serve_with(listener, state, shutdown).await
}

/// Runs every processor until shutdown, each in its own consumer group.
pub async fn run_processors(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let handlers = hudstream_processors::all()
        .into_iter()
        .map(PerRecord)
        .collect();
    run_handlers(
        config,
        config.pipeline.processor_batches(),
        handlers,
        shutdown,
    )
    .await
}

/// Runs every projection until shutdown, each in its own consumer group. The tables are listed
/// in `hudstream_projections::all`.
pub async fn run_projections(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let clickhouse = ClickHouse::new(&config.clickhouse)?;
    let handlers = hudstream_projections::all()
        .into_iter()
        .map(|encoder| ProjectionStage::new(encoder, clickhouse.clone()))
        .collect();
    run_handlers(
        config,
        config.pipeline.projection_batches(),
        handlers,
        shutdown,
    )
    .await
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
    let store = BlobStore::open(&logs.store)?;
    let limits = config.pipeline.processor_batches();
    tracing::info!(store = ?store, ruleset = %rules.current().hash(), rules = rules.current().rules().len(), fetch_from_github = logs.fetch_from_github, "log stages starting");
    let fetch = if logs.fetch_from_github {
        let github = Arc::new(GitHub::from_config(logs, shutdown.clone())?);
        vec![LogFetchStage::new(
            github,
            store.clone(),
            logs.conclusions.clone(),
            logs.fetch_concurrency,
            logs.max_log_bytes,
        )]
    } else {
        Vec::new()
    };
    let classify = vec![ClassifyStage::new(
        store,
        rules,
        Options {
            context_depth: logs.context_depth,
        },
        logs.classify_concurrency,
        Duration::from_millis(logs.ruleset_reload_ms.max(100)),
    )];
    let parts: Vec<(&'static str, BoxFuture<'_, anyhow::Result<()>>)> = vec![
        (
            hudstream_logs::fetch::STAGE,
            Box::pin(run_handlers(config, limits, fetch, shutdown.clone())),
        ),
        (
            hudstream_logs::classify::STAGE,
            Box::pin(run_handlers(config, limits, classify, shutdown.clone())),
        ),
    ];
    run_together(&shutdown, parts).await
}

/// Runs the test-report parser, and the artifact fetcher unless `tests.fetch_artifacts` is
/// false, until shutdown (nothing when `tests.enabled` is false).
pub async fn run_test_report_stages(
    config: &Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use hudstream_test_reports::fetch::{ArtifactFetchStage, FetchSettings};
    use hudstream_test_reports::ParseStage;
    let tests = &config.tests;
    if !tests.enabled {
        tracing::info!("test reports are not parsed (tests.enabled = false)");
        return Ok(());
    }
    let store = BlobStore::open(&tests.store).with_context(|| {
        format!(
            "opening the test-report store (tests.store = {:?})",
            tests.store
        )
    })?;
    let limits = config.pipeline.processor_batches();
    tracing::info!(store = ?store, fetch_artifacts = tests.fetch_artifacts, "test-report stages starting");
    let fetch = if tests.fetch_artifacts {
        let github = GitHub::from_config(&config.logs, shutdown.clone())
            .context("the artifact fetcher's GitHub client (the [logs] github_* settings)")?;
        vec![ArtifactFetchStage::new(
            Arc::new(github),
            store.clone(),
            FetchSettings {
                patterns: tests.artifact_patterns.clone(),
                max_artifact_bytes: tests.max_artifact_bytes,
                max_report_bytes: tests.max_report_bytes,
                concurrency: tests.fetch_concurrency,
            },
        )]
    } else {
        Vec::new()
    };
    let parse = vec![ParseStage::new(store, tests.parse_concurrency)];
    let parts: Vec<(&'static str, BoxFuture<'_, anyhow::Result<()>>)> = vec![
        (
            hudstream_test_reports::fetch::STAGE,
            Box::pin(run_handlers(config, limits, fetch, shutdown.clone())),
        ),
        (
            hudstream_test_reports::parse::STAGE,
            Box::pin(run_handlers(
                config,
                parse_limits(limits),
                parse,
                shutdown.clone(),
            )),
        ),
    ];
    run_together(&shutdown, parts).await
}

/// The parser's batches: a pointer stands for a whole report (up to a gigabyte), so a batch
/// holds a few — enough to parse `parse_concurrency` at once, few enough that a retried batch
/// redoes little.
fn parse_limits(
    limits: hudstream_runtime::config::BatchLimits,
) -> hudstream_runtime::config::BatchLimits {
    hudstream_runtime::config::BatchLimits {
        max_records: limits.max_records.min(64),
        ..limits
    }
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

/// The Dr.CI poster for this configuration: the GitHub client of `[logs]`, the `[drci]`
/// settings. Its waits end on `shutdown`.
pub fn drci_poster(
    config: &Config,
    shutdown: CancellationToken,
) -> anyhow::Result<hudstream_drci::DrciPoster> {
    let github = GitHub::from_config(&config.logs, shutdown)
        .context("the Dr.CI poster's GitHub client (the [logs] github_* settings)")?;
    Ok(hudstream_drci::DrciPoster::new(
        ClickHouse::new(&config.clickhouse)?,
        github,
        config.drci.clone(),
    ))
}

/// Runs the Dr.CI poster until shutdown: a pass every `drci.interval_ms`.
pub async fn run_drci(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let poster = drci_poster(config, shutdown.clone())?;
    hudstream_drci::run(
        poster,
        Duration::from_millis(config.drci.interval_ms.max(1000)),
        shutdown,
    )
    .await;
    Ok(())
}

/// Runs the archive stage until shutdown: one consumer per raw topic, each writing its
/// batches into `archive.store`.
pub async fn run_archive(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = BlobStore::open(&config.archive.store).with_context(|| {
        format!(
            "opening the archive store (archive.store = {:?})",
            config.archive.store
        )
    })?;
    tracing::info!(store = ?store, "archive stage starting");
    let limits = config.archive.batches(&config.pipeline);
    let handlers = hudstream_archive::ArchiveStage::all(&store);
    run_handlers(config, limits, handlers, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names_are_unique_and_own_listeners_are_settings() {
        let mut names: Vec<&str> = STAGES.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), STAGES.len());
        for stage in STAGES {
            if let Http::Own(setting) = stage.http {
                assert!(setting.ends_with(".listen"), "{}: {setting}", stage.name);
            }
        }
    }
}
