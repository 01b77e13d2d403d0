//! A migration as run on a cluster: its translated statements, `ADD COLUMN`s to one table
//! combined, then each distributed table made again once. `migrate` runs this plan and
//! `migrate --print` prints it, so the SQL check sees what runs.

use super::{translate, Step};
use crate::clickhouse::ClickHouseError;

/// A statement to run on the cluster and, when it stands for several, the statements it
/// stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub statement: String,
    /// The single statements combined into `statement` (empty when it is one of them).
    pub parts: Vec<String>,
}

/// A migration's translated statements with each run of `ADD COLUMN`s to one table made one
/// `ALTER` with several clauses: on a replicated table each `ALTER … ON CLUSTER` waits ~1 s for
/// every replica to take the new metadata, whatever it adds. ClickHouse applies the clauses in
/// order (an `AFTER` may name a column added by an earlier one) and all or none: a combined
/// statement refused because one of its columns exists changed nothing, and its parts can be
/// run one by one.
pub fn combine_column_additions(statements: Vec<String>) -> Vec<Batch> {
    const ADD: &str = " ADD COLUMN ";
    let mut out: Vec<Batch> = Vec::new();
    for statement in statements {
        let split = statement
            .starts_with("ALTER TABLE ")
            .then(|| statement.find(ADD))
            .flatten()
            .filter(|_| statement.matches(ADD).count() == 1);
        if let Some(at) = split {
            let (target, clause) = (&statement[..at], &statement[at + 1..]);
            if let Some(last) = out.last_mut() {
                let last_target = last
                    .parts
                    .first()
                    .unwrap_or(&last.statement)
                    .split(ADD)
                    .next()
                    .unwrap_or_default();
                if last.statement.starts_with("ALTER TABLE ") && last_target == target {
                    if last.parts.is_empty() {
                        last.parts.push(last.statement.clone());
                    }
                    last.statement = format!("{}, {clause}", last.statement);
                    last.parts.push(statement);
                    continue;
                }
            }
        }
        out.push(Batch {
            statement,
            parts: Vec::new(),
        });
    }
    out
}

/// What one migration does on a cluster, in order: `batches` (its translated statements, with
/// consecutive `ADD COLUMN`s to one table combined), then, once each, the distributed tables
/// over every table it created or altered (`distributed`), made again from the local tables'
/// definition as it then is. `migrate` runs it; `migrate --print` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationPlan {
    pub batches: Vec<Batch>,
    pub distributed: Vec<String>,
}

/// A migration's statements (single-node form, `{database}` replaced) as run on `cluster`.
pub fn plan_migration(
    statements: &[String],
    cluster: &str,
    database: &str,
) -> Result<MigrationPlan, ClickHouseError> {
    let mut distributed: Vec<String> = Vec::new();
    let mut translated = Vec::new();
    for statement in statements {
        for step in translate(statement, cluster, database)? {
            match step {
                Step::Execute(sql) => translated.push(sql),
                Step::Distributed(table) => {
                    if !distributed.contains(&table) {
                        distributed.push(table);
                    }
                }
            }
        }
    }
    Ok(MigrationPlan {
        batches: combine_column_additions(translated),
        distributed,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::JOBS;
    use super::*;

    #[test]
    fn additions_to_one_table_in_a_row_become_one_alter_and_keep_their_parts() {
        let alter =
            |t: &str, c: &str| format!("ALTER TABLE db.{t}_local ON CLUSTER c ADD COLUMN {c}");
        let create =
            "CREATE TABLE IF NOT EXISTS db.x_local ON CLUSTER c (a UInt8) ENGINE = Log".to_string();
        let batches = combine_column_additions(vec![
            create.clone(),
            alter("g", "run_id Int64 AFTER version"),
            alter("g", "created_at DateTime('UTC') AFTER conclusion"),
            alter("g", "started_at DateTime('UTC') AFTER created_at"),
            alter("j", "outcome String AFTER head_sha"),
            create.clone(),
            alter("j", "log_partial UInt8 AFTER log_location"),
        ]);
        assert_eq!(batches.len(), 5, "{batches:#?}");
        assert_eq!(
            batches[0],
            Batch {
                statement: create.clone(),
                parts: vec![]
            }
        );
        assert_eq!(
            batches[1].statement,
            "ALTER TABLE db.g_local ON CLUSTER c ADD COLUMN run_id Int64 AFTER version, \
             ADD COLUMN created_at DateTime('UTC') AFTER conclusion, \
             ADD COLUMN started_at DateTime('UTC') AFTER created_at"
        );
        assert_eq!(
            batches[1].parts,
            vec![
                alter("g", "run_id Int64 AFTER version"),
                alter("g", "created_at DateTime('UTC') AFTER conclusion"),
                alter("g", "started_at DateTime('UTC') AFTER created_at"),
            ]
        );
        // Another table, or anything in between, starts a new batch.
        assert_eq!(
            batches[2].statement,
            alter("j", "outcome String AFTER head_sha")
        );
        assert!(batches[2].parts.is_empty());
        assert_eq!(batches[3].statement, create);
        assert_eq!(
            batches[4].statement,
            alter("j", "log_partial UInt8 AFTER log_location")
        );
    }

    #[test]
    fn a_migration_plan_runs_its_statements_then_makes_each_distributed_table_once() {
        let statements = vec![
            JOBS.to_string(),
            "ALTER TABLE db.workflow_job ADD COLUMN a String AFTER id".to_string(),
            "ALTER TABLE db.workflow_job ADD COLUMN b String AFTER a".to_string(),
            "ALTER TABLE db.other ADD COLUMN m UInt8 MATERIALIZED 1".to_string(),
        ];
        let plan = plan_migration(&statements, "c", "db").unwrap();
        assert_eq!(plan.batches.len(), 3, "{plan:#?}");
        assert!(plan.batches[0]
            .statement
            .starts_with("CREATE TABLE IF NOT EXISTS db.workflow_job_local ON CLUSTER c"));
        assert_eq!(
            plan.batches[1].statement,
            "ALTER TABLE db.workflow_job_local ON CLUSTER c ADD COLUMN a String AFTER id, ADD COLUMN b String AFTER a"
        );
        // A MATERIALIZED column is not in the distributed tables: nothing to make again.
        assert_eq!(plan.distributed, vec!["workflow_job".to_string()]);
    }

    #[test]
    fn every_migration_alter_translates_to_a_statement_that_combines() {
        // The translation's shape is what the combining relies on.
        let steps = translate(
            "ALTER TABLE db.grid_job ADD COLUMN run_id Int64 AFTER version",
            "c",
            "db",
        )
        .unwrap();
        let Step::Execute(sql) = &steps[0] else {
            panic!("{steps:?}")
        };
        let twice = combine_column_additions(vec![sql.clone(), sql.replace("run_id", "other")]);
        assert_eq!(twice.len(), 1);
        assert_eq!(twice[0].parts.len(), 2);
    }
}
