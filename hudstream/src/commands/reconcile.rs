//! `hudstream reconcile --once [--dry-run]`: one reconciler pass, and what it appended.

use hudstream_runtime::shutdown::{cancel_on_signal, CancellationToken};
use hudstream_runtime::Config;

/// One pass: what it appended (or, with `dry_run`, would), and what GitHub said.
pub async fn once(config: &Config, dry_run: bool) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let reconciler = crate::reconciler(config, shutdown)?;
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
