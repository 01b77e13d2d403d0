//! The consumer loop's promises on the real broker: a failed batch is retried, never skipped;
//! offsets are committed only after the batch succeeded; bad records become dead letters.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hudstream_e2e::{read_topic, test_config, Stack};
use hudstream_runtime::kafka::{ensure_topics, run_stage, Appender};
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::worker::{Action, BatchHandler, InRecord, OutRecord};
use hudstream_schemas::headers as h;
use hudstream_schemas::topics::{DEAD_LETTERS, GITHUB_WORKFLOW_JOB};

/// Fails its first `failures` batches, then remembers every record it handled.
struct Flaky {
    failures: usize,
    seen: Arc<Mutex<Vec<String>>>,
}

impl BatchHandler for Flaky {
    fn stage(&self) -> &'static str {
        "test.flaky"
    }
    fn input_topic(&self) -> &'static str {
        "test.input"
    }
    async fn handle(&mut self, batch: &[InRecord]) -> anyhow::Result<Vec<(usize, Action)>> {
        if self.failures > 0 {
            self.failures -= 1;
            anyhow::bail!("simulated ClickHouse outage");
        }
        let mut seen = self.seen.lock().expect("lock");
        seen.extend(batch.iter().map(|r| {
            String::from_utf8_lossy(r.payload.as_deref().unwrap_or_default()).into_owned()
        }));
        Ok(vec![])
    }
}

async fn produce(appender: &Appender, values: impl IntoIterator<Item = String>) {
    for v in values {
        appender
            .append(&OutRecord {
                topic: "test.input".into(),
                key: b"k".to_vec(),
                payload: v.into_bytes(),
                headers: vec![],
            })
            .await
            .expect("appended");
    }
}

/// Runs a [`Flaky`] stage that fails its first `failures` batches until it has seen `wanted`
/// records, then stops it; answers what it saw, in order.
async fn run_flaky(
    config: &hudstream_runtime::Config,
    appender: &Appender,
    failures: usize,
    wanted: usize,
) -> Vec<String> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let shutdown = CancellationToken::new();
    let handler = Flaky {
        failures,
        seen: seen.clone(),
    };
    let (k, p, a, s) = (
        config.kafka.clone(),
        config.pipeline.clone(),
        appender.clone(),
        shutdown.clone(),
    );
    let run =
        tokio::spawn(async move { run_stage(&k, p.processor_batches(), handler, a, s).await });
    wait_until(&format!("{wanted} record(s)"), || {
        seen.lock().expect("lock").len() >= wanted
    })
    .await;
    shutdown.cancel();
    run.await.expect("joined").expect("stage ran");
    let seen = seen.lock().expect("lock").clone();
    seen
}

/// Waits (60 s at most) for a condition on what the test handler has seen.
async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    hudstream_e2e::wait_until(what, 60, || std::future::ready(cond())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_is_retried_until_it_succeeds_and_then_committed() {
    let config = test_config();
    ensure_topics(
        &config.kafka,
        &["test.input".to_string(), DEAD_LETTERS.to_string()],
    )
    .await
    .expect("topics");
    let appender = Appender::new(&config.kafka).expect("producer");
    produce(&appender, (0..20).map(|i| format!("r{i}"))).await;

    // First run: three failed attempts, then success.
    let first = run_flaky(&config, &appender, 3, 20).await;
    assert_eq!(
        first,
        (0..20).map(|i| format!("r{i}")).collect::<Vec<_>>(),
        "every record, in order, none skipped"
    );

    // Second run in the same group: it starts after the committed offsets.
    produce(&appender, ["after-restart".to_string()]).await;
    let second = run_flaky(&config, &appender, 0, 1).await;
    assert_eq!(
        second,
        vec!["after-restart".to_string()],
        "committed records are not redelivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_processor_cannot_read_is_dead_lettered_with_the_reason_and_the_stream_goes_on(
) {
    let stack = Stack::start().await;
    let appender = Appender::new(&stack.config.kafka).expect("producer");
    appender
        .append(&OutRecord {
            topic: GITHUB_WORKFLOW_JOB.into(),
            key: b"broken".to_vec(),
            payload: b"{\"action\": \"completed\", \"workflow_job\": {\"id\": \"twelve\"}}"
                .to_vec(),
            headers: vec![(h::GITHUB_DELIVERY.into(), b"broken-delivery".to_vec())],
        })
        .await
        .expect("appended");
    stack
        .post(&hudstream_e2e::fixture("workflow_job/queued.payload.json"))
        .await;

    let dead = read_topic(&stack.config, DEAD_LETTERS, |rs| !rs.is_empty()).await;
    let letter = &dead[0];
    assert_eq!(
        letter.payload.as_deref(),
        Some(&b"{\"action\": \"completed\", \"workflow_job\": {\"id\": \"twelve\"}}"[..]),
        "the value is kept unchanged"
    );
    assert_eq!(letter.key.as_deref(), Some(&b"broken"[..]));
    assert_eq!(
        letter.header_str(h::DLQ_STAGE),
        Some("process.workflow_job")
    );
    assert_eq!(
        letter.header_str(h::GITHUB_DELIVERY),
        Some("broken-delivery")
    );
    assert_eq!(
        letter.header_str(h::SOURCE),
        Some("github.workflow_job/0/0")
    );
    let reason = letter.header_str(h::DLQ_REASON).expect("reason");
    assert!(
        reason.contains("invalid type") && reason.contains("twelve"),
        "{reason}"
    );

    // The good record after it still made it through.
    stack
        .wait_for("/api/jobs/Codertocat/Hello-World/289782451", |j| {
            j["status"] == "queued"
        })
        .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_re_driven_after_a_fix_produces_the_derived_record() {
    let stack = Stack::start().await;
    let appender = Appender::new(&stack.config.kafka).expect("producer");
    // What an older processor with a bug would have set aside: a valid delivery.
    let good =
        hudstream_e2e::fixture("workflow_job/completed.success.with-organization.payload.json");
    appender
        .append(&OutRecord {
            topic: DEAD_LETTERS.into(),
            key: b"Codertocat/Hello-World/289782451".to_vec(),
            payload: good.body.clone(),
            headers: vec![
                (h::GITHUB_DELIVERY.into(), b"old-bug".to_vec()),
                (h::GITHUB_EVENT.into(), b"workflow_job".to_vec()),
                (
                    h::DLQ_REASON.into(),
                    b"simulated bug in an older processor".to_vec(),
                ),
                (h::DLQ_STAGE.into(), b"process.workflow_job".to_vec()),
                (h::SOURCE.into(), b"github.workflow_job/0/41".to_vec()),
            ],
        })
        .await
        .expect("appended");
    // And one that is still bad: it goes back to the dead letters.
    appender
        .append(&OutRecord {
            topic: GITHUB_WORKFLOW_JOB.into(),
            key: b"broken".to_vec(),
            payload: b"{}".to_vec(),
            headers: vec![],
        })
        .await
        .expect("appended");
    read_topic(&stack.config, DEAD_LETTERS, |rs| rs.len() >= 2).await;

    let letters =
        hudstream::commands::dead_letters::read_all(&stack.config, Duration::from_millis(1500))
            .await
            .expect("listed");
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0].reason, "simulated bug in an older processor");
    assert_eq!(letters[0].source_topic, GITHUB_WORKFLOW_JOB);
    assert!(
        letters[1].reason.contains("missing field `workflow_job`"),
        "{}",
        letters[1].reason
    );
    let n = hudstream::commands::dead_letters::redrive(&appender, &letters)
        .await
        .expect("re-driven");
    assert_eq!(n, 2);

    // The fixed processor derives the job; the still-bad record is dead-lettered again.
    let job = stack
        .wait_for("/api/jobs/Codertocat/Hello-World/289782451", |j| {
            j["status"] == "completed"
        })
        .await;
    assert_eq!(job["conclusion"], "success");
    let dead = read_topic(&stack.config, DEAD_LETTERS, |rs| rs.len() >= 3).await;
    let again = &dead[2];
    assert_eq!(
        again.header_str(hudstream::commands::dead_letters::REDRIVEN_FROM),
        Some("0/1")
    );
    assert_eq!(again.payload.as_deref(), Some(&b"{}"[..]));
    stack.stop().await;
}

/// Real workflow_job deliveries, each its own job, appended straight to the raw topic.
async fn append_jobs(appender: &Appender, count: usize, first_id: u64) -> Vec<String> {
    let jobs = hudstream_ingest::fixtures::rekeyed_workflow_jobs(
        &hudstream_ingest::fixtures::default_dir(),
        count,
        first_id,
        0,
    )
    .expect("fixtures");
    let mut keys = Vec::new();
    for (key, body) in jobs {
        appender
            .append(&OutRecord {
                topic: GITHUB_WORKFLOW_JOB.into(),
                key: key.clone().into_bytes(),
                payload: body,
                headers: vec![],
            })
            .await
            .expect("appended");
        keys.push(key);
    }
    keys
}

fn distinct_keys(records: &[InRecord]) -> std::collections::BTreeSet<String> {
    records
        .iter()
        .filter_map(|r| {
            r.key
                .as_deref()
                .map(|k| String::from_utf8_lossy(k).into_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_killed_mid_stream_and_restarted_loses_nothing() {
    use hudstream_processors::workflow_job::WorkflowJobProcessor;
    use hudstream_runtime::worker::PerRecord;
    use hudstream_schemas::topics::HUD_WORKFLOW_JOB_V1;
    let mut config = test_config();
    config.kafka.partitions = 4;
    config.pipeline.batch_max_records = 20;
    hudstream::create_topics(&config).await.expect("topics");
    let appender = Appender::new(&config.kafka).expect("producer");
    let keys = append_jobs(&appender, 600, 5_000_000_000).await;

    let start = |config: &hudstream_runtime::Config| {
        let (k, p, a) = (
            config.kafka.clone(),
            config.pipeline.clone(),
            appender.clone(),
        );
        tokio::spawn(async move {
            run_stage(
                &k,
                p.processor_batches(),
                PerRecord(WorkflowJobProcessor),
                a,
                CancellationToken::new(),
            )
            .await
        })
    };
    let first = start(&config);
    read_topic(&config, HUD_WORKFLOW_JOB_V1, |rs| rs.len() >= 100).await;
    // A crash, not a shutdown: the task is dropped mid-batch, with no final commit.
    first.abort();
    let _ = first.await;
    let second = start(&config);
    let want = keys.len();
    let records = read_topic(&config, HUD_WORKFLOW_JOB_V1, move |rs| {
        distinct_keys(rs).len() >= want
    })
    .await;
    second.abort();
    let derived = distinct_keys(&records);
    for key in &keys {
        assert!(derived.contains(key), "{key} was lost");
    }
    // At-least-once: a crash may repeat some records, never skip one.
    assert!(records.len() >= keys.len());
}

/// Remembers which partitions it handled.
struct Recorder {
    partitions: Arc<Mutex<std::collections::BTreeSet<i32>>>,
    records: Arc<Mutex<Vec<String>>>,
}

impl BatchHandler for Recorder {
    fn stage(&self) -> &'static str {
        "test.recorder"
    }
    fn input_topic(&self) -> &'static str {
        GITHUB_WORKFLOW_JOB
    }
    async fn handle(&mut self, batch: &[InRecord]) -> anyhow::Result<Vec<(usize, Action)>> {
        self.partitions
            .lock()
            .expect("lock")
            .extend(batch.iter().map(|r| r.partition));
        self.records.lock().expect("lock").extend(
            batch.iter().map(|r| {
                String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned()
            }),
        );
        Ok(vec![])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_in_one_group_split_the_partitions() {
    let mut config = test_config();
    config.kafka.partitions = 4;
    hudstream::create_topics(&config).await.expect("topics");
    let appender = Appender::new(&config.kafka).expect("producer");
    let shutdown = CancellationToken::new();
    let mut instances = Vec::new();
    for _ in 0..2 {
        let (partitions, records) = (
            Arc::new(Mutex::new(Default::default())),
            Arc::new(Mutex::new(Vec::new())),
        );
        let handler = Recorder {
            partitions: partitions.clone(),
            records: records.clone(),
        };
        let (k, p, a, s) = (
            config.kafka.clone(),
            config.pipeline.clone(),
            appender.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move { run_stage(&k, p.processor_batches(), handler, a, s).await });
        instances.push((partitions, records));
    }
    // Keep producing while the group settles, so both members get work once it has.
    let mut keys = Vec::new();
    for round in 0..40u64 {
        keys.extend(append_jobs(&appender, 10, 6_000_000_000 + round * 10).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let want: std::collections::BTreeSet<String> = keys.into_iter().collect();
    wait_until("every record handled by the group", || {
        let seen: std::collections::BTreeSet<String> = instances
            .iter()
            .flat_map(|(_, r)| r.lock().expect("lock").clone())
            .collect();
        want.is_subset(&seen)
    })
    .await;
    shutdown.cancel();
    let (a, b) = (
        instances[0].0.lock().expect("lock").clone(),
        instances[1].0.lock().expect("lock").clone(),
    );
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both members handled partitions: {a:?} {b:?}"
    );
    assert_eq!(
        a.union(&b).count(),
        4,
        "together they covered all four partitions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_during_a_group_join_returns_promptly() {
    // A stop while the consumer is still joining its group used to hang in the consumer's
    // close (a rebalance "assign" served during close). Stop at several points of the join.
    let config = test_config();
    ensure_topics(
        &config.kafka,
        &["test.input".to_string(), DEAD_LETTERS.to_string()],
    )
    .await
    .expect("topics");
    let appender = Appender::new(&config.kafka).expect("producer");
    for delay_ms in [0u64, 200, 500, 900, 1300, 2000] {
        let shutdown = CancellationToken::new();
        let handler = Flaky {
            failures: 0,
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let (k, p, a, s) = (
            config.kafka.clone(),
            config.pipeline.clone(),
            appender.clone(),
            shutdown.clone(),
        );
        let run =
            tokio::spawn(async move { run_stage(&k, p.processor_batches(), handler, a, s).await });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), run)
            .await
            .unwrap_or_else(|_| {
                panic!("the stage did not stop within 15 s when stopped {delay_ms} ms after start")
            })
            .expect("joined")
            .expect("stage ran");
    }
}
