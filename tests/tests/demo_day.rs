//! The demo day `hud up` shows (`hudstream feed --demo`), end to end: the generated day of
//! `pytorch-demo/pytorch` sent through the gateway as signed webhooks, OOT callbacks, real
//! failing logs and real test reports, on the real broker and ClickHouse, with the log and
//! test-report stages running. Checks what a newcomer must see — a busy main grid with failures
//! and their log lines and flaky cells, a PR with several heads and OOT results, the pages in
//! headless Chromium — and that sending the same day again changes no answer.

use std::time::Duration;

use serde_json::Value;

use hudstream::commands::demo::{run, DemoArgs};
use hudstream_e2e::*;

const REPO: &str = "pytorch-demo/pytorch";
const UPLOAD_TOKEN: &str = "demo-upload-token";

fn shared() -> std::path::PathBuf {
    hudstream_ingest::fixtures::default_dir().join("../..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_day_fills_the_hud_and_sending_it_again_changes_nothing() {
    let mut config = test_config();
    let logs = tempdir("demo-logs");
    config.logs.enabled = true;
    config.logs.fetch_from_github = false;
    config.logs.store = logs.display().to_string();
    config.logs.ruleset = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../classifier/rulesets/pytorch.toml");
    with_test_reports(&mut config, UPLOAD_TOKEN);
    let stack = Stack::start_with(config.clone()).await;
    let args = || DemoArgs {
        gateway: Some(stack.gateway_url.clone()),
        api: Some(stack.api_url.clone()),
        no_wait: false,
        seed: 1,
        at: None,
        shared: shared(),
        concurrency: 64,
    };
    // Both sends must share an anchor: pin it to the one the first would take.
    let now = chrono::Utc::now().timestamp_millis();
    let at = chrono::DateTime::from_timestamp_millis(now - now.rem_euclid(600_000))
        .expect("instant")
        .to_rfc3339();
    // A second API instance, killed while the day streams in and started again: it rebuilds
    // its hot window from the tables, then follows the log.
    let first_instance = ApiInstance::start(&stack.config).await;
    let restart = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        first_instance.kill().await;
        ApiInstance::start(&stack.config).await
    };
    let (sent, restarted) = tokio::join!(
        run(
            &stack.config,
            DemoArgs {
                at: Some(at.clone()),
                ..args()
            },
        ),
        restart
    );
    sent.expect("the demo day is sent and becomes visible");

    // The main grid: ≥ 30 commits of ≥ 100 jobs, failures with their log lines, flaky cells.
    let (status, grid) = stack
        .api(&format!("/api/hud/{REPO}/main?per_page=50"))
        .await;
    assert_eq!(status, 200);
    let rows = grid["commits"].as_array().expect("rows");
    let busy = rows
        .iter()
        .filter(|r| {
            r["jobs"]
                .as_array()
                .is_some_and(|j| j.iter().filter(|c| !c.is_null()).count() >= 100)
        })
        .count();
    assert!(
        busy >= 30,
        "{busy} commits with ≥ 100 jobs of {}",
        rows.len()
    );
    let cells: Vec<&Value> = rows
        .iter()
        .flat_map(|r| r["jobs"].as_array().into_iter().flatten())
        .filter(|c| !c.is_null())
        .collect();
    let failures: Vec<&&Value> = cells
        .iter()
        .filter(|c| c["conclusion"] == "failure")
        .collect();
    assert!(failures.len() >= 30, "{} failures", failures.len());
    assert!(
        failures
            .iter()
            .all(|c| c["failure"]["line"].as_str().is_some_and(|l| !l.is_empty())),
        "every failure shows its log line"
    );
    assert!(cells.iter().any(|c| c["flaky"] == true), "a flaky cell");
    assert!(
        cells
            .iter()
            .any(|c| c["conclusion"] == "pending" || c["conclusion"] == "queued"),
        "jobs still running"
    );

    // A PR with several heads and OOT results from two backends.
    let (_, pull) = stack.api(&format!("/api/{REPO}/pull/140100")).await;
    assert!(
        pull["commits"].as_array().is_some_and(|c| c.len() >= 2),
        "{pull}"
    );
    let backends: std::collections::BTreeSet<String> = pull["oot"]["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|j| j["downstream_repo"].as_str().map(str::to_string))
        .collect();
    assert_eq!(backends.len(), 2, "{}", pull["oot"]);

    // The pages, in headless Chromium, with screenshots.
    let failed_job = failures[0]["id"].as_i64().expect("id");
    let (_, job) = stack.api(&format!("/api/jobs/{REPO}/{failed_job}")).await;
    let line = job["classification"]["line"]
        .as_str()
        .expect("a log line")
        .to_string();
    check_page(&stack, "demo-home", "/", &[REPO, "main"]).await;
    check_page(
        &stack,
        "demo-grid",
        &format!("/hud/{REPO}/main"),
        &["Revert", "flaky"],
    )
    .await;
    check_page(
        &stack,
        "demo-pull",
        &format!("/{REPO}/pull/140100"),
        &["Dr.CI", "intel/torch-xpu-ops", "huawei/torch-npu"],
    )
    .await;
    let excerpt: String = line.chars().take(30).collect();
    let excerpt = excerpt
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    check_page(
        &stack,
        "demo-job",
        &format!("/{REPO}/job/{failed_job}"),
        &[&excerpt],
    )
    .await;
    check_page(&stack, "demo-trunk", &format!("/trunk/{REPO}"), &["main"]).await;
    check_page(
        &stack,
        "demo-failures",
        &format!("/failures/{REPO}"),
        &[REPO],
    )
    .await;

    // The hot window's pages of main are ClickHouse's, in the stack's API and in the instance
    // that was killed mid-stream and started again.
    hudstream_e2e::caught_up(&stack.config).await;
    for page in 1..=3 {
        let path = format!("/api/hud/{REPO}/main?per_page=20&page={page}");
        stack.assert_hot_window_agrees(&path).await;
        assert_hot_window_agrees(&stack.http, &restarted.url, &path).await;
    }
    restarted.kill().await;

    // Sending the same day again: every answer is the same.
    let pages = [
        format!("/api/hud/{REPO}/main?per_page=50"),
        format!("/api/{REPO}/pull/140100"),
        format!("/api/{REPO}/pull/140101"),
        format!("/api/jobs/{REPO}/{failed_job}"),
    ];
    let mut before = Vec::new();
    for p in &pages {
        before.push(stack.api(p).await.1);
    }
    run(
        &stack.config,
        DemoArgs {
            at: Some(at),
            ..args()
        },
    )
    .await
    .expect("the same day again");
    hudstream_e2e::caught_up(&stack.config).await;
    // When a webhook last wrote a job is the one thing a second sending changes, by design: the
    // webhooks did arrive again (the job page's staleness line).
    let without_receipts = |mut v: Value| {
        if let Some(o) = v.as_object_mut() {
            o.remove("replication");
        }
        v
    };
    for (p, b) in pages.iter().zip(&before) {
        let (_, after) = stack.api(p).await;
        assert_eq!(
            without_receipts(after),
            without_receipts(b.clone()),
            "{p} changed after the same day was sent again"
        );
    }
    stack.stop().await;
    let _ = std::fs::remove_dir_all(logs);
}

/// An API instance of its own (`hudstream api`), beside the stack's.
struct ApiInstance {
    url: String,
    shutdown: hudstream_runtime::shutdown::CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl ApiInstance {
    async fn start(config: &hudstream_runtime::Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = hudstream_runtime::shutdown::CancellationToken::new();
        let (config, token) = (config.clone(), shutdown.clone());
        let task = tokio::spawn(async move {
            hudstream::stages::run_api(&config, Some(listener), token).await
        });
        Self {
            url,
            shutdown,
            task,
        }
    }

    /// Stops it at once: its memory is gone.
    async fn kill(self) {
        self.shutdown.cancel();
        self.task.abort();
        let _ = self.task.await;
    }
}
