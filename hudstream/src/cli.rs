//! The `hudstream` command line: grammar and start-up (here) and dispatch (`dispatch.rs`). Every stage of [`crate::stages::STAGES`]
//! is a subcommand (from that list), `run` runs them all in one process, and the operator's
//! one-shot commands each have their body in a file of [`crate::commands`].
//! `src/main.rs` only picks the allocator and calls [`main`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use hudstream_runtime::shutdown::{cancel_on_signal, CancellationToken};
use hudstream_runtime::telemetry;
use hudstream_runtime::Config;

use crate::commands::{bench, bench_read, load, reclassify};
use crate::stages::{Http, Stage, STAGES};

mod dispatch;
use dispatch::run;

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

/// The one-shot commands (the stages' subcommands come from [`STAGES`]).
#[derive(Subcommand)]
enum Command {
    /// Run every stage in one process.
    Run,
    /// Apply pending ClickHouse migrations.
    Migrate {
        /// Print every migration's DDL as it would run here (on a cluster: translated into
        /// replicated local and distributed tables `ON CLUSTER`) and apply nothing.
        #[arg(long)]
        print: bool,
    },
    /// Create the catalogue topics that do not exist yet, and list the catalogue.
    Topics,
    /// Send the real sample webhooks to a gateway, signed with the first configured webhook
    /// secret; then upload the real test reports for the sample jobs (with the first upload
    /// token), with a disabled-test issue for one of their flaky tests.
    Feed {
        /// Gateway base URL; defaults to http://<gateway.listen>.
        #[arg(long)]
        gateway: Option<String>,
        /// Fixtures folder (with manifest.json).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Only deliveries of this event type (and no test reports).
        #[arg(long)]
        event: Option<String>,
        /// Send no test reports.
        #[arg(long)]
        no_reports: bool,
        /// Instead of the sample webhooks, send a generated day of one busy repository
        /// (pytorch-demo/pytorch, shaped like a real day of pytorch jobs) and wait until the
        /// API shows it whole.
        #[arg(long, conflicts_with_all = ["dir", "event", "no_reports"])]
        demo: bool,
        /// The demo day's seed: the same seed (and --at) sends the same bytes.
        #[arg(long, default_value_t = 1, requires = "demo")]
        seed: u64,
        /// When the demo day ends (RFC 3339); default: now, rounded down to ten minutes.
        #[arg(long, requires = "demo")]
        at: Option<String>,
        /// The read API whose grid the demo waits on; defaults to http://<api.listen>.
        #[arg(long, requires = "demo")]
        api: Option<String>,
        /// Do not wait for the API to show the demo day.
        #[arg(long, requires = "demo")]
        no_wait: bool,
        /// The shared data folder (datasets, classifier logs, test reports); defaults to
        /// $HUDSTREAM_SHARED, else two folders above the fixtures.
        #[arg(long, requires = "demo")]
        shared: Option<PathBuf>,
        /// Demo requests in flight at once.
        #[arg(long, default_value_t = 512, requires = "demo")]
        concurrency: usize,
    },
    /// Append a repository's history from GitHub's API (runs and their jobs, the branch's
    /// commits, pull requests) as the webhooks GitHub would have sent; resumable.
    Backfill {
        /// The repository, owner/name.
        #[arg(long = "repo")]
        repository: String,
        /// How far back: 7d, 12h, 30m, a date (2026-11-28) or an RFC 3339 instant.
        #[arg(long, default_value = "7d")]
        since: String,
        /// The branch whose commits to append (default: the repository's default branch).
        #[arg(long)]
        branch: Option<String>,
        /// Count what would be appended; append nothing, keep no checkpoint.
        #[arg(long)]
        dry_run: bool,
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
        /// Swap a rebuilt table in even if it lacks entities the live table has, holds older
        /// versions of them, or the log no longer starts at offset 0 (otherwise the rebuild is
        /// refused before the swap and nothing changes).
        #[arg(long)]
        allow_shrink: bool,
    },
    /// Print the verdict the classifier would give a log (a file, or - for standard input;
    /// gzip or plain): rule, line, captures, context and signature, as JSON. Try a new rule on
    /// a log before shipping it.
    Classify {
        /// The log file, or `-`.
        log: String,
        /// The ruleset to use instead of logs.ruleset.
        #[arg(long)]
        ruleset: Option<PathBuf>,
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
    /// The test-report write path: a PyTorch-sized commit of reports uploaded, parsed and
    /// projected (cases/s from upload to rows), and the test_case projection against
    /// clickhouse-client.
    BenchTests {
        /// Jobs whose reports are uploaded.
        #[arg(long, default_value_t = 400)]
        jobs: usize,
        /// Reports per job.
        #[arg(long, default_value_t = 5)]
        reports_per_job: usize,
        /// Test cases per report.
        #[arg(long, default_value_t = 500)]
        cases_per_report: usize,
        /// Concurrent uploads.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// ClickHouse's native (TCP) port, for the clickhouse-client reference figure.
        #[arg(long)]
        clickhouse_tcp_port: Option<u16>,
    },
    /// Fill a database of its own with a month of test results (50 M test cases by default)
    /// and time every test endpoint: p50/p99 against the goals.
    BenchTestsRead {
        /// Jobs with test results.
        #[arg(long, default_value_t = 20_000)]
        jobs: u64,
        /// Test cases per job.
        #[arg(long, default_value_t = 2_500)]
        cases_per_job: u64,
        /// Days they span.
        #[arg(long, default_value_t = 30)]
        days: u64,
        /// Requests per endpoint.
        #[arg(long, default_value_t = 100)]
        requests: usize,
        /// Keep the generated database instead of dropping it.
        #[arg(long)]
        keep: bool,
    },
    /// Run the whole pipeline in this process and time how soon a failed job's class shows in
    /// Dr.CI after its completed webhook and its log were acknowledged.
    BenchTriage {
        /// Failed jobs timed, one at a time (after a warm-up).
        #[arg(long, default_value_t = 50)]
        jobs: usize,
    },
    /// The projection writer's rows/s into one ClickHouse server (`--single-url`) and into the
    /// configured cluster (`clickhouse.cluster`), the same rows and batches.
    BenchCluster {
        /// The one server to compare with.
        #[arg(long)]
        single_url: String,
        /// One node of each shard, in shard order (comma-separated): also measure the writer
        /// routing rows to the shards' local tables itself.
        #[arg(long, value_delimiter = ',')]
        shard_urls: Vec<String>,
        /// Jobs written per round (three rounds, the median).
        #[arg(long, default_value_t = 200_000)]
        rows: usize,
    },
    /// How soon a webhook shows in the grid (hot window and ClickHouse) while deliveries arrive
    /// at a steady rate: webhook 2xx → visible, p50/p99.
    BenchFresh {
        /// Deliveries a second.
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        /// For how long.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
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
        /// Then time the grid again over a history this many jobs long (the same jobs a
        /// commit, more commits; `hud bench` passes 10,000,000) and print its p99 against the
        /// first run's (issue #18: the cost grows with the page, not with history).
        #[arg(long)]
        at_scale: Option<u64>,
    },
}

#[derive(Subcommand)]
pub enum DeadLetterAction {
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

/// The whole grammar: the one-shot commands, and a subcommand per stage.
fn grammar() -> clap::Command {
    let mut command = Cli::command();
    for stage in STAGES {
        let mut sub = clap::Command::new(stage.name).about(stage.about);
        if let Some(once) = &stage.once {
            sub = sub
                .arg(
                    Arg::new("once")
                        .long("once")
                        .action(ArgAction::SetTrue)
                        .help(once.about),
                )
                .arg(
                    Arg::new("dry_run")
                        .long("dry-run")
                        .action(ArgAction::SetTrue)
                        .requires("once")
                        .help("With --once: show what the pass would do; change nothing."),
                );
        }
        command = command.subcommand(sub);
    }
    command
}

/// The names of every subcommand (`gateway`, `migrate`, `replay`, …), for checks of the
/// deployment files that invoke them.
pub fn subcommands() -> Vec<String> {
    grammar()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

/// Parses the command line and runs the command; the process's exit code.
#[tokio::main]
pub async fn main() -> std::process::ExitCode {
    let matches = grammar().get_matches();
    let config = match Config::load(matches.get_one::<PathBuf>("config").map(PathBuf::as_path)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hudstream: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init_logging(&config.telemetry);
    let result = match matches.subcommand() {
        Some((name, args)) if crate::stages::find(name).is_some() => {
            let stage = crate::stages::find(name).expect("checked");
            run_stage(stage, args, config).await
        }
        _ => match Cli::from_arg_matches(&matches) {
            Ok(cli) => run(cli.command, config).await,
            Err(e) => e.exit(),
        },
    };
    match result {
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

/// `hudstream <stage>`: the stage until a signal, with `/metrics`, `/healthz` and `/readyz` on
/// telemetry.metrics_listen unless it serves HTTP itself; or one pass with `--once`.
async fn run_stage(stage: &Stage, args: &ArgMatches, config: Config) -> anyhow::Result<()> {
    if let Some(once) = &stage.once {
        if args.get_flag("once") {
            return (once.run)(&config, args.get_flag("dry_run")).await;
        }
    }
    let shutdown = shutdown_token();
    let run = (stage.start)(&config, None, shutdown.clone());
    if stage.http != Http::Metrics {
        return run.await;
    }
    // A metrics endpoint that cannot listen is worth a warning, not the stage.
    let (result, _) = tokio::join!(run, async {
        if let Err(e) = crate::serve_metrics(&config, &[stage], shutdown.clone()).await {
            tracing::warn!(error = format!("{e:#}"), "metrics endpoint unavailable");
        }
    });
    result
}
