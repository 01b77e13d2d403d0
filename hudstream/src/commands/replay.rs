//! `hudstream replay <table|all> [--dry-run] [--allow-shrink] [--from-archive [--archive S]
//! [--allow-gaps]]`: rebuilds tables (`hudstream_replay`) and says what it did, with a progress
//! bar. A rebuild that would lose rows is refused before its swap unless `--allow-shrink`.

use std::time::Duration;

use hudstream_runtime::Config;

/// `hudstream replay <table|all> [--dry-run]`: from the tables' own topics.
pub async fn from_kafka(
    config: &Config,
    which: &str,
    dry_run: bool,
    allow_shrink: bool,
) -> anyhow::Result<()> {
    crate::allocator::keep_freed_memory();
    let mut replayer = crate::replayer(config)?;
    replayer.allow_shrink = allow_shrink;
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
            let truncated = plan.truncated();
            if !truncated.is_empty() {
                println!(
                    "  the log no longer starts at offset 0 (partition:first offset {}): records the table was made of are gone; the replay {} (rebuild from the archive instead)",
                    truncated
                        .iter()
                        .map(|(p, low)| format!("{p}:{low}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    if allow_shrink { "would go on (--allow-shrink)" } else { "would be refused" }
                );
            }
            if plan.events() == 0 && plan.rows_now > 0 {
                println!(
                    "  the log holds no events for the {} rows stored now: the rebuilt table would be empty, so the replay {}",
                    plan.rows_now,
                    if allow_shrink { "would swap an empty table in (--allow-shrink)" } else { "would be refused before the swap" }
                );
            }
            println!("  before the swap the rebuilt table is compared with the live one; one that lacks entities or holds older versions is {}", if allow_shrink { "swapped in anyway (--allow-shrink)" } else { "refused" });
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
            swap_name(&report)
        );
    }
    Ok(())
}

/// `hudstream replay <table|all> --from-archive`: from the archive and Kafka past it, through
/// the processors.
pub async fn from_archive(
    config: &Config,
    which: &str,
    spec: &str,
    dry_run: bool,
    allow_gaps: bool,
    allow_shrink: bool,
) -> anyhow::Result<()> {
    crate::allocator::keep_freed_memory();
    let archive = hudstream_archive::Archive::open(spec)?;
    let (tables, not_raw) =
        hudstream_replay::from_archive::rebuildable(crate::tables_to_replay(which)?);
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
    let mut replayer = crate::replayer(config)?;
    replayer.allow_shrink = allow_shrink;
    let report =
        hudstream_replay::from_archive::rebuild(&archive, &replayer, tables, allow_gaps).await?;
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
            t.table,
            t.events,
            t.rows_written,
            t.dead_letters,
            t.caught_up,
            swap_name(t)
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

    fn show(&mut self, p: hudstream_replay::Progress) {
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

/// How a rebuilt table replaced the live one, for the report.
fn swap_name(report: &hudstream_replay::Report) -> &'static str {
    report.swap.map_or("not swapped", |s| s.as_str())
}
