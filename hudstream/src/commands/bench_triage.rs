//! `hudstream bench-triage`: how soon a failed job's class shows in Dr.CI. The whole pipeline
//! runs in this process on a namespace of its own — gateway, processors, projections, the log
//! stages and the API — and a PR gets failed jobs one at a time: each job's `completed`
//! webhook and its real failing log are sent, and the time from the later acknowledgement to
//! the first Dr.CI answer that classifies the job (not `pending`) is measured. The goal: p99
//! ≤ 2 s. The first job (consumer groups joining) is a warm-up and not counted.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use hudstream_classifier::fixture::{reference_dir, Fixture};
use hudstream_ingest::fixtures;
use hudstream_ingest::signature::sign_sha256;
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::{Config, Secret};

use crate::commands::load::{namespaced, percentile};

const REPO: &str = "pytorch/pytorch";
const PR: i64 = 4242;
const HEAD: &str = "be0c4ea0000000000000000000000000000000e1";
const TOKEN: &str = "bench-triage-upload";
const GOAL_S: f64 = 2.0;

/// What `bench-triage` measures.
pub struct TriageBenchArgs {
    /// Failed jobs timed (after the warm-up).
    pub jobs: usize,
}

fn edit(name: &str, f: impl FnOnce(&mut Value)) -> anyhow::Result<Vec<u8>> {
    let mut body: Value =
        serde_json::from_slice(&fixtures::named(name).body).context("fixture JSON")?;
    f(&mut body);
    Ok(serde_json::to_vec(&body)?)
}

pub async fn run(base: &Config, args: TriageBenchArgs) -> anyhow::Result<()> {
    let (ns, mut config) = namespaced(base, "triage");
    let store = std::env::temp_dir().join(format!("hudstream-{ns}-logs"));
    config.logs.enabled = true;
    config.logs.fetch_from_github = false;
    config.logs.store = store.display().to_string();
    config.logs.ruleset = reference_dir().join("ruleset.toml");
    config.logs.upload_tokens = vec![Secret::new(TOKEN)];
    crate::create_topics(&config).await?;
    crate::migrate(&config).await?;

    let shutdown = CancellationToken::new();
    let gateway_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway = format!("http://{}", gateway_listener.local_addr()?);
    let api = format!("http://{}", api_listener.local_addr()?);
    let mut tasks = Vec::new();
    {
        let (c, s) = (config.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            crate::run_gateway(&c, Some(gateway_listener), s).await
        }));
        let (c, s) = (config.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            crate::run_api(&c, Some(api_listener), s).await
        }));
        let (c, s) = (config.clone(), shutdown.clone());
        tasks.push(tokio::spawn(
            async move { crate::run_processors(&c, s).await },
        ));
        let (c, s) = (config.clone(), shutdown.clone());
        tasks.push(tokio::spawn(
            async move { crate::run_projections(&c, s).await },
        ));
        let (c, s) = (config.clone(), shutdown.clone());
        tasks.push(tokio::spawn(
            async move { crate::run_log_stages(&c, s).await },
        ));
    }
    let http = reqwest::Client::new();
    let secret = config.gateway.webhook_secrets[0].clone();
    let post = |event: &'static str, id: String, body: Vec<u8>| {
        let (http, url, secret) = (
            http.clone(),
            format!("{gateway}/github/webhook"),
            secret.clone(),
        );
        async move {
            let response = http
                .post(url)
                .header("content-type", "application/json")
                .header("x-github-event", event)
                .header("x-github-delivery", id)
                .header("x-hub-signature-256", sign_sha256(&secret, &body))
                .body(body)
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "gateway answered {}",
                response.status()
            );
            Ok::<(), anyhow::Error>(())
        }
    };
    let now = chrono::Utc::now();
    let iso = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    // The PR and a run of its head that names it.
    post(
        "pull_request",
        format!("{ns}-pr"),
        edit("pull_request/opened.payload.json", |b| {
            b["number"] = json!(PR);
            b["repository"]["full_name"] = json!(REPO);
            b["pull_request"]["number"] = json!(PR);
            b["pull_request"]["head"]["sha"] = json!(HEAD);
            b["pull_request"]["base"]["ref"] = json!("main");
            b["pull_request"]["updated_at"] = json!(iso(now));
        })?,
    )
    .await?;
    post(
        "workflow_run",
        format!("{ns}-run"),
        edit(
            "workflow_run/completed.with-pull-requests.payload.json",
            |b| {
                b["repository"]["full_name"] = json!(REPO);
                b["workflow_run"]["id"] = json!(7_000_001);
                b["workflow_run"]["head_sha"] = json!(HEAD);
                b["workflow_run"]["created_at"] = json!(iso(now));
                b["workflow_run"]["pull_requests"][0]["number"] = json!(PR);
            },
        )?,
    )
    .await?;
    let log = Fixture::parse(
        &std::fs::read_to_string(reference_dir().join("fixtures/pytest_failures_section.txt"))
            .context("the real failing log")?,
    )
    .log
    .into_bytes();

    let mut latencies = Vec::new();
    for i in 0..=args.jobs {
        let id = 7_100_000 + i as i64;
        let body = edit(
            "workflow_job/completed.failure.with-organization.payload.json",
            |b| {
                b["repository"]["full_name"] = json!(REPO);
                let w = &mut b["workflow_job"];
                w["id"] = json!(id);
                w["run_id"] = json!(7_000_001);
                w["head_sha"] = json!(HEAD);
                w["workflow_name"] = json!("pull");
                w["name"] = json!(format!(
                    "linux-jammy / test (default, {}, {}, linux.2xlarge)",
                    i + 1,
                    args.jobs + 1
                ));
                w["created_at"] = json!(iso(now));
                w["started_at"] = json!(iso(now));
                w["completed_at"] = json!(iso(now));
            },
        )?;
        post("workflow_job", format!("{ns}-job-{id}"), body).await?;
        let response = http
            .put(format!("{gateway}/logs/{REPO}/{id}?head_sha={HEAD}"))
            .bearer_auth(TOKEN)
            .body(log.clone())
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "log upload answered {}",
            response.status()
        );
        let acknowledged = Instant::now();
        let deadline = acknowledged + Duration::from_secs(if i == 0 { 120 } else { 30 });
        loop {
            let answer: Value = http
                .get(format!("{api}/api/drci/{REPO}/{PR}"))
                .send()
                .await?
                .json()
                .await
                .unwrap_or(Value::Null);
            let class = answer["heads"][0]["jobs"]
                .as_array()
                .and_then(|jobs| jobs.iter().find(|j| j["id"] == id))
                .and_then(|j| j["class"].as_str())
                .unwrap_or("")
                .to_string();
            if !class.is_empty() && class != "pending" {
                if i > 0 {
                    latencies.push(acknowledged.elapsed().as_secs_f64());
                }
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "job {id} was not classified in time"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    shutdown.cancel();
    for task in tasks {
        let _ = task.await;
    }
    let _ = std::fs::remove_dir_all(&store);
    latencies.sort_by(f64::total_cmp);
    let p99 = percentile(&latencies, 0.99);
    println!(
        "Dr.CI class visible after the webhook and the log (pipeline, {} jobs): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; goal p99 {GOAL_S} s: ×{:.2}",
        latencies.len(),
        percentile(&latencies, 0.50),
        p99,
        latencies.last().copied().unwrap_or(0.0) * 1000.0,
        p99 / 1000.0 / GOAL_S
    );
    let clickhouse = hudstream_runtime::clickhouse::ClickHouse::new(&config.clickhouse)?;
    crate::commands::load::drop_bench_database(&clickhouse).await;
    Ok(())
}
