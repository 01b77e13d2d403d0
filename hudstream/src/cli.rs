//! The `hudstream` command line: every stage of the pipeline as a subcommand, or all of them at
//! once, plus the operator's tools (migrate, topics, replay, status, dead letters, bench).
//! `src/main.rs` only picks the allocator and calls [`main`].

use crate::{bench, load};

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use hudstream_ingest::fixtures;
use hudstream_ingest::signature::sign_sha256;
use hudstream_runtime::shutdown::{cancel_on_signal, CancellationToken};
use hudstream_runtime::telemetry;
use hudstream_runtime::Config;

#[derive(Parser)]
#[command(
    name = "hudstream",
    version,
    about = "An event-sourced CI data platform: GitHub webhooks → Kafka → ClickHouse → HUD."
)]
struct Cli {
    /// Configuration file (TOML); environment variables HUDSTREAM_<SECTION>__<KEY> override it.
    #[arg(long, short, global = true, env = "HUDSTREAM_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the webhook gateway.
    Gateway,
    /// Run the processors (raw topics → derived topics).
    Process,
    /// Run the projections (derived topics → ClickHouse).
    Project,
    /// Run the log fetcher and the classifier (jobs → stored logs → verdicts).
    Logs,
    /// Serve the read API.
    Api,
    /// Ask GitHub about jobs and runs that lost webhooks left stale, and append what it says to
    /// the raw topics (marked `hudstream-origin: reconciler`); a pass every
    /// reconcile.interval_ms, or one with --once.
    Reconcile {
        /// One pass, print what it did, and exit.
        #[arg(long)]
        once: bool,
        /// With --once: ask GitHub and show what would be appended; append nothing.
        #[arg(long, requires = "once")]
        dry_run: bool,
    },
    /// Copy every raw topic into compressed, time-partitioned files in archive.store.
    Archive,
    /// Run every stage in one process.
    Run,
    /// Apply pending ClickHouse migrations.
    Migrate,
    /// Create the catalogue topics that do not exist yet, and list the catalogue.
    Topics,
    /// Send the real sample webhooks to a gateway, signed with the first configured webhook secret.
    Feed {
        /// Gateway base URL; defaults to http://<gateway.listen>.
        #[arg(long)]
        gateway: Option<String>,
        /// Fixtures folder (with manifest.json).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Only deliveries of this event type.
        #[arg(long)]
        event: Option<String>,
    },
    /// Print the effective configuration (secrets masked).
    Config,
    /// Rebuild a table (or `all`) from the beginning of its topic into a shadow table, then swap
    /// it in; the live projection keeps serving the old table until the swap.
    Replay {
        /// A table name (see `hudstream status`) or `all`.
        table: String,
        /// Print what would be rebuilt and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Rebuild from the archive (archive.store, or --archive) and then Kafka past what it
        /// holds, through the processors, instead of from the tables' own topics.
        #[arg(long)]
        from_archive: bool,
        /// The archive to read with --from-archive, if not archive.store.
        #[arg(long, requires = "from_archive")]
        archive: Option<String>,
        /// With --from-archive: swap the rebuilt tables in even when records are missing from
        /// both the archive and Kafka (otherwise the live tables are left as they are).
        #[arg(long, requires = "from_archive")]
        allow_gaps: bool,
    },
    /// Classify stored logs again (after a ruleset change); the new verdicts supersede the old.
    Reclassify {
        /// A job, as owner/repo/job_id; repeat for more.
        #[arg(long = "job")]
        jobs: Vec<String>,
        /// Every job that completed at or after this UTC instant (2026-11-01 or 2026-11-01T12:00:00Z).
        #[arg(long, conflicts_with = "jobs")]
        since: Option<String>,
        /// ...and before this one (default: now).
        #[arg(long, conflicts_with = "jobs", requires = "since")]
        until: Option<String>,
        /// Use this ruleset instead of logs.ruleset.
        #[arg(long)]
        ruleset: Option<PathBuf>,
        /// Classify and show what would change; append nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print each stage's committed offsets and lag, each table's rows, and the projections'
    /// figures from a running process's metrics endpoint.
    Status,
    /// List dead letters, or re-drive them to the topics they came from after a fix.
    DeadLetters {
        #[command(subcommand)]
        action: DeadLetterAction,
    },
    /// Load-test the gateway with real signed deliveries, against a raw-producer baseline.
    Load {
        /// What to load: the gateway over HTTP, the raw producer, or both (prints the ratio).
        #[arg(long, value_enum, default_value = "both")]
        target: load::Target,
        /// Requests per second; 0 sends flat out.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Seconds per scenario.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Concurrent connections (and records in flight for the baseline).
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Payload size in KiB (real fixtures padded with whitespace).
        #[arg(long, default_value_t = 10)]
        payload_kib: usize,
        /// With --target both: alternating rounds of each, compared by their medians.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Measure each stage on the configured broker and ClickHouse (in a namespace of its own).
    Bench {
        /// Deliveries sent through the gateway and drained into ClickHouse.
        #[arg(long, default_value_t = 20_000)]
        deliveries: usize,
        /// Concurrent HTTP requests to the gateway.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Rows for the projection insert benchmark.
        #[arg(long, default_value_t = 500_000)]
        rows: usize,
        /// Job events for the replay benchmark.
        #[arg(long, default_value_t = 1_000_000)]
        replay_events: usize,
        /// ClickHouse's native (TCP) port, for the clickhouse-client reference figure.
        #[arg(long)]
        clickhouse_tcp_port: Option<u16>,
    },
    /// Fill a database of its own with a pytorch-sized CI history (shaped like a real day of
    /// pytorch jobs) and time every read endpoint: p50/p99 against the goals.
    BenchRead {
        /// Jobs to generate (rounded to whole commits).
        #[arg(long, default_value_t = 1_000_000)]
        jobs: u64,
        /// Commits on main they run on.
        #[arg(long, default_value_t = 2_500)]
        commits: u64,
        /// The real job dataset whose names and failure rates shape the jobs.
        #[arg(
            long,
            default_value = "../shared/reference/datasets/pytorch_jobs_2024-08-14.csv"
        )]
        dataset: PathBuf,
        /// Requests per endpoint.
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// Keep the generated database (its name is printed) instead of dropping it.
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Subcommand)]
enum DeadLetterAction {
    /// Print every dead letter: where it came from, which stage set it aside, and why.
    List {
        /// Only those of this stage (e.g. process.workflow_job).
        #[arg(long)]
        stage: Option<String>,
        /// Stop reading after the topic has been quiet this long.
        #[arg(long, default_value_t = 2000)]
        idle_ms: u64,
    },
    /// Append dead letters again, unchanged, to their source topics.
    Redrive {
        /// Only those of this stage.
        #[arg(long)]
        stage: Option<String>,
        /// Only those from this source topic (catalogue name, e.g. github.workflow_job).
        #[arg(long)]
        source_topic: Option<String>,
        /// Show what would be re-driven, append nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, default_value_t = 2000)]
        idle_ms: u64,
    },
}

/// The names of every subcommand (`gateway`, `migrate`, `replay`, …), for checks of the
/// deployment files that invoke them.
pub fn subcommands() -> Vec<String> {
    use clap::CommandFactory;
    Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

/// Parses the command line and runs the command; the process's exit code.
#[tokio::main]
pub async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hudstream: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init_logging(&config.telemetry);
    match run(cli.command, config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hudstream: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    cancel_on_signal(token.clone());
    token
}

/// Runs `stage` with `/metrics`, `/healthz` and `/readyz` on telemetry.metrics_listen (its
/// readiness: the broker, and ClickHouse when `uses_clickhouse`).
async fn with_metrics(
    config: &Config,
    uses_clickhouse: bool,
    shutdown: CancellationToken,
    stage: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    if config.telemetry.metrics_listen.is_empty() {
        return stage.await;
    }
    let health = crate::health(config, uses_clickhouse)?;
    let (result, _) = tokio::join!(stage, async {
        let r =
            telemetry::serve_metrics(&config.telemetry.metrics_listen, health, shutdown.clone())
                .await;
        if let Err(e) = &r {
            tracing::warn!(error = format!("{e:#}"), "metrics endpoint unavailable");
        }
    });
    result
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Gateway => {
            let shutdown = shutdown_token();
            let listener = crate::bind(&config.gateway.listen, "gateway.listen").await?;
            crate::run_gateway(&config, listener, shutdown).await
        }
        Command::Process => {
            let shutdown = shutdown_token();
            with_metrics(
                &config,
                false,
                shutdown.clone(),
                crate::run_processors(&config, shutdown.clone()),
            )
            .await
        }
        Command::Project => {
            let shutdown = shutdown_token();
            with_metrics(
                &config,
                true,
                shutdown.clone(),
                crate::run_projections(&config, shutdown.clone()),
            )
            .await
        }
        Command::Logs => {
            let shutdown = shutdown_token();
            with_metrics(
                &config,
                false,
                shutdown.clone(),
                crate::run_log_stages(&config, shutdown.clone()),
            )
            .await
        }
        Command::Reconcile { once: false, .. } => {
            let shutdown = shutdown_token();
            with_metrics(
                &config,
                true,
                shutdown.clone(),
                crate::run_reconciler(&config, shutdown.clone()),
            )
            .await
        }
        Command::Reconcile {
            once: true,
            dry_run,
        } => reconcile_once(&config, dry_run).await,
        Command::Archive => {
            let shutdown = shutdown_token();
            with_metrics(
                &config,
                false,
                shutdown.clone(),
                crate::run_archive(&config, shutdown.clone()),
            )
            .await
        }
        Command::Api => {
            let shutdown = shutdown_token();
            let listener = crate::bind(&config.api.listen, "api.listen").await?;
            crate::run_api(&config, listener, shutdown).await
        }
        Command::Run => crate::run_all(&config, shutdown_token()).await,
        Command::Migrate => {
            let applied = crate::migrate(&config).await?;
            println!(
                "database {}: {} migration(s) applied {:?}",
                config.clickhouse.database,
                applied.len(),
                applied
            );
            Ok(())
        }
        Command::Topics => {
            let created = crate::create_topics(&config).await?;
            for topic in hudstream_schemas::topics::catalogue() {
                let name = config.kafka.topic(&topic.name);
                let mark = if created.contains(&name) {
                    "created"
                } else {
                    "exists "
                };
                println!("{mark}  {name:<40} {:?}  key: {}", topic.kind, topic.key);
            }
            Ok(())
        }
        Command::Feed {
            gateway,
            dir,
            event,
        } => feed(&config, gateway, dir, event).await,
        Command::Load {
            target,
            rate,
            duration,
            connections,
            payload_kib,
            rounds,
        } => {
            load::run(
                &config,
                load::LoadArgs {
                    target,
                    rate,
                    duration: Duration::from_secs(duration.max(1)),
                    connections: connections.max(1),
                    payload_kib,
                    rounds,
                },
            )
            .await
        }
        Command::Bench {
            deliveries,
            concurrency,
            rows,
            replay_events,
            clickhouse_tcp_port,
        } => {
            bench::run(
                &config,
                bench::BenchArgs {
                    deliveries,
                    concurrency: concurrency.max(1),
                    rows,
                    replay_events,
                    clickhouse_tcp_port,
                },
            )
            .await
        }
        Command::BenchRead {
            jobs,
            commits,
            dataset,
            requests,
            keep,
        } => {
            crate::read_bench::run(
                &config,
                crate::read_bench::ReadBenchArgs {
                    jobs,
                    commits: commits.max(1),
                    dataset,
                    requests: requests.max(1),
                    keep,
                },
            )
            .await
        }
        Command::DeadLetters { action } => dead_letters(&config, action).await,
        Command::Replay {
            table,
            dry_run,
            from_archive: false,
            ..
        } => replay(&config, &table, dry_run).await,
        Command::Replay {
            table,
            dry_run,
            from_archive: true,
            archive,
            allow_gaps,
        } => {
            let spec = archive.unwrap_or_else(|| config.archive.store.clone());
            replay_from_archive(&config, &table, &spec, dry_run, allow_gaps).await
        }
        Command::Reclassify {
            jobs,
            since,
            until,
            ruleset,
            dry_run,
        } => {
            crate::reclassify::run(
                &config,
                crate::reclassify::Args {
                    jobs,
                    since,
                    until,
                    ruleset,
                    dry_run,
                },
            )
            .await
        }
        Command::Status => {
            print!("{}", crate::status::report(&config).await?);
            Ok(())
        }
        Command::Config => {
            println!("{}", serde_json::to_string_pretty(&config)?);
            Ok(())
        }
    }
}

async fn replay(config: &Config, which: &str, dry_run: bool) -> anyhow::Result<()> {
    let replayer = crate::replayer(config)?;
    let tables = crate::tables_to_replay(which)?;
    if dry_run {
        println!("dry run: nothing is changed");
        for encoder in &tables {
            let plan = replayer.plan(encoder).await?;
            let partitions: Vec<String> = plan
                .partitions
                .iter()
                .map(|(p, (low, high))| format!("{p}:{low}..{high}"))
                .collect();
            println!(
                "would rebuild {}.{} from {} ({} events; partitions {}) into {}, then swap it in; {} rows stored now",
                config.clickhouse.database,
                plan.table,
                config.kafka.topic(&plan.topic),
                plan.events(),
                partitions.join(" "),
                plan.shadow,
                plan.rows_now
            );
        }
        return Ok(());
    }
    for encoder in tables {
        let table = encoder.table();
        let mut bar = ProgressBar::new(table);
        let report = replayer.replay(encoder, &mut |p| bar.show(p)).await?;
        bar.finish();
        println!(
            "{table}: {} events → {} rows in {:.1} s ({:.0} events/s), {} dead letter(s), {} caught up after the swap ({})",
            report.events,
            report.rows_written,
            report.elapsed.as_secs_f64(),
            report.events as f64 / report.elapsed.as_secs_f64().max(1e-9),
            report.dead_letters,
            report.caught_up,
            report.swap
        );
    }
    Ok(())
}

async fn reconcile_once(config: &Config, dry_run: bool) -> anyhow::Result<()> {
    let reconciler = crate::reconciler(config, shutdown_token())?;
    let clickhouse = hudstream_runtime::clickhouse::ClickHouse::new(&config.clickhouse)?;
    let appender = if dry_run {
        None
    } else {
        Some(hudstream_runtime::kafka::Appender::new(&config.kafka)?)
    };
    let (report, records) = reconciler.pass(&clickhouse, appender.as_ref()).await?;
    for record in &records {
        println!(
            "{} {} {}",
            if dry_run { "would append" } else { "appended" },
            config.kafka.topic(&record.topic),
            String::from_utf8_lossy(&record.key)
        );
    }
    println!("{report}");
    Ok(())
}

async fn replay_from_archive(
    config: &Config,
    which: &str,
    spec: &str,
    dry_run: bool,
    allow_gaps: bool,
) -> anyhow::Result<()> {
    let archive = hudstream_archive::Archive::open(spec)?;
    let (tables, not_raw) =
        hudstream_archive::rebuild::rebuildable(crate::tables_to_replay(which)?);
    for encoder in &not_raw {
        println!(
            "{}: not made of raw records; replay it from Kafka (`hudstream replay {}`)",
            encoder.table(),
            encoder.table()
        );
    }
    if dry_run {
        println!("dry run: nothing is changed");
        let topics: Vec<String> = hudstream_schemas::topics::catalogue()
            .into_iter()
            .filter(|t| t.kind == hudstream_schemas::topics::TopicKind::Raw)
            .map(|t| t.name)
            .collect();
        for topic in topics {
            let files = archive.files(&topic).await?;
            if let (Some(first), Some(last)) = (files.first(), files.last()) {
                println!(
                    "{topic}: {} file(s), {} to {}",
                    files.len(),
                    first.hour,
                    last.hour
                );
            }
        }
        for encoder in &tables {
            println!(
                "would rebuild {}.{} from the archive {spec}",
                config.clickhouse.database,
                encoder.table()
            );
        }
        return Ok(());
    }
    if tables.is_empty() {
        anyhow::bail!("nothing to rebuild from the archive");
    }
    let replayer = crate::replayer(config)?;
    let report =
        hudstream_archive::rebuild(&archive, &replayer, &config.kafka, tables, allow_gaps).await?;
    println!(
        "read {} archived record(s) from {} file(s) ({} duplicate(s) skipped) and {} the archive lacked from Kafka; {} derived, {} set aside by the processors (already dead letters), in {:.1} s",
        report.archived_records,
        report.files,
        report.duplicates,
        report.kafka_records,
        report.derived,
        report.dead_letters,
        report.elapsed.as_secs_f64()
    );
    for gap in &report.gaps {
        println!("gap (swapped in anyway, --allow-gaps): {gap}");
    }
    for t in &report.tables {
        println!(
            "{}: {} records → {} rows, {} dead letter(s), {} caught up after the swap ({})",
            t.table, t.events, t.rows_written, t.dead_letters, t.caught_up, t.swap
        );
    }
    if !report.gaps.is_empty() {
        anyhow::bail!(
            "{} gap(s): the rebuilt tables lack what no longer exists anywhere",
            report.gaps.len()
        );
    }
    Ok(())
}

/// A progress bar on stderr: redrawn in place on a terminal, a line every 5 s otherwise.
struct ProgressBar {
    table: &'static str,
    tty: bool,
    last: Option<std::time::Instant>,
}

impl ProgressBar {
    fn new(table: &'static str) -> Self {
        use std::io::IsTerminal;
        Self {
            table,
            tty: std::io::stderr().is_terminal(),
            last: None,
        }
    }

    fn show(&mut self, p: hudstream_projections::replay::Progress) {
        let every = if self.tty { 100 } else { 5000 };
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_millis(every))
        {
            return;
        }
        self.last = Some(std::time::Instant::now());
        let fraction = if p.events_total == 0 {
            1.0
        } else {
            (p.events_done as f64 / p.events_total as f64).min(1.0)
        };
        let filled = (fraction * 30.0) as usize;
        let eta = p
            .eta()
            .map_or("-".to_string(), |d| format!("{}s", d.as_secs()));
        let text = format!(
            "{:<18} [{}{}] {:>3.0}% {}/{} events {:>9.0} ev/s ETA {eta}",
            self.table,
            "#".repeat(filled),
            "-".repeat(30 - filled),
            fraction * 100.0,
            p.events_done,
            p.events_total,
            p.events_per_second()
        );
        if self.tty {
            eprint!("\r{text}\x1b[K");
        } else {
            eprintln!("{text}");
        }
    }

    fn finish(&self) {
        if self.tty && self.last.is_some() {
            eprintln!();
        }
    }
}

async fn dead_letters(config: &Config, action: DeadLetterAction) -> anyhow::Result<()> {
    use crate::dead_letters::{read_all, redrive};
    match action {
        DeadLetterAction::List { stage, idle_ms } => {
            let letters = read_all(config, Duration::from_millis(idle_ms)).await?;
            let shown: Vec<_> = letters
                .iter()
                .filter(|l| stage.as_deref().is_none_or(|s| s == l.stage))
                .collect();
            for l in &shown {
                println!(
                    "{}/{}  {:<24} {:<40} {}",
                    l.record.partition, l.record.offset, l.stage, l.source, l.reason
                );
            }
            println!(
                "{} dead letter(s){}",
                shown.len(),
                stage.map(|s| format!(" of stage {s}")).unwrap_or_default()
            );
            Ok(())
        }
        DeadLetterAction::Redrive {
            stage,
            source_topic,
            dry_run,
            idle_ms,
        } => {
            let letters: Vec<_> = read_all(config, Duration::from_millis(idle_ms))
                .await?
                .into_iter()
                .filter(|l| stage.as_deref().is_none_or(|s| s == l.stage))
                .filter(|l| source_topic.as_deref().is_none_or(|t| t == l.source_topic))
                .collect();
            if dry_run {
                for l in &letters {
                    println!(
                        "would re-drive {}/{} to {} ({})",
                        l.record.partition, l.record.offset, l.source_topic, l.reason
                    );
                }
                println!("{} dead letter(s) would be re-driven", letters.len());
                return Ok(());
            }
            let appender = hudstream_runtime::kafka::Appender::new(&config.kafka)?;
            let n = redrive(&appender, &letters).await?;
            println!("re-drove {n} dead letter(s) to their source topics");
            Ok(())
        }
    }
}

async fn feed(
    config: &Config,
    gateway: Option<String>,
    dir: Option<PathBuf>,
    event: Option<String>,
) -> anyhow::Result<()> {
    let secrets = hudstream_runtime::secret::collect(
        &config.gateway.webhook_secrets,
        &config.gateway.webhook_secret_files,
    )?;
    let secret = secrets
        .first()
        .context("feed signs with the first webhook secret (gateway.webhook_secrets or webhook_secret_files), and none is configured")?;
    let base = gateway.unwrap_or_else(|| format!("http://{}", config.gateway.listen));
    let url = format!("{}/github/webhook", base.trim_end_matches('/'));
    let dir = dir.unwrap_or_else(fixtures::default_dir);
    let deliveries = fixtures::load(&dir)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let (mut accepted, mut refused) = (0usize, 0usize);
    for d in deliveries
        .iter()
        .filter(|d| event.as_deref().is_none_or(|e| e == d.event))
    {
        let mut request = client
            .post(&url)
            .header("content-type", "application/json")
            .header("user-agent", "GitHub-Hookshot/hudstream-feed")
            .header("x-github-event", &d.event)
            .header("x-github-delivery", &d.delivery_id)
            .header("x-hub-signature-256", sign_sha256(secret, &d.body))
            .body(d.body.clone());
        for (name, value) in &d.headers {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("sending to {url}"))?;
        if response.status().is_success() {
            accepted += 1;
        } else {
            refused += 1;
            let status = response.status();
            eprintln!(
                "{}: {} {}",
                d.path.display(),
                status,
                response.text().await.unwrap_or_default()
            );
        }
    }
    println!(
        "fed {} deliveries from {} to {url}: {accepted} accepted, {refused} refused",
        accepted + refused,
        dir.display()
    );
    if refused > 0 {
        anyhow::bail!("{refused} deliveries were refused");
    }
    Ok(())
}
