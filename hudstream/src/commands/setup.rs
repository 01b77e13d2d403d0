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

/// Prints every migration's statements as `migrate` would run them on this configuration's
/// ClickHouse, `;`-terminated (the SQL check runs the cluster form on 18.16 and parses it with
/// chdb). On a cluster, a distributed table is (re)created from the live local tables'
/// definition, which only a server knows: after an `ALTER` that step is a comment.
pub fn print_migrations(config: &Config) -> anyhow::Result<()> {
    use hudstream_runtime::clickhouse::cluster;
    use std::fmt::Write as _;
    let db = &config.clickhouse.database;
    let on = &config.clickhouse.cluster;
    let mut out = String::new();
    for migration in hudstream_schemas::migrations::MIGRATIONS {
        writeln!(out, "-- {:04} {}", migration.version, migration.name)?;
        let statements = migration.statements(db);
        if on.is_empty() {
            for statement in &statements {
                writeln!(out, "{statement};")?;
            }
            continue;
        }
        let plan = cluster::plan_migration(&statements, on, db)?;
        // The distributed tables of a table this migration creates and does not alter are
        // known without a server: those of its CREATE.
        let mut created: Vec<(String, Vec<String>)> = Vec::new();
        for statement in &statements {
            let tables = cluster::created_tables(statement, on, db)?;
            if let Some(first) = tables.first() {
                created.push((first.clone(), tables));
            }
        }
        for batch in &plan.batches {
            writeln!(out, "{};", batch.statement)?;
        }
        for table in &plan.distributed {
            let altered = plan.batches.iter().any(|b| {
                b.statement
                    .starts_with(&format!("ALTER TABLE {db}.{} ", cluster::local_name(table)))
            });
            let made = created.iter().find(|(first, _)| {
                first.starts_with(&format!("CREATE TABLE IF NOT EXISTS {db}.{table} "))
            });
            match made {
                Some((_, tables)) if !altered => {
                    for sql in tables {
                        writeln!(out, "{sql};")?;
                    }
                }
                _ => writeln!(
                    out,
                    "-- then {table} and {} are created again over {}, with its columns",
                    cluster::insert_name(table),
                    cluster::local_name(table)
                )?,
            }
        }
    }
    // A closed pipe (`| head`) is the reader's choice, not an error worth a panic.
    let mut stdout = std::io::stdout().lock();
    match std::io::Write::write_all(&mut stdout, out.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
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
