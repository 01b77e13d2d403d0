//! `hudstream backfill --repo owner/name --since 7d [--branch B] [--dry-run]`: a repository's
//! history from GitHub's API (workflow runs and all their jobs, the branch's commits, pull
//! requests), appended to the raw topics as the webhooks GitHub would have sent, marked
//! `hudstream-origin: backfill` (`hudstream_reconcile::backfill` says how: windows, rate
//! limits, the checkpoint that makes it resumable). A progress line says what it is fetching.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context;

use hudstream_github::GitHub;
use hudstream_reconcile::backfill::{parse_since, Backfill, Plan, Progress};
use hudstream_runtime::kafka::Appender;
use hudstream_runtime::shutdown::{cancel_on_signal, CancellationToken};
use hudstream_runtime::Config;

pub struct BackfillArgs {
    pub repository: String,
    pub since: String,
    pub branch: Option<String>,
    pub dry_run: bool,
}

/// Renders progress: one rewritten line on a terminal, a line every few seconds otherwise.
pub fn progress_printer() -> impl FnMut(&Progress) + Send {
    let tty = std::io::stderr().is_terminal();
    let mut last = Instant::now() - Duration::from_secs(60);
    move |p: &Progress| {
        let done = p.doing == "done";
        if !tty && !done && last.elapsed() < Duration::from_secs(3) {
            return;
        }
        last = Instant::now();
        let left = p
            .rate_limit_remaining
            .map(|l| format!(" · {l} requests left this hour"))
            .unwrap_or_default();
        let line = format!(
            "[backfill] {} · {} {} · {} runs, {} jobs, {} commits, {} PRs · {} requests{left}",
            p.doing,
            p.appended,
            if p.dry_run { "to append" } else { "appended" },
            p.runs,
            p.jobs,
            p.commits,
            p.pulls,
            p.requests
        );
        if tty {
            eprint!("\r\x1b[K{line}");
            if done {
                eprintln!();
            }
        } else {
            eprintln!("{line}");
        }
    }
}

pub async fn run(config: &Config, args: BackfillArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.repository.split('/').filter(|p| !p.is_empty()).count() == 2,
        "--repo {:?}: expected owner/name",
        args.repository
    );
    let since_s =
        parse_since(&args.since, chrono::Utc::now().timestamp()).map_err(anyhow::Error::msg)?;
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let github = GitHub::from_config(&config.logs, shutdown.clone())
        .context("the backfill's GitHub client (the [logs] github_* settings)")?;
    let appender = if args.dry_run {
        None
    } else {
        Some(Appender::new(&config.kafka).context("creating the Kafka producer")?)
    };
    let backfill = Backfill {
        github: &github,
        appender: appender.as_ref(),
        checkpoint: Some(config.backfill.checkpoint(&args.repository)),
        min_rate_limit_remaining: config.backfill.min_rate_limit_remaining,
        max_wait: Duration::from_millis(config.backfill.max_rate_limit_wait_ms),
        shutdown,
    };
    let mut plan = Plan::new(&args.repository, since_s);
    plan.branch = args.branch;
    plan.dry_run = args.dry_run;
    let mut printer = progress_printer();
    let progress = backfill.run(&plan, &mut printer).await?;
    println!("{}: {progress}", args.repository);
    if progress.stopped.is_some() {
        anyhow::bail!(
            "the backfill of {} stopped before its end; its checkpoint is {}: run the same command again to resume",
            args.repository,
            config.backfill.checkpoint(&args.repository).display()
        );
    }
    Ok(())
}
