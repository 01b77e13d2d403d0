//! Stages that stop consuming are seen, and stages heal (#19's second failure):
//! - a projection whose ClickHouse is gone has records waiting and commits nothing: within its
//!   stall time `/readyz` answers 503 naming it, `hudstream_stage_stalled` is 1, and the shipped
//!   alert `HudstreamStageStalled`, evaluated by a real Prometheus scraping the process, fires;
//!   once ClickHouse is back the stage drains and is ready again;
//! - the durable broker is SIGKILLed and started again: the gateway acknowledges again and what
//!   it acknowledges reaches its table within 30 s, no stage restarted, and what the log held
//!   before is still there at the same offsets;
//! - a topic is deleted and created again, with a second partition, under the running stages:
//!   what the gateway then acknowledges reaches its table within 30 s, on either partition, no
//!   stage restarted (the durable broker, like Kafka past a log's end, never tells the consumer;
//!   the stage watch rewinds it; the new partition is assigned at the next metadata refresh).

use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

use serde_json::Value;

use hudstream_e2e::*;
use hudstream_ingest::fixtures::Delivery;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Debian's Prometheus, scraping `target` every second with the shipped alert rules.
fn start_prometheus(target: &str) -> (Child, String) {
    let bin =
        std::env::var("HUDSTREAM_TEST_PROMETHEUS").unwrap_or_else(|_| "/usr/bin/prometheus".into());
    let dir = tempdir("prometheus");
    let rules =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/alerts.yml");
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: ['{}']\nscrape_configs:\n  - job_name: hudstream-run\n    static_configs: [{{targets: ['{target}']}}]\n",
            rules.canonicalize().expect("alerts.yml").display()
        ),
    )
    .expect("prometheus.yml");
    let port = free_port();
    let child = Command::new(&bin)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{bin}: {e} (run with deploy/local/hud test, which installs Debian's prometheus)"
            )
        });
    (child, format!("http://127.0.0.1:{port}"))
}

async fn firing(http: &reqwest::Client, prometheus: &str, alert: &str) -> Option<Value> {
    let alerts: Value = http
        .get(format!("{prometheus}/api/v1/alerts"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    alerts["data"]["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == alert && a["state"] == "firing")
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stage_that_stops_consuming_shows_in_readyz_and_metrics_and_its_alert_fires_in_prometheus(
) {
    let mut clickhouse = OwnClickHouse::start().await;
    let mut config = test_config();
    config.clickhouse.url = clickhouse.url();
    config.clickhouse.cluster = String::new(); // a single server of its own
    config.pipeline.watch_interval_ms = 500;
    config.pipeline.stall_after_ms = 3_000;
    config.telemetry.metrics_listen = format!("127.0.0.1:{}", free_port());
    let stack = Stack::start_with(config.clone()).await;
    let metrics_shutdown = tokio_util::sync::CancellationToken::new();
    {
        let (config, shutdown) = (config.clone(), metrics_shutdown.clone());
        tokio::spawn(async move {
            let stages: Vec<&hudstream::stages::Stage> = hudstream::stages::STAGES
                .iter()
                .filter(|s| (s.in_run)(&config))
                .collect();
            hudstream::serve_metrics(&config, &stages, shutdown).await
        });
    }
    let metrics = format!("http://{}", config.telemetry.metrics_listen);
    let (mut prometheus, prometheus_url) = start_prometheus(&config.telemetry.metrics_listen);

    // Healthy first: a job reaches its table, every stage is ready.
    stack
        .post_all([&fixture(
            "workflow_job/completed.success.with-organization.payload.json",
        )])
        .await;
    stack
        .wait_for("/api/jobs/Codertocat/Hello-World/289782451", |j| {
            j["status"] == "completed"
        })
        .await;

    // ClickHouse goes away; jobs keep arriving and are acknowledged.
    clickhouse.stop();
    stack
        .post_all([&derived(
            "workflow_job/in_progress.payload.json",
            "stall-1",
            |b| {
                b["workflow_job"]["id"] = 777_000_001.into();
            },
        )])
        .await;
    let started = Instant::now();
    let readyz = loop {
        let response = stack
            .http
            .get(format!("{metrics}/readyz"))
            .send()
            .await
            .expect("metrics endpoint");
        let body: Value = response.json().await.unwrap_or_default();
        // Every projection stalls (ClickHouse is theirs); wait for the jobs' one to be named.
        if body.to_string().contains("not consuming")
            && body.to_string().contains("project.workflow_job")
        {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not reported within 60 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let reason = readyz.to_string();
    assert!(reason.contains("project.workflow_job"), "{reason}");
    assert!(
        reason.contains("waiting") && reason.contains("partition"),
        "{reason}"
    );
    let page = stack
        .http
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        page.lines()
            .any(|l| l.starts_with("hudstream_stage_stalled{")
                && l.contains("project.workflow_job")
                && l.ends_with(" 1")),
        "no hudstream_stage_stalled 1 for project.workflow_job"
    );
    println!(
        "stalled after {:.1} s: {reason}",
        started.elapsed().as_secs_f64()
    );

    // The shipped alert, evaluated by a real Prometheus.
    let alert = loop {
        if let Some(a) = firing(&stack.http, &prometheus_url, "HudstreamStageStalled").await {
            break a;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "HudstreamStageStalled did not fire"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        alert["labels"]["stage"]
            .as_str()
            .is_some_and(|s| s.starts_with("project.")),
        "{alert}"
    );
    println!(
        "HudstreamStageStalled fired after {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        alert["labels"]
    );

    // ClickHouse is back: the stage drains, and is ready again.
    clickhouse.resume().await;
    stack
        .wait_for("/api/jobs/Codertocat/Hello-World/777000001", |j| {
            j["status"] == "in_progress"
        })
        .await;
    let back = Instant::now();
    loop {
        let response = stack
            .http
            .get(format!("{metrics}/readyz"))
            .send()
            .await
            .expect("metrics endpoint");
        if response.status() == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(60),
            "still not ready: {}",
            response.text().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    metrics_shutdown.cancel();
    stack.stop().await;
}

/// Posts `delivery` (an in-progress job, id `job`) until the gateway acknowledges it (within
/// 60 s of `since`), then waits until the job is in ClickHouse (within 30 s of that). Answers
/// the seconds from `since` to the acknowledgement and from it to the row.
async fn acknowledged_then_in_clickhouse(
    stack: &Stack,
    delivery: &Delivery,
    job: u64,
    since: Instant,
) -> (f64, f64) {
    while !stack.post(delivery).await.status().is_success() {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "the gateway never acknowledged job {job}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let acknowledged = Instant::now();
    loop {
        let (status, row) = stack
            .api(&format!("/api/jobs/Codertocat/Hello-World/{job}"))
            .await;
        if status == 200 && row["status"] == "in_progress" {
            break;
        }
        assert!(
            acknowledged.elapsed() < Duration::from_secs(30),
            "job {job} acknowledged {} s ago and still not in ClickHouse",
            acknowledged.elapsed().as_secs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    (
        (acknowledged - since).as_secs_f64(),
        acknowledged.elapsed().as_secs_f64(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_broker_sigkill_the_pipeline_resumes_by_itself_and_the_log_is_still_there() {
    let mut broker = DurableBroker::start().await;
    let mut config = test_config();
    config.kafka.brokers = broker.brokers();
    let stack = Stack::start_with(config.clone()).await;
    stack
        .post_all([&fixture(
            "workflow_job/completed.success.with-organization.payload.json",
        )])
        .await;
    stack
        .wait_for("/api/jobs/Codertocat/Hello-World/289782451", |j| {
            j["status"] == "completed"
        })
        .await;
    let before = read_topic(
        &config,
        hudstream_schemas::topics::GITHUB_WORKFLOW_JOB,
        |r| !r.is_empty(),
    )
    .await;

    // The broker is SIGKILLed and started again on its log; no stage is restarted.
    broker.kill();
    broker.resume().await;
    let delivery = derived(
        "workflow_job/in_progress.payload.json",
        "after-restart",
        |b| {
            b["workflow_job"]["id"] = 888_000_001.into();
        },
    );
    let restarted = Instant::now();
    let (acknowledged, stored) =
        acknowledged_then_in_clickhouse(&stack, &delivery, 888_000_001, restarted).await;
    println!(
        "after the broker's restart: acknowledged within {acknowledged:.1} s, in ClickHouse {stored:.1} s after that"
    );
    // What the log held before the SIGKILL is still there, at the same offsets.
    let n = before.len();
    let after = read_topic(
        &config,
        hudstream_schemas::topics::GITHUB_WORKFLOW_JOB,
        move |r| r.len() > n,
    )
    .await;
    for (a, b) in before.iter().zip(&after) {
        assert_eq!((a.offset, &a.payload), (b.offset, &b.payload));
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_topic_deleted_and_created_again_under_running_stages_is_read_from_its_start() {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;

    let broker = DurableBroker::start().await;
    let mut config = test_config();
    config.kafka.brokers = broker.brokers();
    let stack = Stack::start_with(config.clone()).await;
    // Several jobs first, so the processor's position lies well past the new log's end.
    let before: Vec<_> = (0..6)
        .map(|i| {
            derived(
                "workflow_job/in_progress.payload.json",
                &format!("before-{i}"),
                |b| {
                    b["workflow_job"]["id"] = (777_000_000 + i).into();
                },
            )
        })
        .collect();
    stack.post_all(&before).await;
    stack
        .wait_for("/api/jobs/Codertocat/Hello-World/777000005", |j| {
            j["status"] == "in_progress"
        })
        .await;

    // The raw job topic is deleted and created again; no stage is restarted.
    let topic = config
        .kafka
        .topic(hudstream_schemas::topics::GITHUB_WORKFLOW_JOB);
    let admin: AdminClient<DefaultClientContext> =
        hudstream_runtime::kafka::client_config(&config.kafka)
            .create()
            .expect("an admin client");
    let deleted = admin
        .delete_topics(&[topic.as_str()], &AdminOptions::new())
        .await
        .expect("the broker answers");
    assert!(deleted.iter().all(|r| r.is_ok()), "{deleted:?}");
    let recreated = Instant::now();
    // With a second partition: what lands there is a partition the stages have never been
    // assigned (no local broker can add partitions to a live topic, CreatePartitions; a topic
    // created again with more is the same change to a subscribed consumer).
    let mut wider = config.kafka.clone();
    wider.partitions = 2;
    loop {
        let created = hudstream_runtime::kafka::ensure_topics(
            &wider,
            &[hudstream_schemas::topics::GITHUB_WORKFLOW_JOB.to_string()],
        )
        .await;
        if matches!(&created, Ok(names) if names == &vec![topic.clone()]) {
            break;
        }
        assert!(
            recreated.elapsed() < Duration::from_secs(30),
            "the topic was not created again: {created:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Jobs keyed across both partitions, each in its table within 30 s of its acknowledgement.
    for i in 0..8u64 {
        let job = 777_100_001 + i;
        let after = derived(
            "workflow_job/in_progress.payload.json",
            &format!("after-recreate-{i}"),
            |b| {
                b["workflow_job"]["id"] = job.into();
            },
        );
        let (acknowledged, stored) =
            acknowledged_then_in_clickhouse(&stack, &after, job, recreated).await;
        println!(
            "topic created again with two partitions: job {job} acknowledged {acknowledged:.1} s after, in ClickHouse {stored:.1} s after that"
        );
    }
    let probe: rdkafka::consumer::BaseConsumer =
        hudstream_runtime::kafka::client_config(&config.kafka)
            .create()
            .expect("a consumer");
    let ends = hudstream_runtime::kafka::partition_watermarks(&probe, &topic).expect("watermarks");
    assert!(
        ends.get(&1).is_some_and(|(_, end)| *end > 0),
        "no job landed on the new partition, so it was not tested: {ends:?}"
    );
    stack.stop().await;
}
