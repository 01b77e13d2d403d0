//! `hudstream bench-fresh`: how soon a webhook shows in the HUD — from the gateway's 2xx to the
//! job in the grid, from the hot window and from ClickHouse — while deliveries arrive at 1,000 a
//! second. Figures, not assertions.
//!
//! The gateway, the processors, the projections and the API run in this process, in a namespace
//! of their own. One real push puts a commit on `main`; then real `workflow_job` bodies, re-keyed
//! to new job ids on that commit, are sent at the rate asked. Every tenth is a *tracer*: a job
//! name of its own, so its cell shows exactly that job. Two pollers read the commit's grid row
//! (`per_page=1`) every 20 ms, one as the page comes (the hot window), one with `X-Hud-Source:
//! clickhouse`, and note when each tracer first shows; its freshness is that instant minus its
//! 2xx (a poll's duration and the 20 ms period bound the resolution).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde_json::Value;

use crate::commands::load::{namespaced, percentile};
use hudstream_ingest::fixtures;
use hudstream_ingest::signature::sign_sha256;
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::Config;

pub struct FreshBenchArgs {
    /// Deliveries a second.
    pub rate: u64,
    /// For how long.
    pub seconds: u64,
}

const REPO: &str = "bench-fresh/pytorch";
const SHA: &str = "f00dfacef00dfacef00dfacef00dfacef00dface";
/// One delivery in this many is a tracer.
const TRACER_EVERY: usize = 10;
/// How often the pollers look.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// Goal: p99 from 2xx to visible.
const GOAL_P99_S: f64 = 1.0;

/// The real push, re-pointed at one commit on `main` of the benchmark's repository.
fn push_body() -> anyhow::Result<Vec<u8>> {
    let path = fixtures::default_dir().join("push/with-new-branch.payload.json");
    let mut push: Value = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )?;
    push["ref"] = "refs/heads/main".into();
    push["after"] = SHA.into();
    push["repository"]["full_name"] = REPO.into();
    push["repository"]["name"] = "pytorch".into();
    push["repository"]["pushed_at"] = chrono::Utc::now().timestamp().into();
    push["head_commit"]["id"] = SHA.into();
    push["head_commit"]["message"] = "The freshness benchmark's commit".into();
    push["commits"] = Value::Array(vec![push["head_commit"].clone()]);
    Ok(serde_json::to_vec(&push)?)
}

/// `count` real job bodies, re-keyed to new ids on the commit; tracers get a name of their own.
fn job_bodies(count: usize) -> anyhow::Result<Vec<(Option<String>, Vec<u8>)>> {
    let rekeyed =
        fixtures::rekeyed_workflow_jobs(&fixtures::default_dir(), count, 7_000_000_000, 0)?;
    rekeyed
        .into_iter()
        .enumerate()
        .map(|(i, (_, body))| {
            let mut job: Value = serde_json::from_slice(&body)?;
            let tracer = (i % TRACER_EVERY == 0).then(|| format!("tracer {i}"));
            let name = tracer.clone().unwrap_or_else(|| format!("job {}", i % 50));
            job["workflow_job"]["head_sha"] = SHA.into();
            job["workflow_job"]["head_branch"] = "main".into();
            job["workflow_job"]["name"] = name.into();
            job["workflow_job"]["workflow_name"] = "fresh".into();
            job["repository"]["full_name"] = REPO.into();
            job["repository"]["name"] = "pytorch".into();
            Ok((
                tracer.map(|t| format!("fresh / {t}")),
                serde_json::to_vec(&job)?,
            ))
        })
        .collect()
}

/// The tracers one grid row shows: column name → present.
fn shown(grid: &Value) -> Vec<String> {
    let names = grid["job_names"].as_array().cloned().unwrap_or_default();
    let cells = grid["commits"][0]["jobs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    names
        .iter()
        .zip(cells.iter())
        .filter(|(name, cell)| {
            !cell.is_null()
                && name
                    .as_str()
                    .is_some_and(|n| n.starts_with("fresh / tracer"))
        })
        .filter_map(|(name, _)| name.as_str().map(str::to_string))
        .collect()
}

pub async fn run(base: &Config, args: FreshBenchArgs) -> anyhow::Result<()> {
    let (_, mut config) = namespaced(base, "fresh");
    config.api.hot_window.enabled = true;
    config.api.hot_window.branches = vec!["main".into()];
    crate::create_topics(&config).await?;
    crate::migrate(&config).await?;
    let shutdown = CancellationToken::new();
    let gateway_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway = format!("http://{}/github/webhook", gateway_listener.local_addr()?);
    let api = format!("http://{}", api_listener.local_addr()?);
    let mut tasks = Vec::new();
    {
        let (c, s) = (config.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            crate::run_gateway(&c, Some(gateway_listener), s).await
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
        tasks.push(tokio::spawn(async move {
            crate::stages::run_api(&c, Some(api_listener), s).await
        }));
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()?;
    let secret = config.gateway.webhook_secrets[0].clone();
    let send = |event: &'static str, delivery: String, body: Vec<u8>| {
        let (http, gateway, secret) = (http.clone(), gateway.clone(), secret.clone());
        async move {
            let response = http
                .post(&gateway)
                .header("content-type", "application/json")
                .header("x-github-event", event)
                .header("x-github-delivery", delivery)
                .header("x-hub-signature-256", sign_sha256(&secret, &body))
                .body(body)
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "gateway answered {}",
                response.status()
            );
            Ok::<Instant, anyhow::Error>(Instant::now())
        }
    };
    let row = format!("{api}/api/hud/{REPO}/main?per_page=1");

    // The commit, in the hot window.
    send("push", "fresh-push".into(), push_body()?).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = http.get(&row).send().await?;
        let from_memory = r
            .headers()
            .get("x-hud-source")
            .is_some_and(|v| v == "memory");
        let grid: Value = r.json().await.unwrap_or(Value::Null);
        if from_memory && grid["commits"][0]["sha"] == SHA {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the commit never showed in the hot window: {grid}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Deliveries at the rate, while two pollers watch the row.
    let total = (args.rate * args.seconds) as usize;
    let bodies = job_bodies(total)?;
    let tracers = bodies.iter().filter(|(t, _)| t.is_some()).count();
    let acked: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let poll = |source: &'static str| {
        let (http, row) = (http.clone(), row.clone());
        async move {
            let mut seen: HashMap<String, Instant> = HashMap::new();
            let deadline = Instant::now() + Duration::from_secs(args.seconds + 120);
            while seen.len() < tracers && Instant::now() < deadline {
                let mut request = http.get(&row);
                if source == "clickhouse" {
                    request = request.header("x-hud-source", "clickhouse");
                }
                if let Ok(r) = request.send().await {
                    if let Ok(grid) = r.json::<Value>().await {
                        let now = Instant::now();
                        for name in shown(&grid) {
                            seen.entry(name).or_insert(now);
                        }
                    }
                }
                tokio::time::sleep(POLL_EVERY).await;
            }
            seen
        }
    };
    let started = Instant::now();
    let sender = {
        let acked = acked.clone();
        let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
        futures::stream::iter(bodies.into_iter().enumerate())
            .map(move |(i, (tracer, body))| {
                let acked = acked.clone();
                let send = send("workflow_job", format!("fresh-{i}"), body);
                async move {
                    // Paced: delivery i leaves at i / rate.
                    tokio::time::sleep_until((started + interval * i as u32).into()).await;
                    let at = send.await?;
                    if let Some(t) = tracer {
                        acked
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(t, at);
                    }
                    Ok::<(), anyhow::Error>(())
                }
            })
            .buffer_unordered(256)
            .collect::<Vec<_>>()
    };
    let sender = async move {
        let sent = sender.await;
        (sent, started.elapsed().as_secs_f64())
    };
    let ((sent, sent_in), memory, clickhouse) =
        tokio::join!(sender, poll("memory"), poll("clickhouse"));
    let failed = sent.iter().filter(|r| r.is_err()).count();
    shutdown.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap_or_else(|p| p.into_inner()).clone();
    println!(
        "sent {total} deliveries ({tracers} tracers) in {sent_in:.1} s — {:.0}/s asked {}/s; {failed} not acknowledged",
        total as f64 / sent_in,
        args.rate
    );
    println!(
        "  {:<34} {:>8} {:>8} {:>10} {:>9} {:>8}",
        "webhook 2xx → visible", "p50 s", "p99 s", "goal p99", "p99/goal", "seen"
    );
    for (name, seen) in [
        ("in the grid, hot window", memory),
        ("in the grid, ClickHouse", clickhouse),
    ] {
        let mut delays: Vec<f64> = acked
            .iter()
            .filter_map(|(t, at)| {
                seen.get(t)
                    .map(|s| s.saturating_duration_since(*at).as_secs_f64())
            })
            .collect();
        delays.sort_by(f64::total_cmp);
        let (p50, p99) = (
            percentile(&delays, 0.50) / 1000.0,
            percentile(&delays, 0.99) / 1000.0,
        );
        println!(
            "  {name:<34} {p50:>8.3} {p99:>8.3} {:>9.1} s {:>9.2} {:>4}/{}",
            GOAL_P99_S,
            p99 / GOAL_P99_S,
            delays.len(),
            acked.len()
        );
    }
    let clickhouse = hudstream_runtime::clickhouse::ClickHouse::new(&config.clickhouse)?;
    crate::commands::load::drop_bench_database(&clickhouse).await;
    Ok(())
}
