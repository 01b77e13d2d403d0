//! The fault drill: under steady signed load through the gateway, every process the pipeline
//! runs in is SIGKILLed and started again in turn — the gateway, the processors and the
//! projections run as separate processes, then `hudstream run` (everything in one) — and so
//! are ClickHouse and the broker. Afterwards every delivery the gateway acknowledged must be in
//! `workflow_job` exactly once. Prints delivered / acknowledged / lost / duplicated.
//!
//! The broker is the durable local one (nisshi with SQLite storage, `HUDSTREAM_TEST_DURABLE_BROKER`):
//! with it, a broker SIGKILL loses nothing acknowledged, before or after. `hud test` runs the
//! short form (one round, ~2 minutes); `HUDSTREAM_FAULT_DRILL_ROUNDS=N` repeats the kills N times.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hudstream_e2e::*;
use hudstream_ingest::signature::sign_sha256;
use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::Config;

const FIRST_JOB: i64 = 990_000_000_000;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One hudstream process (`gateway`, `process`, `project` or `run`) on the drill's config file.
struct Process {
    args: Vec<&'static str>,
    config: std::path::PathBuf,
    child: Option<Child>,
}

impl Process {
    fn start(args: &[&'static str], config: &std::path::Path) -> Process {
        let mut p = Process {
            args: args.to_vec(),
            config: config.to_path_buf(),
            child: None,
        };
        p.resume();
        p
    }

    fn resume(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_hudstream-under-test"))
            .args(&self.args)
            .env("HUDSTREAM_CONFIG", &self.config)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("hudstream-under-test");
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown, no final commit.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The drill's configuration, as a file the child processes read (secrets in files of their own).
fn config_file(config: &Config, dir: &std::path::Path) -> std::path::PathBuf {
    let secret = dir.join("webhook-secret");
    std::fs::write(&secret, config.gateway.webhook_secrets[0].expose()).expect("secret");
    let mut file = config.clone();
    file.gateway.webhook_secrets = Vec::new();
    file.gateway.webhook_secret_files = vec![secret];
    file.gateway.oot_relay_tokens = Vec::new();
    file.gateway.circleci_secrets = Vec::new();
    let path = dir.join("hudstream.toml");
    std::fs::write(&path, toml::to_string(&file).expect("toml")).expect("config file");
    path
}

/// Steady load: one signed `workflow_job` delivery every 10 ms, each a job of its own;
/// remembers which were acknowledged (2xx).
struct Load {
    sent: Arc<Mutex<Vec<i64>>>,
    acknowledged: Arc<Mutex<BTreeSet<i64>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

fn start_load(gateway: String, secret: hudstream_runtime::Secret) -> Load {
    let template = fixture("workflow_job/completed.success.with-organization.payload.json");
    let template: serde_json::Value = serde_json::from_slice(&template.body).expect("json");
    let sent: Arc<Mutex<Vec<i64>>> = Arc::default();
    let acknowledged: Arc<Mutex<BTreeSet<i64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (s, a, st) = (
        Arc::clone(&sent),
        Arc::clone(&acknowledged),
        Arc::clone(&stop),
    );
    let task = tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let mut id = FIRST_JOB;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        while !st.load(Ordering::SeqCst) {
            tick.tick().await;
            id += 1;
            let mut body = template.clone();
            body["workflow_job"]["id"] = id.into();
            let body = serde_json::to_vec(&body).expect("json");
            s.lock().expect("lock").push(id);
            let (http, gateway, secret, a) = (
                http.clone(),
                gateway.clone(),
                secret.clone(),
                Arc::clone(&a),
            );
            tokio::spawn(async move {
                let response = http
                    .post(format!("{gateway}/github/webhook"))
                    .header("content-type", "application/json")
                    .header("x-github-event", "workflow_job")
                    .header("x-github-delivery", format!("drill-{id}"))
                    .header("x-hub-signature-256", sign_sha256(&secret, &body))
                    .body(body)
                    .send()
                    .await;
                if response.is_ok_and(|r| r.status().is_success()) {
                    a.lock().expect("lock").insert(id);
                }
            });
        }
    });
    Load {
        sent,
        acknowledged,
        stop,
        task,
    }
}

async fn stored(clickhouse: &ClickHouse) -> Vec<(i64, u64)> {
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Row {
        id: i64,
        n: u64,
    }
    let db = clickhouse.database();
    let rows: Vec<Row> = clickhouse
        .fetch_all(&format!(
            "SELECT id, count() AS n FROM {db}.workflow_job FINAL WHERE id > {FIRST_JOB} GROUP BY id"
        ))
        .await
        .unwrap_or_default();
    rows.into_iter().map(|r| (r.id, r.n)).collect()
}

async fn pause(what: &str, seconds: u64) {
    println!("drill: {what}");
    tokio::time::sleep(Duration::from_secs(seconds)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_delivery_survives_sigkill_of_every_process_clickhouse_and_the_broker() {
    let rounds: usize = std::env::var("HUDSTREAM_FAULT_DRILL_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let mut broker = DurableBroker::start().await;
    let mut clickhouse = OwnClickHouse::start().await;
    let mut config = test_config();
    config.kafka.brokers = broker.brokers();
    config.clickhouse.url = clickhouse.url();
    config.clickhouse.cluster = String::new(); // a single server of its own
    config.clickhouse.request_timeout_ms = 5_000;
    config.pipeline.retry_max_backoff_ms = 1_000;
    config.gateway.listen = format!("127.0.0.1:{}", free_port());
    hudstream::create_topics(&config).await.expect("topics");
    hudstream::migrate(&config).await.expect("migrate");
    let dir = tempdir("fault-drill");
    let file = config_file(&config, &dir);
    let gateway_url = format!("http://{}", config.gateway.listen);
    let client = ClickHouse::new(&config.clickhouse).expect("client");

    let mut gateway = Process::start(&["gateway"], &file);
    let mut process = Process::start(&["process"], &file);
    let mut project = Process::start(&["project"], &file);
    let load = start_load(
        gateway_url.clone(),
        config.gateway.webhook_secrets[0].clone(),
    );
    pause("load running through gateway, process and project", 4).await;
    for round in 1..=rounds {
        println!("drill: round {round} of {rounds}");
        gateway.kill();
        pause("gateway SIGKILLed", 1).await;
        gateway.resume();
        pause("gateway restarted", 3).await;
        process.kill();
        pause("process SIGKILLed", 1).await;
        process.resume();
        pause("process restarted", 3).await;
        project.kill();
        pause("project SIGKILLed", 1).await;
        project.resume();
        pause("project restarted", 3).await;
        clickhouse.kill();
        pause("ClickHouse SIGKILLed", 3).await;
        clickhouse.resume().await;
        pause("ClickHouse restarted", 3).await;
        broker.kill();
        pause("broker SIGKILLed", 2).await;
        broker.resume().await;
        pause("broker restarted", 5).await;
    }
    // Everything in one process: `hudstream run`, then SIGKILLed too.
    gateway.kill();
    process.kill();
    project.kill();
    let mut run = Process::start(&["run"], &file);
    pause("`hudstream run` took over", 5).await;
    for _ in 0..rounds {
        run.kill();
        pause("`hudstream run` SIGKILLed", 1).await;
        run.resume();
        pause("`hudstream run` restarted", 5).await;
    }
    load.stop.store(true, Ordering::SeqCst);
    let _ = load.task.await;
    tokio::time::sleep(Duration::from_secs(5)).await; // the last requests' answers
    let sent = load.sent.lock().expect("lock").len();
    let acknowledged = load.acknowledged.lock().expect("lock").clone();

    // Every acknowledged job reaches the table; none twice.
    let started = Instant::now();
    let mut rows = stored(&client).await;
    while started.elapsed() < Duration::from_secs(180) {
        let have: BTreeSet<i64> = rows.iter().map(|r| r.0).collect();
        if acknowledged.is_subset(&have) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        rows = stored(&client).await;
    }
    let have: BTreeSet<i64> = rows.iter().map(|r| r.0).collect();
    let lost: Vec<&i64> = acknowledged.difference(&have).collect();
    let duplicated = rows.iter().filter(|r| r.1 > 1).count();
    println!(
        "fault drill ({rounds} round(s)): delivered {sent}, acknowledged {}, lost {}, duplicated {duplicated}; {} stored (unacknowledged ones that still made it count too)",
        acknowledged.len(),
        lost.len(),
        have.len()
    );
    assert!(
        acknowledged.len() > sent / 2,
        "most deliveries are acknowledged"
    );
    assert!(
        lost.is_empty(),
        "acknowledged and lost: {:?}",
        &lost[..lost.len().min(20)]
    );
    assert_eq!(duplicated, 0, "an acknowledged job shows twice");
    run.kill();
}
