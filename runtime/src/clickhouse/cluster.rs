//! Cluster mode (`clickhouse.cluster`): the single-node migrations, translated.
//!
//! The migrations are written once, for one server. On a cluster every table `t` becomes two:
//! - `t_local`, on every node (`ON CLUSTER`), `ReplicatedReplacingMergeTree` with the same
//!   columns, `ORDER BY` and version, its replicas sharing
//!   `/clickhouse/tables/{shard}/<database>/t_local/<generation>` in ZooKeeper (the generation
//!   is new for every replay's shadow, so a swapped table never meets its successor's path);
//! - `t`, a `Distributed` table over them with every column (`AS t_local`) and the name every
//!   query uses;
//! - `t_insert`, a `Distributed` table over them with the ordinary columns only, which the
//!   projections write through: ClickHouse 18.16 refuses a synchronous insert into a
//!   `Distributed` table that has MATERIALIZED columns ("Cannot insert column …, because it is
//!   MATERIALIZED"), and those (`_inserted_at`, the `_check_*` integrity checks) are computed on
//!   the local tables — where a refused row is still refused, its error coming back through the
//!   insert.
//!
//! Both shard by `cityHash64` of the entity — the `ORDER BY` columns without `version` — so
//! every version of an entity lands on one shard and "the highest version wins" (`FINAL`,
//! `argMax`, `LIMIT 1 BY`) stays a question each shard answers alone.

use crate::clickhouse::shadow::order_by_columns;
use crate::clickhouse::ClickHouseError;

/// The local table behind the distributed `table`.
pub fn local_name(table: &str) -> String {
    format!("{table}_local")
}

/// The distributed table inserts into `table` go through.
pub fn insert_name(table: &str) -> String {
    format!("{table}_insert")
}

/// The ZooKeeper path of `table`'s replicas (with the server's `{shard}` macro).
pub fn replica_path(database: &str, table: &str, generation: &str) -> String {
    format!("/clickhouse/tables/{{shard}}/{database}/{table}/{generation}")
}

/// One step of a translated migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run this statement (it carries its `ON CLUSTER`).
    Execute(String),
    /// (Re)create the distributed tables `table` and `<table>_insert` over `<table>_local` from
    /// the local tables' definition as it now is: 18.16 refuses `ALTER … ON CLUSTER` on a distributed table of a
    /// cluster whose shards replicate internally ("Table … isn't replicated, but shard #1 is
    /// replicated"), and a distributed table holds no data of its own (inserts are
    /// synchronous), so it is dropped and created again instead.
    Distributed(String),
}

/// One migration statement (written for one server, `{database}` already replaced) as the
/// steps that do the same on `cluster`.
pub fn translate(
    statement: &str,
    cluster: &str,
    database: &str,
) -> Result<Vec<Step>, ClickHouseError> {
    let unsupported = |why: &str| ClickHouseError::Cluster {
        statement: statement.chars().take(300).collect(),
        reason: why.to_string(),
    };
    let text = strip_comments(statement);
    let trimmed = text.trim();
    let prefix = format!("{database}.");
    if let Some(rest) = trimmed.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
        let rest = rest
            .strip_prefix(&prefix)
            .ok_or_else(|| unsupported("a table outside the database"))?;
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| unsupported("no column list"))?;
        let table = &rest[..name_end];
        let (columns, after) =
            parenthesized(&rest[name_end..]).ok_or_else(|| unsupported("no column list"))?;
        let mut pair = create_table(database, cluster, table, columns, after, "0")
            .map_err(|why| unsupported(&why))?;
        pair.truncate(1);
        Ok(vec![
            Step::Execute(pair.remove(0)),
            Step::Distributed(table.to_string()),
        ])
    } else if let Some(rest) = trimmed.strip_prefix("ALTER TABLE ") {
        let rest = rest
            .strip_prefix(&prefix)
            .ok_or_else(|| unsupported("a table outside the database"))?;
        let name_end = rest
            .find(char::is_whitespace)
            .ok_or_else(|| unsupported("no ALTER clause"))?;
        let (table, clause) = (&rest[..name_end], rest[name_end..].trim());
        if !clause.starts_with("ADD COLUMN ") {
            return Err(unsupported("only ALTER TABLE … ADD COLUMN is translated"));
        }
        let local = local_name(table);
        let mut out = vec![Step::Execute(format!(
            "ALTER TABLE {database}.{local} ON CLUSTER {cluster} {clause}"
        ))];
        if !clause.contains(" MATERIALIZED ") {
            out.push(Step::Distributed(table.to_string()));
        }
        Ok(out)
    } else {
        Err(unsupported(
            "only CREATE TABLE IF NOT EXISTS and ALTER TABLE … ADD COLUMN are translated",
        ))
    }
}

mod plan;
pub use plan::{combine_column_additions, plan_migration, Batch, MigrationPlan};

/// For a `CREATE TABLE` migration statement, the two distributed tables it makes on `cluster`
/// (as first created, before any later `ALTER`); nothing for other statements.
pub fn created_tables(
    statement: &str,
    cluster: &str,
    database: &str,
) -> Result<Vec<String>, ClickHouseError> {
    let text = strip_comments(statement);
    let Some(rest) = text
        .trim()
        .strip_prefix("CREATE TABLE IF NOT EXISTS ")
        .and_then(|r| r.strip_prefix(&format!("{database}.")))
    else {
        return Ok(Vec::new());
    };
    let name_end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let table = &rest[..name_end];
    let Some((columns, after)) = parenthesized(&rest[name_end..]) else {
        return Ok(Vec::new());
    };
    let mut all =
        create_table(database, cluster, table, columns, after, "0").map_err(|reason| {
            ClickHouseError::Cluster {
                statement: statement.chars().take(300).collect(),
                reason,
            }
        })?;
    all.remove(0);
    Ok(all)
}

/// The statements creating the local tables `local` (named `<table>_local` unless given) and
/// the distributed `table`, from a single-node definition: `columns` (the text inside the
/// column list's parentheses) and `after` (from `ENGINE =` on).
pub fn create_table(
    database: &str,
    cluster: &str,
    table: &str,
    columns: &str,
    after: &str,
    generation: &str,
) -> Result<Vec<String>, String> {
    create_pair(
        database,
        cluster,
        table,
        &local_name(table),
        columns,
        after,
        generation,
    )
}

/// [`create_table`] with the local tables' name chosen (a shadow's).
pub fn create_pair(
    database: &str,
    cluster: &str,
    table: &str,
    local: &str,
    columns: &str,
    after: &str,
    generation: &str,
) -> Result<Vec<String>, String> {
    let after = after.trim();
    let engine = "ENGINE = ReplacingMergeTree(";
    let rest = after
        .strip_prefix(engine)
        .ok_or("only ReplacingMergeTree tables are translated")?;
    let path = replica_path(database, local, generation);
    let local_after =
        format!("ENGINE = ReplicatedReplacingMergeTree('{path}', '{{replica}}', {rest}");
    let entity: Vec<String> = order_by_columns(after)
        .ok_or("no ORDER BY")?
        .into_iter()
        .filter(|c| c != "version")
        .collect();
    let insert_columns: Vec<&str> = split_columns(columns)
        .into_iter()
        .filter(|c| !c.contains(" MATERIALIZED ") && !c.contains(" ALIAS "))
        .collect();
    let sharding = format!("cityHash64({})", entity.join(", "));
    Ok(vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.{local} ON CLUSTER {cluster}\n({columns})\n{local_after}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.{table} ON CLUSTER {cluster} AS {database}.{local}\nENGINE = Distributed({cluster}, {database}, {local}, {sharding})"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.{} ON CLUSTER {cluster}\n({})\nENGINE = Distributed({cluster}, {database}, {local}, {sharding})",
            insert_name(table),
            insert_columns.join(",\n"),
        ),
    ])
}

/// The statements creating the distributed tables `table` and `<table>_insert` over `local`
/// on `cluster`, from the local tables' definition (`create`, their `SHOW CREATE TABLE`).
pub fn distributed_of(
    create: &str,
    database: &str,
    cluster: &str,
    table: &str,
    local: &str,
) -> Result<Vec<String>, String> {
    let mut all = shadow_of(create, database, cluster, table, local, "unused")?;
    all.remove(0);
    Ok(all)
}

/// The statements creating a replay's shadow of a table on `cluster`: local tables `local`
/// defined like the live local tables (`create`, their `SHOW CREATE TABLE`) with their own
/// ZooKeeper path (`generation`), and the distributed `shadow` over them.
pub fn shadow_of(
    create: &str,
    database: &str,
    cluster: &str,
    shadow: &str,
    local: &str,
    generation: &str,
) -> Result<Vec<String>, String> {
    let open = create.find('(').ok_or("no column list")?;
    let (columns, after) = parenthesized(&create[open..]).ok_or("no column list")?;
    // `ReplicatedReplacingMergeTree('<path>', '{replica}', version)` back to its single-node
    // form, which `create_pair` gives a new path.
    let after = after.trim();
    let engine = "ENGINE = ReplicatedReplacingMergeTree(";
    let args = after
        .strip_prefix(engine)
        .ok_or("not a ReplicatedReplacingMergeTree table")?;
    let (inside, rest) = parenthesized(&format!("({args}"))
        .map(|(i, r)| (i.to_string(), r.to_string()))
        .ok_or("unbalanced engine arguments")?;
    let version = inside.rsplit(',').next().unwrap_or("").trim().to_string();
    let single = format!("ENGINE = ReplacingMergeTree({version}){rest}");
    create_pair(
        database, cluster, shadow, local, columns, &single, generation,
    )
}

/// `s` (after optional whitespace) starting with a parenthesized group: its inside, and what
/// follows it.
fn parenthesized(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    let inner = s.strip_prefix('(')?;
    let mut depth = 1;
    let mut quoted = false;
    for (i, c) in inner.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    return Some((&inner[..i], &inner[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// A column list split at its top-level commas, each definition trimmed.
fn split_columns(columns: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0, false, 0);
    for (i, c) in columns.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(columns[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(columns[start..].trim());
    out.retain(|c| !c.is_empty());
    out
}

/// `sql` without `--` comments (outside quotes).
fn strip_comments(sql: &str) -> String {
    sql.lines()
        .map(|line| {
            let mut quoted = false;
            let bytes = line.as_bytes();
            for i in 0..bytes.len() {
                match bytes[i] {
                    b'\'' => quoted = !quoted,
                    b'-' if !quoted && bytes.get(i + 1) == Some(&b'-') => return &line[..i],
                    _ => {}
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const JOBS: &str = "CREATE TABLE IF NOT EXISTS db.workflow_job
(
    repository_full_name String, -- the key, part one
    id Int64,
    version UInt64,
    steps Nested(
        number Int64,
        name String
    ),
    dynamoKey String ALIAS concat(repository_full_name, '/', toString(id)),
    _inserted_at DateTime MATERIALIZED now(),
    _check_row_has_key UInt8 MATERIALIZED throwIf(repository_full_name = '' OR id = 0)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (repository_full_name, id)
SETTINGS index_granularity = 1024";

    /// A CREATE statement's column list and what follows it.
    fn split_body(create: &str) -> (&str, &str) {
        let open = create.find('(').unwrap();
        parenthesized(&create[open..]).unwrap()
    }

    #[test]
    fn a_table_becomes_replicated_local_tables_and_a_distributed_table_sharded_by_entity() {
        let steps = translate(JOBS, "c", "db").unwrap();
        assert_eq!(steps[1], Step::Distributed("workflow_job".into()));
        let Step::Execute(local) = &steps[0] else {
            panic!("{steps:?}")
        };
        let stripped = strip_comments(JOBS);
        let (columns, after) = split_body(&stripped);
        let all = create_table("db", "c", "workflow_job", columns, after, "0").unwrap();
        assert_eq!(&all[0], local);
        assert_eq!(
            all[1],
            "CREATE TABLE IF NOT EXISTS db.workflow_job ON CLUSTER c AS db.workflow_job_local\nENGINE = Distributed(c, db, workflow_job_local, cityHash64(repository_full_name, id))"
        );
        let out = [all[0].clone(), all[2].clone()];
        assert!(
            out[0].starts_with("CREATE TABLE IF NOT EXISTS db.workflow_job_local ON CLUSTER c\n")
        );
        assert!(out[0].contains(
            "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/workflow_job_local/0', '{replica}', version)\nORDER BY (repository_full_name, id)\nSETTINGS index_granularity = 1024"
        ));
        assert!(out[0].contains("_check_row_has_key UInt8 MATERIALIZED throwIf"));
        assert!(!out[0].contains("part one"));
        assert!(
            out[1].starts_with("CREATE TABLE IF NOT EXISTS db.workflow_job_insert ON CLUSTER c\n")
        );
        assert!(out[1].contains("steps Nested(\n        number Int64,\n        name String\n    )"));
        assert!(!out[1].contains("dynamoKey"));
        assert!(!out[1].contains("MATERIALIZED"));
        assert!(out[1].ends_with(
            "ENGINE = Distributed(c, db, workflow_job_local, cityHash64(repository_full_name, id))"
        ));
    }

    #[test]
    fn the_version_is_never_part_of_the_sharding_key() {
        let out = create_table(
            "db",
            "c",
            "oot",
            "k String, version UInt64",
            "ENGINE = ReplacingMergeTree(version) ORDER BY (k, version)",
            "0",
        )
        .unwrap();
        assert!(out[1].ends_with("cityHash64(k))"), "{}", out[1]);
        assert!(out[2].ends_with("cityHash64(k))"), "{}", out[2]);
    }

    #[test]
    fn an_added_column_is_added_to_both_tables_unless_it_is_materialized() {
        let out = translate(
            "ALTER TABLE db.job_classification ADD COLUMN outcome String AFTER head_sha",
            "c",
            "db",
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                Step::Execute("ALTER TABLE db.job_classification_local ON CLUSTER c ADD COLUMN outcome String AFTER head_sha".into()),
                Step::Distributed("job_classification".into()),
            ]
        );
        let out = translate(
            "ALTER TABLE db.t ADD COLUMN _x UInt8 MATERIALIZED throwIf(1)",
            "c",
            "db",
        )
        .unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn what_cannot_be_translated_is_refused_with_the_statement() {
        let e = translate("DROP TABLE db.t", "c", "db").unwrap_err();
        assert!(e.to_string().contains("DROP TABLE db.t"), "{e}");
        let e = translate(
            "CREATE TABLE IF NOT EXISTS db.t (a String) ENGINE = MergeTree ORDER BY a",
            "c",
            "db",
        )
        .unwrap_err();
        assert!(e.to_string().contains("ReplacingMergeTree"), "{e}");
    }

    #[test]
    fn a_shadow_gets_the_live_definition_and_a_path_of_its_own() {
        let live = "CREATE TABLE db.t_local (`k` String, `version` UInt64, `_c` UInt8 MATERIALIZED throwIf(k = '')) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/t_local/0', '{replica}', version) ORDER BY k SETTINGS index_granularity = 8192";
        let out = shadow_of(live, "db", "c", "t__replay", "t__replay_local", "replay-1").unwrap();
        assert_eq!(out[0], "CREATE TABLE IF NOT EXISTS db.t__replay_local ON CLUSTER c\n(`k` String, `version` UInt64, `_c` UInt8 MATERIALIZED throwIf(k = ''))\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/t__replay_local/replay-1', '{replica}', version) ORDER BY k SETTINGS index_granularity = 8192");
        assert_eq!(out[1], "CREATE TABLE IF NOT EXISTS db.t__replay ON CLUSTER c AS db.t__replay_local\nENGINE = Distributed(c, db, t__replay_local, cityHash64(k))");
        assert_eq!(out[2], "CREATE TABLE IF NOT EXISTS db.t__replay_insert ON CLUSTER c\n(`k` String,\n`version` UInt64)\nENGINE = Distributed(c, db, t__replay_local, cityHash64(k))");
    }

    #[test]
    fn every_shipped_migration_translates() {
        for m in hudstream_schemas::migrations::MIGRATIONS {
            for s in m.statements("db") {
                translate(&s, "c", "db").unwrap_or_else(|e| panic!("{}: {e}", m.name));
            }
        }
    }
}
