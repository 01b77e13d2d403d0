//! `hudstream topics` and `hudstream migrate`: what runs once before the stages (and before
//! every upgrade).

use hudstream_runtime::Config;

/// Creates the catalogue topics that do not exist yet, and lists the catalogue.
pub async fn topics(config: &Config) -> anyhow::Result<()> {
    let created = crate::create_topics(config).await?;
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

/// Applies pending ClickHouse migrations.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let applied = crate::migrate(config).await?;
    println!(
        "database {}: {} migration(s) applied {:?}",
        config.clickhouse.database,
        applied.len(),
        applied
    );
    Ok(())
}
