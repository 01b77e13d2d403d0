//! Projections and replay on the real broker and ClickHouse: every table filled from the real
//! fixtures, a replay that rebuilds them to identical checksums — from Kafka, and from the
//! archive the archive stage wrote — a refused row dead-lettered alone, ClickHouse stopped for
//! 30 s mid-stream, and a projection killed with SIGKILL.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hudstream_e2e::{
    all_fixtures, all_table_checksums, count, init_logs, prepared_config, test_config, wait_until,
    ClosingProxy, OwnClickHouse, Running, Stack,
};
use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::kafka::Appender;
use hudstream_runtime::worker::OutRecord;
use hudstream_runtime::Config;
use hudstream_schemas::topics::HUD_WORKFLOW_JOB_V1;
use hudstream_schemas::wire::{Codec, RecordType};
use hudstream_schemas::workflow_job::WorkflowJob;

/// The entities each table ends with for the real fixtures: the golden files' rows
/// (`projections/testdata`), counted once per ORDER BY key (what `FINAL` keeps).
fn expected_entities() -> BTreeMap<String, u64> {
    let keys: &[(&str, &[&str])] = &[
        ("workflow_job", &["repository_full_name", "head_sha", "id"]),
        ("job_failure", &["repository_full_name", "head_sha", "id"]),
        ("job_page", &["repository_full_name", "id"]),
        ("workflow_run", &["repository_full_name", "head_sha", "id"]),
        ("commit", &["repository_full_name", "ref", "sha"]),
        ("ref_update", &["repository_full_name", "ref"]),
        ("pull_request", &["repository_full_name", "number"]),
        (
            "label_event",
            &["repository_full_name", "number", "label_name"],
        ),
        ("issues", &["repository_full_name", "number"]),
        ("issue_comment", &["repository_full_name", "number", "id"]),
        ("check_run", &["repository_full_name", "head_sha", "id"]),
        (
            "oot_workflow_job",
            &["upstream_repo", "pr_number", "dynamoKey", "version"],
        ),
        ("job_classification", &["repository_full_name", "job_id"]),
        ("test_report", &["repository_full_name", "job_id", "report"]),
        (
            "test_case",
            &[
                "repository_full_name",
                "job_id",
                "report",
                "report_sha256",
                "case_index",
            ],
        ),
        (
            "test_case_by_name",
            &[
                "repository_full_name",
                "job_id",
                "report",
                "report_sha256",
                "case_index",
            ],
        ),
        (
            "test_failure",
            &[
                "repository_full_name",
                "job_id",
                "report",
                "report_sha256",
                "case_index",
            ],
        ),
        (
            "dead_letter",
            &["stage", "source_topic", "source_partition", "source_offset"],
        ),
    ];
    keys.iter()
        .map(|(table, columns)| (table.to_string(), golden_keys(table, columns).len() as u64))
        .collect()
}

/// The distinct values of `columns` in a table's golden rows (`projections/testdata`), as text
/// (strings without their JSON quotes).
fn golden_keys(table: &str, columns: &[&str]) -> std::collections::BTreeSet<Vec<String>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../projections/testdata");
    let text = std::fs::read_to_string(format!("{dir}/{table}.rows.jsonl")).expect("golden file");
    text.lines()
        .map(|l| {
            let row: serde_json::Value = serde_json::from_str(l).expect("json");
            columns
                .iter()
                .map(|c| match &row[c] {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

/// `jobs` jobs with ids from `first_id`, each in `versions` versions (1..=versions), as records of
/// the derived jobs topic, built on the real completed-job fixture.
fn job_records(first_id: i64, jobs: usize, versions: i64) -> Vec<OutRecord> {
    let template = hudstream_processors::workflow_job::normalize(
        &hudstream_e2e::fixture("workflow_job/completed.success.with-organization.payload.json")
            .body,
    )
    .expect("fixture normalizes");
    let codec = Codec::<WorkflowJob>::new().expect("codec");
    let mut out = Vec::new();
    for v in 1..=versions {
        for i in 0..jobs as i64 {
            let mut job = template.clone();
            job.id = first_id + i;
            job.version = v;
            job.status = if v == versions {
                "completed".into()
            } else {
                "in_progress".into()
            };
            out.push(OutRecord {
                topic: HUD_WORKFLOW_JOB_V1.into(),
                key: job.key().into_bytes(),
                payload: codec.encode(&job).expect("encodes"),
                headers: Vec::new(),
            });
        }
    }
    out
}

async fn append_all(config: &Config, records: &[OutRecord]) {
    let appender = Appender::new(&config.kafka).expect("appender");
    for chunk in records.chunks(2000) {
        for r in futures::future::join_all(chunk.iter().map(|r| appender.append(r))).await {
            r.expect("appended");
        }
    }
}

/// Every job exactly once, at its last version: FINAL count = distinct ids = `jobs`, and no
/// job's current row is an older version.
async fn assert_exactly_once(clickhouse: &ClickHouse, jobs: u64, last_version: u64) {
    let final_rows = count(
        clickhouse,
        "SELECT count() AS n FROM {db}.workflow_job FINAL",
    )
    .await;
    let distinct = count(
        clickhouse,
        "SELECT uniqExact(id) AS n FROM {db}.workflow_job",
    )
    .await;
    let stale = count(
        clickhouse,
        &format!(
            "SELECT count() AS n FROM {{db}}.workflow_job FINAL WHERE version != {last_version}"
        ),
    )
    .await;
    assert_eq!(
        (final_rows, distinct, stale),
        (jobs, jobs, 0),
        "FINAL rows, distinct jobs, stale rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_fills_from_the_fixtures_and_a_replay_rebuilds_identical_tables() {
    // Log classification by upload (no GitHub here), so job_classification fills too.
    let mut config = hudstream_e2e::test_config();
    // The archive stage copies every raw topic as it arrives.
    let archive_dir =
        std::env::temp_dir().join(format!("hudstream-archive-{}", config.kafka.group_prefix));
    config.archive.enabled = true;
    config.archive.store = archive_dir.display().to_string();
    config.archive.batch_linger_ms = 200;
    let log_store =
        std::env::temp_dir().join(format!("hudstream-fill-{}", config.kafka.group_prefix));
    config.logs.enabled = true;
    config.logs.fetch_from_github = false;
    config.logs.store = log_store.display().to_string();
    config.logs.ruleset = hudstream_classifier::fixture::reference_dir().join("ruleset.toml");
    config.logs.upload_tokens = vec![hudstream_runtime::Secret::new("fill-upload")];
    let test_store = hudstream_e2e::with_test_reports(&mut config, "fill-upload");
    let stack = Stack::start_with(config).await;
    stack.post_all(&all_fixtures()).await;
    // The deliveries derived from real ones that the golden rows hold (no real disabled-test or
    // UNSTABLE issue, nor a push of the jobs' commit, is among the fixtures).
    let derived =
        hudstream_ingest::fixtures::derived_deliveries(&hudstream_ingest::fixtures::default_dir())
            .expect("the derived deliveries");
    stack.post_all(&derived).await;
    // Every real test report, uploaded for the fixtures' completed jobs in turn, as the
    // golden rows have them.
    let jobs: Vec<Vec<String>> =
        golden_keys("workflow_job", &["id", "repository_full_name", "status"])
            .into_iter()
            .filter(|k| k[2] == "completed")
            .collect();
    let mut jobs: Vec<(i64, String)> = jobs
        .into_iter()
        .map(|k| (k[0].parse().expect("id"), k[1].clone()))
        .collect();
    jobs.sort();
    jobs.dedup();
    for (i, (folder, file, bytes)) in hudstream_e2e::test_report_fixtures()
        .into_iter()
        .enumerate()
    {
        let (id, repository) = &jobs[i % jobs.len()];
        let (status, body) = stack
            .put_report(
                &format!("{repository}/{id}"),
                &format!("?report=test/test-reports/{folder}/{file}"),
                "fill-upload",
                bytes,
                false,
            )
            .await;
        // Two fixtures hold the same bytes: the second is stored already (200), a new report
        // all the same.
        assert!(status == 201 || status == 200, "{file}: {body}");
    }
    // A delivery the processor refuses (no workflow_job object): a dead letter to project.
    let broken = br#"{"action":"completed","repository":{"full_name":"o/r"}}"#;
    let signature = hudstream_ingest::signature::sign_sha256(stack.secret(), broken);
    let r = stack
        .post_raw(
            "workflow_job",
            "broken-1",
            "application/json",
            broken.to_vec(),
            Some(signature),
        )
        .await;
    assert!(r.status().is_success());
    // OOT callbacks of one job.
    // The completed callback says nothing of the start or the queue time: the merge must keep
    // the in-progress callback's values for those.
    for (status, workflow, queue) in [
        (
            "in_progress",
            serde_json::json!({"started_at": "2026-05-01T10:00:00Z"}),
            serde_json::json!(12.5),
        ),
        (
            "completed",
            serde_json::json!({"conclusion": "success", "completed_at": "2026-05-01T10:30:00Z",
                "test_results": {"passed": 90, "failed": 3, "skipped": 7}, "artifact_url": "https://ci/a"}),
            serde_json::Value::Null,
        ),
    ] {
        let mut workflow_json = serde_json::json!({"status": status, "name": "xpu", "url": "u", "job_name": "test", "check_run_id": 1});
        for (k, v) in workflow.as_object().into_iter().flatten() {
            workflow_json[k] = v.clone();
        }
        let body = serde_json::json!({
            "trusted": {"verified_repo": "intel/torch-xpu-ops", "ci_metrics": {"queue_time": queue}},
            "untrusted": {"callback_payload": {"event_type": "pull_request", "delivery_id": "d-1",
                "payload": {"pull_request": {"number": 7}},
                "workflow": workflow_json}}
        });
        stack
            .post_oot(serde_json::to_vec(&body).expect("json"))
            .await;
    }

    // A real failing log for each job the golden classification rows name.
    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../classifier/testdata/sample-failure.log"
    ))
    .expect("sample log");
    for job in golden_keys("job_classification", &["repository_full_name", "job_id"]) {
        let (status, body) = stack
            .put_log(&job.join("/"), "", "fill-upload", sample.clone())
            .await;
        assert_eq!(status, 201, "{job:?}: {body}");
    }

    // Every table gets every row the projections make of these inputs.
    let clickhouse = stack.clickhouse();
    for (table, entities) in expected_entities() {
        let sql = format!("SELECT count() AS n FROM {{db}}.{table} FINAL");
        // Generous: the whole suite shares two cores, and this stack joins 19 consumer groups.
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let n = count(&clickhouse, &sql).await;
            if n >= entities {
                assert_eq!(n, entities, "{table}: more entities than the fixtures make");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{table}: {n} entities after 180 s, expected {entities}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // The saved OOT query is `merge_all` in SQL: the same job state from the same callbacks.
    {
        use hudstream_processors::oot::merge_all;
        use hudstream_runtime::clickhouse::{bind, Param};
        use hudstream_schemas::oot::OotResult;
        use hudstream_schemas::topics::HUD_OOT_RESULT_V1;
        let codec = Codec::<OotResult>::new().expect("codec");
        let callbacks: Vec<OotResult> = stack
            .read_topic(HUD_OOT_RESULT_V1, |rs| rs.len() >= 2)
            .await
            .iter()
            .map(|r| {
                codec
                    .decode(r.payload.as_deref().expect("value"))
                    .expect("decodes")
            })
            .collect();
        let merged = merge_all(&callbacks).expect("a merged job");
        // The query the API's OOT views run, for this PR's jobs at any time.
        let params = BTreeMap::from([
            ("repo", Param::Str(String::new())),
            ("upstream_repo", Param::Str(merged.upstream_repo.clone())),
            ("pr_number", Param::Int(merged.pr_number)),
            ("days", Param::UInt(0)),
            ("max_rows", Param::UInt(100)),
        ]);
        let sql = bind(
            hudstream_api::queries::OOT_JOBS_WINDOW.sql,
            clickhouse.database(),
            &params,
        )
        .expect("binds");
        let rows: Vec<serde_json::Value> = clickhouse.query_json(&sql).await.expect("query");
        assert_eq!(rows.len(), 1, "{rows:?}");
        let row = &rows[0];
        // The query gives instants as unix seconds, 0 for "never".
        let at = |millis: Option<i64>| millis.map(|m| m / 1000);
        let unix = |v: &serde_json::Value| v.as_i64().filter(|s| *s > 0);
        assert_eq!(row["status"], merged.status);
        assert_eq!(row["downstream_repo"], merged.downstream_repo);
        assert_eq!(row["run_attempt"], merged.run_attempt);
        assert_eq!(row["conclusion"].as_str(), merged.conclusion.as_deref());
        assert_eq!(row["queue_time"].as_f64(), merged.queue_time);
        assert_eq!(unix(&row["started_unix"]), at(merged.started_at));
        assert_eq!(unix(&row["completed_unix"]), at(merged.completed_at));
        assert_eq!(row["total_tests"].as_i64(), merged.total_tests);
        assert_eq!(row["artifact_url"].as_str(), merged.artifact_url.as_deref());
        assert!(
            merged.queue_time.is_some()
                && merged.started_at.is_some()
                && merged.total_tests.is_some()
        );
    }

    let reason = count(
        &clickhouse,
        "SELECT count() AS n FROM {db}.dead_letter WHERE stage = 'process.workflow_job' AND reason LIKE '%workflow_job%'",
    )
    .await;
    assert_eq!(
        reason, 1,
        "the refused delivery is in the dead-letter table with its reason"
    );

    // `status` sees every stage caught up.
    let offsets =
        tokio::task::block_in_place(|| hudstream::commands::status::offsets(&stack.config))
            .expect("offsets");
    for p in offsets
        .iter()
        .filter(|p| p.stage.starts_with("project.") && p.end > 0)
    {
        assert_eq!(p.lag(), 0, "{p:?}");
    }
    let report = hudstream::commands::status::report(&stack.config)
        .await
        .expect("status");
    assert!(
        report.contains("project.workflow_job") && report.contains("oot_workflow_job"),
        "{report}"
    );

    // Replay everything while the live projections keep running: identical tables.
    let before = all_table_checksums(&clickhouse).await;
    for (table, (rows, _)) in &before {
        assert!(*rows > 0, "{table} is empty");
    }
    let replayer = hudstream::replayer(&stack.config).expect("replayer");
    for encoder in hudstream::tables_to_replay("all").expect("tables") {
        let plan = replayer.plan(&encoder).await.expect("plan");
        let mut last = None;
        let report = replayer
            .replay(encoder.clone(), &mut |p| last = Some(p))
            .await
            .expect("replay");
        // At least what the broker reported: tansu under-reports where a partition ends (one
        // past its last batch, not its last record), and the reader reads on.
        assert!(
            report.events >= plan.events(),
            "{}: every event of the topic",
            plan.table
        );
        let last = last.expect("progress was reported");
        assert_eq!(last.events_done, report.events - report.caught_up);
    }
    let after = all_table_checksums(&clickhouse).await;
    assert_eq!(
        before, after,
        "a replay must rebuild every table to the same contents"
    );
    let leftovers = count(
        &clickhouse,
        "SELECT count() AS n FROM system.tables WHERE database = '{db}' AND (position(name, '__replay') > 0 OR position(name, '__old') > 0)",
    )
    .await;
    assert_eq!(leftovers, 0, "shadow and old tables are dropped");

    // The archive: every raw record, byte for byte, then the same tables rebuilt from it.
    // The fixtures, the broken delivery, two OOT callbacks, the derived deliveries and a
    // pointer per test report.
    let posted =
        all_fixtures().len() + 1 + 2 + derived.len() + hudstream_e2e::test_report_fixtures().len();
    let archive = hudstream_archive::Archive::open(&stack.config.archive.store).expect("archive");
    let archived = || async {
        let mut records = Vec::new();
        for topic in hudstream_schemas::topics::catalogue()
            .into_iter()
            .filter(|t| t.kind == hudstream_schemas::topics::TopicKind::Raw)
        {
            for file in archive.files(&topic.name).await.expect("files") {
                records.extend(archive.read(&file).await.expect("read"));
            }
        }
        records
    };
    wait_until("the archive holds every raw record", 120, || async {
        archived().await.len() >= posted
    })
    .await;
    let records = archived().await;
    assert_eq!(records.len(), posted, "each raw record archived once");
    let values: std::collections::BTreeSet<&[u8]> = records
        .iter()
        .filter_map(|r| r.payload.as_deref())
        .collect();
    for d in all_fixtures() {
        assert!(
            values.contains(d.body.as_slice()),
            "{}: not archived byte for byte",
            d.path.display()
        );
    }
    // A batch archived twice (a crash between the write and the commit), and the oldest file
    // of the pushes lost: the rebuild skips the copy and reads what the archive lacks from
    // Kafka.
    let jobs = archive.files("github.workflow_job").await.expect("files");
    let first = jobs.first().expect("a jobs file");
    let pushes = archive.files("github.push").await.expect("files");
    let lost = pushes.first().expect("a push file");
    let copy = hudstream_archive::file::FileName {
        hour: "date=2000-01-01/hour=00".into(),
        ..first.clone()
    };
    let dir = std::path::Path::new(&stack.config.archive.store);
    std::fs::create_dir_all(dir.join(copy.path()).parent().expect("folder")).expect("mkdir");
    std::fs::copy(dir.join(first.path()), dir.join(copy.path())).expect("copy");
    std::fs::remove_file(dir.join(lost.path())).expect("remove");
    let report = hudstream_replay::from_archive::rebuild(
        &archive,
        &replayer,
        hudstream::tables_to_replay("all").expect("tables"),
        false,
    )
    .await
    .expect("rebuild from the archive");
    assert!(report.duplicates > 0, "{report:?}");
    assert!(report.kafka_records > 0, "{report:?}");
    assert!(report.gaps.is_empty(), "{report:?}");
    let rebuilt: Vec<&str> = report.tables.iter().map(|t| t.table.as_str()).collect();
    assert!(
        !rebuilt.contains(&"job_classification")
            && !rebuilt.contains(&"dead_letter")
            && !rebuilt.iter().any(|t| t.starts_with("test_")),
        "tables not made of raw records are left alone: {rebuilt:?}"
    );
    let from_archive = all_table_checksums(&clickhouse).await;
    for table in &rebuilt {
        assert_eq!(
            from_archive[*table], after[*table],
            "{table}: the archive rebuilds the same table as a replay from Kafka"
        );
    }
    assert_eq!(rebuilt.len(), 15, "{rebuilt:?}");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&log_store);
    let _ = std::fs::remove_dir_all(&archive_dir);
    let _ = std::fs::remove_dir_all(&test_store);
}

hudstream_projections::row! {
    /// A row with every kind of value the tables use.
    pub struct LayoutRow {
        name: String,
        id: i64,
        when: hudstream_projections::row::DateTime,
        score: Option<f64>,
        missing: Option<f64>,
        tags: Vec<String>,
        steps_number as "steps.number": Vec<i64>,
        flag: bool,
        raw: hudstream_projections::row::Bytes,
    }
}

/// The `RowBinary` the `clickhouse` crate sends for a declared row is what ClickHouse stores:
/// read back, every value equals the row's own `JSONEachRow` (the golden files' encoding).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_row_lands_in_clickhouse_exactly_as_its_json_says() {
    use hudstream_projections::row::{Bytes, DateTime, Row};
    init_logs();
    let config = test_config();
    hudstream::migrate(&config).await.expect("migrate");
    let clickhouse = ClickHouse::new(&config.clickhouse).expect("client");
    let db = clickhouse.database();
    clickhouse
        .execute(&format!(
            "CREATE TABLE {db}.layout (name String, id Int64, when DateTime('UTC'), score Nullable(Float64), missing Nullable(Float64), tags Array(String), steps Nested(number Int64), flag UInt8, raw String) ENGINE = MergeTree ORDER BY id"
        ))
        .await
        .expect("table");
    let row = LayoutRow {
        name: "a\"b".into(),
        id: -2,
        when: DateTime(1_628_160_256),
        score: Some(0.25),
        missing: None,
        tags: vec!["x".into(), "yz".into()],
        steps_number: vec![1, 300],
        flag: true,
        raw: Bytes(b"bytes\n".to_vec()),
    };
    clickhouse
        .insert_all("layout", [&row])
        .await
        .expect("insert");
    let stored: Vec<serde_json::Value> = clickhouse
        .query_json(&format!("SELECT * FROM {db}.layout"))
        .await
        .expect("read back");
    let mut json = Vec::new();
    row.write_json(&mut json);
    let expected: serde_json::Value = serde_json::from_slice(&json).expect("json");
    assert_eq!(stored, vec![expected]);
    clickhouse
        .execute(&format!("DROP DATABASE {db}"))
        .await
        .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_writer_sends_exactly_the_columns_of_its_migrated_table() {
    let config = test_config();
    hudstream::migrate(&config).await.expect("migrate");
    let clickhouse = ClickHouse::new(&config.clickhouse).expect("client");
    #[derive(serde::Deserialize)]
    struct Column {
        name: String,
        #[serde(rename = "type")]
        ty: String,
    }
    for encoder in hudstream_projections::all() {
        let columns: Vec<Column> = clickhouse
            .query_json(&format!(
                "SELECT name, type FROM system.columns WHERE database = '{}' AND table = '{}' AND default_kind NOT IN ('MATERIALIZED', 'ALIAS')",
                clickhouse.database(),
                encoder.table()
            ))
            .await
            .expect("columns");
        let table: Vec<(String, String)> = columns.into_iter().map(|c| (c.name, c.ty)).collect();
        let writer: Vec<(String, String)> = encoder
            .columns()
            .iter()
            .map(|c| c.to_string())
            .zip(encoder.types())
            .collect();
        assert_eq!(writer, table, "{}: writer vs DDL", encoder.table());
    }
    clickhouse
        .execute(&format!("DROP DATABASE {}", clickhouse.database()))
        .await
        .expect("drop");
}

/// A migration that stopped half way (its first `ADD COLUMN`s applied, the rest and its record
/// not) is finished by the next `migrate`, and the table ends as if it had run once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_interrupted_half_way_is_finished_by_the_next_migrate() {
    use hudstream_runtime::clickhouse::cluster::{translate, Step};
    use hudstream_schemas::migrations::MIGRATIONS;
    let config = test_config();
    let clickhouse = ClickHouse::new(&config.clickhouse).expect("client");
    // 0017 adds seven columns to grid_job, one statement each.
    let at = MIGRATIONS
        .iter()
        .position(|m| m.name == "grid_job_commit_columns")
        .expect("migration 0017");
    let interrupted = &MIGRATIONS[at];
    clickhouse
        .migrate(&MIGRATIONS[..at])
        .await
        .expect("the migrations before it");
    let db = clickhouse.database().to_string();
    let statements = interrupted.statements(&db);
    assert!(statements.len() > 2 && statements.iter().all(|s| s.contains(" ADD COLUMN ")));
    // The first two statements ran, then the process died.
    for statement in &statements[..2] {
        let sqls = match clickhouse.cluster() {
            None => vec![statement.clone()],
            Some(cluster) => translate(statement, cluster, &db)
                .expect("translates")
                .into_iter()
                .filter_map(|step| match step {
                    Step::Execute(sql) => Some(sql),
                    Step::Distributed(_) => None,
                })
                .collect(),
        };
        for sql in sqls {
            clickhouse
                .execute(&sql)
                .await
                .expect("half of the migration");
        }
    }
    let applied = clickhouse
        .migrate(MIGRATIONS)
        .await
        .expect("migrate finishes the interrupted migration");
    assert_eq!(applied.first(), Some(&interrupted.version));
    // Its table now has exactly the columns its writer sends.
    let table = "grid_job";
    let columns: Vec<String> = clickhouse
        .fetch_all::<String>(&format!(
            "SELECT name FROM system.columns WHERE database = '{db}' AND table = '{table}' AND default_kind NOT IN ('MATERIALIZED', 'ALIAS')"
        ))
        .await
        .expect("columns");
    let encoder = hudstream_projections::by_table(table).expect("grid_job's projection");
    let writer: Vec<String> = encoder.columns().iter().map(|c| c.to_string()).collect();
    assert_eq!(columns, writer);
    clickhouse
        .execute(&format!("DROP DATABASE {db}{}", clickhouse.on_cluster()))
        .await
        .expect("drop");
}

/// Connections the server closes just as a statement goes out (stale keep-alive connections,
/// several at once on a loaded box) do not fail a migration or a read: the client sends what
/// may run twice again over a fresh connection. What may not run twice is not sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_are_sent_again_over_connections_closed_before_any_answer() {
    use hudstream_schemas::migrations::MIGRATIONS;
    let config = test_config();
    // Three closed connections in a row: one more try would not have been enough.
    let proxy = ClosingProxy::start(&config.clickhouse.url, 3).await;
    let mut through = config.clone();
    through.clickhouse.url = proxy.url.clone();
    let clickhouse = ClickHouse::new(&through.clickhouse).expect("client");
    let applied = clickhouse
        .migrate(MIGRATIONS)
        .await
        .expect("migrate goes through the closed connections");
    assert_eq!(applied.len(), MIGRATIONS.len());
    assert!(proxy.accepted() >= 4, "{} connections", proxy.accepted());
    let tables: Vec<String> = clickhouse
        .fetch_all(&format!(
            "SELECT name FROM system.tables WHERE database = '{}' AND name = 'schema_migrations'",
            clickhouse.database()
        ))
        .await
        .expect("a read");
    assert_eq!(tables, vec!["schema_migrations".to_string()]);

    // An INSERT is not sent again by the client: its error says the server could not be
    // reached, and the caller (the projection writer) decides.
    let proxy = ClosingProxy::start(&config.clickhouse.url, 1).await;
    through.clickhouse.url = proxy.url.clone();
    let fresh = ClickHouse::new(&through.clickhouse).expect("client");
    let db = fresh.database().to_string();
    let error = fresh
        .execute(&format!(
            "INSERT INTO {db}.schema_migrations (version, name, checksum) VALUES (9999, 'x', 'y')"
        ))
        .await
        .expect_err("the insert's connection closed");
    assert!(
        matches!(
            error,
            hudstream_runtime::clickhouse::ClickHouseError::Unreachable { .. }
        ),
        "{error}"
    );
    clickhouse
        .execute(&format!("DROP DATABASE {db}{}", clickhouse.on_cluster()))
        .await
        .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_row_is_dead_lettered_alone_and_the_rest_of_its_batch_is_written() {
    let config = prepared_config().await;
    // 40 good jobs with one keyless job among them, all in the topic before the projection
    // starts, so they arrive as one batch.
    let mut records = job_records(5_000, 40, 1);
    let mut keyless = hudstream_processors::workflow_job::normalize(
        &hudstream_e2e::fixture("workflow_job/completed.success.with-organization.payload.json")
            .body,
    )
    .expect("fixture");
    keyless.repository_full_name = String::new();
    records.insert(
        17,
        OutRecord {
            topic: HUD_WORKFLOW_JOB_V1.into(),
            key: b"keyless".to_vec(),
            payload: Codec::<WorkflowJob>::new()
                .expect("codec")
                .encode(&keyless)
                .expect("encodes"),
            headers: Vec::new(),
        },
    );
    append_all(&config, &records).await;
    let projections = Running::projections(&config);
    let clickhouse = ClickHouse::new(&config.clickhouse).expect("client");
    // The four tables of the job topic refuse it, each stage dead-letters its own copy.
    wait_until("the refused rows in dead_letter", 60, || {
        let clickhouse = clickhouse.clone();
        async move { count(&clickhouse, "SELECT count() AS n FROM {db}.dead_letter").await >= 4 }
    })
    .await;
    #[derive(serde::Deserialize)]
    struct Letter {
        stage: String,
        source_offset: i64,
        reason: String,
    }
    let letters: Vec<Letter> = clickhouse
        .query_json(&format!(
            "SELECT stage, source_offset, reason FROM {}.dead_letter ORDER BY stage",
            clickhouse.database()
        ))
        .await
        .expect("dead letters");
    assert_eq!(
        letters
            .iter()
            .map(|l| (l.stage.as_str(), l.source_offset))
            .collect::<Vec<_>>(),
        vec![
            ("project.grid_job", 17),
            ("project.job_page", 17),
            ("project.workflow_job", 17),
            ("project.workflow_job_by_id", 17)
        ]
    );
    for (letter, table) in
        letters
            .iter()
            .zip(["grid_job", "job_page", "workflow_job", "workflow_job_by_id"])
    {
        assert!(
            letter
                .reason
                .contains(&format!("refused this row of {table}"))
                && letter.reason.contains("_check_"),
            "{}",
            letter.reason
        );
    }
    assert_exactly_once(&clickhouse, 40, 1).await;
    projections.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_pause_while_clickhouse_is_down_for_30_s_and_resume_by_themselves() {
    init_logs();
    let mut server = OwnClickHouse::start().await;
    let mut config = test_config();
    config.clickhouse.url = server.url();
    config.clickhouse.cluster = String::new(); // a single server of its own
    config.clickhouse.request_timeout_ms = 5_000;
    config.pipeline.retry_max_backoff_ms = 2_000;
    hudstream::create_topics(&config).await.expect("topics");
    hudstream::migrate(&config).await.expect("migrate");
    let projections = Running::projections(&config);
    let clickhouse = ClickHouse::new(&config.clickhouse).expect("client");

    // First half of the stream, written while the server is up.
    append_all(&config, &job_records(1, 1000, 2)).await;
    wait_until("the first rows", 60, || {
        let clickhouse = clickhouse.clone();
        async move { count(&clickhouse, "SELECT count() AS n FROM {db}.workflow_job").await > 0 }
    })
    .await;
    // The server goes away mid-stream; the second half arrives while it is down.
    tokio::task::block_in_place(|| server.stop());
    append_all(&config, &job_records(1001, 1000, 2)).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        !projections.is_finished(),
        "the projections keep retrying, they do not give up"
    );
    server.resume().await;
    // Done when every job is at its last version: a job's two versions may land in different
    // batches, so "2000 rows" alone can be seen between them.
    wait_until("every job at its last version", 120, || {
        let clickhouse = clickhouse.clone();
        async move {
            count(
                &clickhouse,
                "SELECT count() AS n FROM {db}.workflow_job FINAL WHERE version = 2",
            )
            .await
                >= 2000
        }
    })
    .await;
    assert_exactly_once(&clickhouse, 2000, 2).await;
    projections.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_killed_with_sigkill_mid_stream_loses_nothing_after_a_restart() {
    let config = prepared_config().await;
    let jobs = 10_000u64;
    append_all(&config, &job_records(1, jobs as usize, 2)).await;
    let start = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hudstream-under-test"))
            .arg("project")
            .env_remove("HUDSTREAM_CONFIG")
            .env("HUDSTREAM_KAFKA__BROKERS", &config.kafka.brokers)
            .env("HUDSTREAM_KAFKA__TOPIC_PREFIX", &config.kafka.topic_prefix)
            .env("HUDSTREAM_KAFKA__GROUP_PREFIX", &config.kafka.group_prefix)
            .env("HUDSTREAM_KAFKA__SESSION_TIMEOUT_MS", "2000")
            .env("HUDSTREAM_KAFKA__HEARTBEAT_INTERVAL_MS", "300")
            .env("HUDSTREAM_CLICKHOUSE__URL", &config.clickhouse.url)
            .env("HUDSTREAM_CLICKHOUSE__CLUSTER", &config.clickhouse.cluster)
            .env(
                "HUDSTREAM_CLICKHOUSE__DATABASE",
                &config.clickhouse.database,
            )
            .env("HUDSTREAM_PIPELINE__PROJECTION_BATCH_MAX_RECORDS", "1000")
            .env("HUDSTREAM_PIPELINE__PROJECTION_BATCH_LINGER_MS", "50")
            .env("HUDSTREAM_TELEMETRY__METRICS_LISTEN", "")
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("hudstream-under-test")
    };
    let clickhouse = ClickHouse::new(&config.clickhouse).expect("client");
    let mut child = start();
    wait_until("some batches written", 120, || {
        let clickhouse = clickhouse.clone();
        async move { count(&clickhouse, "SELECT count() AS n FROM {db}.workflow_job").await >= 3000 }
    })
    .await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let at_kill = count(&clickhouse, "SELECT count() AS n FROM {db}.workflow_job").await;
    assert!(
        at_kill < 2 * jobs,
        "killed mid-stream ({at_kill} rows stored)"
    );

    let mut child = start();
    wait_until("every job in the table", 180, || {
        let clickhouse = clickhouse.clone();
        async move {
            count(
                &clickhouse,
                "SELECT count() AS n FROM {db}.workflow_job FINAL WHERE version = 2",
            )
            .await
                >= jobs
        }
    })
    .await;
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    child.wait().expect("stops");
    assert_exactly_once(&clickhouse, jobs, 2).await;
}

/// The newest version of an entity that cannot be written leaves the older version in the
/// table (whatever the batch boundaries), and several refused rows in one batch are each set
/// aside alone while the rest is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_newest_version_leaves_the_older_one_and_every_refused_row_is_set_aside() {
    let config = prepared_config().await;
    let codec = Codec::<WorkflowJob>::new().expect("codec");
    let template = hudstream_processors::workflow_job::normalize(
        &hudstream_e2e::fixture("workflow_job/completed.success.with-organization.payload.json")
            .body,
    )
    .expect("fixture");
    let job = |id: i64, version: i64, repo: &str| {
        let mut job = template.clone();
        job.id = id;
        job.version = version;
        job.repository_full_name = repo.to_string();
        job
    };
    let record = |key: &str, payload: Vec<u8>| OutRecord {
        topic: HUD_WORKFLOW_JOB_V1.into(),
        key: key.as_bytes().to_vec(),
        payload,
        headers: Vec::new(),
    };
    let mut records = job_records(1000, 30, 1);
    // Keyless jobs, refused by the table's _check_row_has_key, spread through the batch.
    for (at, key) in [(3, "bad-a"), (15, "bad-b"), (28, "bad-c")] {
        records.insert(
            at,
            record(key, codec.encode(&job(0, 1, "")).expect("encodes")),
        );
    }
    // Job 901: a good version 1, then a version 2 the server refuses.
    records.push(record(
        "o/r/901",
        codec.encode(&job(901, 1, "o/r")).expect("encodes"),
    ));
    records.push(record(
        "o/r/901",
        codec.encode(&job(901, 2, "")).expect("encodes"),
    ));
    // Job 902: a good version 1, then a version 2 whose body is cut short (unreadable).
    records.push(record(
        "o/r/902",
        codec.encode(&job(902, 1, "o/r")).expect("encodes"),
    ));
    let mut cut = codec.encode(&job(902, 2, "o/r")).expect("encodes");
    cut.truncate(40);
    records.push(record("o/r/902", cut));
    append_all(&config, &records).await;

    let projections = Running::projections(&config);
    let clickhouse = ClickHouse::new(&config.clickhouse).expect("client");
    // Four stages read hud.workflow_job.v1 and set the same records aside, each at its own
    // pace, and on a cluster a read may reach a replica the rows have not reached yet: each
    // count is waited for (up to 60 s), then checked.
    settles_at(
        &clickhouse,
        "SELECT count() AS n FROM {db}.dead_letter FINAL WHERE stage = 'project.workflow_job'",
        5,
        "three keyless rows, job 901's refused and job 902's unreadable version",
    )
    .await;
    for id in [901, 902] {
        settles_at(
            &clickhouse,
            &format!("SELECT count() AS n FROM {{db}}.workflow_job FINAL WHERE id = {id} AND version = 1"),
            1,
            &format!("job {id} keeps its older, writable version"),
        )
        .await;
    }
    settles_at(
        &clickhouse,
        "SELECT count() AS n FROM {db}.workflow_job FINAL",
        32,
        "the 30 good jobs and jobs 901 and 902",
    )
    .await;
    projections.stop().await;
}

/// Waits up to 60 s for `sql`'s count to be `expected`, then checks it (the last value seen).
async fn settles_at(clickhouse: &ClickHouse, sql: &str, expected: u64, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let seen = count(clickhouse, sql).await;
        if seen == expected || std::time::Instant::now() > deadline {
            assert_eq!(seen, expected, "{what}");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A replay includes what is appended while it runs, and on ClickHouse 18.16 swaps by RENAME.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_appended_during_a_replay_end_in_the_rebuilt_table() {
    let config = prepared_config().await;
    append_all(&config, &job_records(1, 300, 1)).await;
    let replayer = hudstream::replayer(&config).expect("replayer");
    let more = job_records(301, 300, 1);
    let mut appended = false;
    // No live projection runs: only the replay can put the later records in the table.
    let report = replayer
        .replay(
            hudstream_projections::by_table("workflow_job").expect("table"),
            &mut |_| {
                if !appended {
                    appended = true;
                    let handle = tokio::runtime::Handle::current();
                    tokio::task::block_in_place(|| handle.block_on(append_all(&config, &more)));
                }
            },
        )
        .await
        .expect("replay");
    assert!(appended, "progress was reported");
    assert_eq!(
        report.swap,
        Some(hudstream_runtime::clickhouse::Swap::Rename),
        "18.16 has no EXCHANGE TABLES"
    );
    assert_eq!(report.events, 600);
    let clickhouse = ClickHouse::new(&config.clickhouse).expect("client");
    assert_eq!(
        count(
            &clickhouse,
            "SELECT count() AS n FROM {db}.workflow_job FINAL"
        )
        .await,
        600
    );
}

/// A replay cannot shrink a table (issue #19): when the log no longer holds what a table was
/// made of — here the broker "lost its data": the same database, fresh empty topics — the
/// rebuild is refused before its swap, the live table keeps every row and no shadow is left;
/// a log that kept only some of it is refused too, and `--allow-shrink` swaps it in anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_that_would_lose_rows_is_refused_before_its_swap_unless_allowed() {
    let config = prepared_config().await;
    append_all(&config, &job_records(1, 200, 1)).await;
    let table = || hudstream_projections::by_table("workflow_job").expect("table");
    let report = hudstream::replayer(&config)
        .expect("replayer")
        .replay(table(), &mut |_| {})
        .await
        .expect("a whole log replays");
    assert_eq!(report.events, 200);
    let clickhouse = ClickHouse::new(&config.clickhouse).expect("client");
    let rows = || async {
        count(
            &clickhouse,
            "SELECT count() AS n FROM {db}.workflow_job FINAL",
        )
        .await
    };
    let leftovers = || async {
        count(
            &clickhouse,
            "SELECT count() AS n FROM system.tables WHERE database = '{db}' AND (position(name, '__replay') > 0 OR position(name, '__old') > 0)",
        )
        .await
    };
    assert_eq!(rows().await, 200);

    let mut lost = config.clone();
    lost.kafka.topic_prefix = format!("{}lost.", config.kafka.topic_prefix);
    hudstream::create_topics(&lost).await.expect("topics");
    let error = hudstream::replayer(&lost)
        .expect("replayer")
        .replay(table(), &mut |_| {})
        .await
        .expect_err("an empty log must not replace 200 rows");
    assert!(
        error
            .to_string()
            .contains("refusing to replace workflow_job: 200 of the 200 entities in the live table would be lost"),
        "{error:#}"
    );
    assert_eq!(rows().await, 200, "the live table is untouched");
    assert_eq!(leftovers().await, 0, "the shadow is dropped");

    // The log kept a quarter of it.
    append_all(&lost, &job_records(1, 50, 1)).await;
    let mut replayer = hudstream::replayer(&lost).expect("replayer");
    let error = replayer
        .replay(table(), &mut |_| {})
        .await
        .expect_err("a partial log must not replace the table");
    assert!(
        error.to_string().contains("150 of the 200 entities"),
        "{error:#}"
    );
    assert_eq!(rows().await, 200);
    replayer.allow_shrink = true;
    replayer
        .replay(table(), &mut |_| {})
        .await
        .expect("--allow-shrink swaps it in");
    assert_eq!(
        rows().await,
        50,
        "what the operator accepted to lose is gone"
    );
    assert_eq!(leftovers().await, 0);
}

/// Stages heal (issue #19): projections started before their topics exist — a normal start
/// order under Kubernetes — consume them once they are created, within 30 s, without a
/// restart (clients refresh topic metadata every 10 s, not librdkafka's 5 minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_started_before_their_topics_exist_consume_them_once_created() {
    init_logs();
    let config = test_config();
    hudstream::migrate(&config).await.expect("migrate");
    let projections = hudstream_e2e::Running::projections(&config);
    tokio::time::sleep(Duration::from_secs(3)).await;
    hudstream::create_topics(&config).await.expect("topics");
    append_all(&config, &job_records(1, 20, 1)).await;
    let appended = Instant::now();
    let clickhouse = ClickHouse::new(&config.clickhouse).expect("client");
    wait_until(
        "the jobs appended after the topics were created",
        60,
        || async {
            count(
                &clickhouse,
                "SELECT count() AS n FROM {db}.workflow_job FINAL",
            )
            .await
                == 20
        },
    )
    .await;
    let took = appended.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "the projection took {took:?} to notice its new topic"
    );
    projections.stop().await;
}
