//! Dispatch: each parsed one-shot command to the function in [`crate::commands`] that runs it.

use super::*;

pub(super) async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Run => crate::run_all(&config, shutdown_token()).await,
        Command::Migrate { print: false } => crate::commands::setup::migrate(&config).await,
        Command::Migrate { print: true } => crate::commands::setup::print_migrations(&config),
        Command::Topics => crate::commands::setup::topics(&config).await,
        Command::Feed {
            gateway,
            demo: true,
            seed,
            at,
            api,
            no_wait,
            shared,
            concurrency,
            ..
        } => {
            let shared = shared
                .or_else(|| std::env::var_os("HUDSTREAM_SHARED").map(PathBuf::from))
                .unwrap_or_else(|| hudstream_ingest::fixtures::default_dir().join("../.."));
            let args = crate::commands::demo::DemoArgs {
                gateway,
                api,
                no_wait,
                seed,
                at,
                shared,
                concurrency,
            };
            crate::commands::demo::run(&config, args).await
        }
        Command::Feed {
            gateway,
            dir,
            event,
            no_reports,
            ..
        } => {
            let reports = event.is_none() && !no_reports;
            crate::commands::feed::run(&config, gateway, dir, event, reports).await
        }
        Command::Backfill {
            repository,
            since,
            branch,
            dry_run,
        } => {
            let args = crate::commands::backfill::BackfillArgs {
                repository,
                since,
                branch,
                dry_run,
            };
            crate::commands::backfill::run(&config, args).await
        }
        Command::Load {
            target,
            rate,
            duration,
            connections,
            payload_kib,
            rounds,
        } => {
            let args = load::LoadArgs {
                target,
                rate,
                duration: Duration::from_secs(duration.max(1)),
                connections: connections.max(1),
                payload_kib,
                rounds,
            };
            load::run(&config, args).await
        }
        Command::Bench {
            deliveries,
            concurrency,
            rows,
            replay_events,
            clickhouse_tcp_port,
        } => {
            let args = bench::BenchArgs {
                deliveries,
                concurrency: concurrency.max(1),
                rows,
                replay_events,
                clickhouse_tcp_port,
            };
            bench::run(&config, args).await
        }
        Command::BenchTests {
            jobs,
            reports_per_job,
            cases_per_report,
            concurrency,
            clickhouse_tcp_port,
        } => {
            let args = crate::commands::bench_tests::TestBenchArgs {
                jobs: jobs.max(1),
                reports_per_job: reports_per_job.max(1),
                cases_per_report: cases_per_report.max(1),
                concurrency,
                clickhouse_tcp_port,
            };
            crate::commands::bench_tests::run(&config, args).await
        }
        Command::BenchTestsRead {
            jobs,
            cases_per_job,
            days,
            requests,
            keep,
        } => {
            let args = crate::commands::bench_tests_read::TestReadBenchArgs {
                jobs: jobs.max(1),
                cases_per_job: cases_per_job.max(1),
                days: days.max(1),
                requests: requests.max(1),
                keep,
            };
            crate::commands::bench_tests_read::run(&config, args).await
        }
        Command::BenchFresh { rate, seconds } => {
            let args = crate::commands::bench_fresh::FreshBenchArgs {
                rate: rate.max(1),
                seconds: seconds.max(1),
            };
            crate::commands::bench_fresh::run(&config, args).await
        }
        Command::BenchTriage { jobs } => {
            let args = crate::commands::bench_triage::TriageBenchArgs { jobs: jobs.max(1) };
            crate::commands::bench_triage::run(&config, args).await
        }
        Command::BenchCluster {
            single_url,
            shard_urls,
            rows,
        } => {
            crate::commands::bench_cluster::run(&config, &single_url, &shard_urls, rows.max(1))
                .await
        }
        Command::BenchRead {
            jobs,
            commits,
            dataset,
            requests,
            keep,
            at_scale,
        } => {
            let args = bench_read::ReadBenchArgs {
                jobs,
                commits: commits.max(1),
                dataset,
                requests: requests.max(1),
                keep,
                at_scale,
            };
            bench_read::run(&config, args).await
        }
        Command::DeadLetters { action } => {
            crate::commands::dead_letters::run(&config, action).await
        }
        Command::Replay {
            table,
            dry_run,
            from_archive: false,
            allow_shrink,
            ..
        } => crate::commands::replay::from_kafka(&config, &table, dry_run, allow_shrink).await,
        Command::Replay {
            table,
            dry_run,
            from_archive: true,
            archive,
            allow_gaps,
            allow_shrink,
        } => {
            let spec = archive.unwrap_or_else(|| config.archive.store.clone());
            crate::commands::replay::from_archive(
                &config,
                &table,
                &spec,
                dry_run,
                allow_gaps,
                allow_shrink,
            )
            .await
        }
        Command::Classify { log, ruleset } => {
            crate::commands::classify::run(&config, &log, ruleset.as_deref())
        }
        Command::Reclassify {
            jobs,
            since,
            until,
            ruleset,
            dry_run,
        } => {
            let args = reclassify::Args {
                jobs,
                since,
                until,
                ruleset,
                dry_run,
            };
            reclassify::run(&config, args).await
        }
        Command::Status => {
            print!("{}", crate::commands::status::report(&config).await?);
            Ok(())
        }
        Command::Config => {
            println!("{}", serde_json::to_string_pretty(&config)?);
            Ok(())
        }
    }
}
