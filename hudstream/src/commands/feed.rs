//! `hudstream feed [--gateway URL] [--dir D] [--event E] [--no-reports]`: sends the real sample
//! webhooks to a gateway, signed like GitHub signs them — a smoke test of a running stack — and
//! then the real test reports (`shared/fixtures/test-reports/`), uploaded for the sample's
//! completed jobs in turn with the first upload token, and a disabled-test issue for one of
//! their flaky tests, so the test pages have something to show.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use hudstream_ingest::fixtures;
use hudstream_ingest::signature::sign_sha256;
use hudstream_runtime::Config;

pub async fn run(
    config: &Config,
    gateway: Option<String>,
    dir: Option<PathBuf>,
    event: Option<String>,
    reports: bool,
) -> anyhow::Result<()> {
    let secrets = hudstream_runtime::secret::collect(
        &config.gateway.webhook_secrets,
        &config.gateway.webhook_secret_files,
    )?;
    let secret = secrets
        .first()
        .context("feed signs with the first webhook secret (gateway.webhook_secrets or webhook_secret_files), and none is configured")?;
    let base = gateway.unwrap_or_else(|| format!("http://{}", config.gateway.listen));
    let url = format!("{}/github/webhook", base.trim_end_matches('/'));
    let dir = dir.unwrap_or_else(fixtures::default_dir);
    let mut deliveries = fixtures::load(&dir)?;
    if reports {
        deliveries.push(fixtures::disabled_test_issue(
            &dir,
            "Codertocat/Hello-World",
            5,
            "test_foo",
            "__main__.TestFoo",
            "linux, rocm",
        )?);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let (mut accepted, mut refused) = (0usize, 0usize);
    for d in deliveries
        .iter()
        .filter(|d| event.as_deref().is_none_or(|e| e == d.event))
    {
        let mut request = client
            .post(&url)
            .header("content-type", "application/json")
            .header("user-agent", "GitHub-Hookshot/hudstream-feed")
            .header("x-github-event", &d.event)
            .header("x-github-delivery", &d.delivery_id)
            .header("x-hub-signature-256", sign_sha256(secret, &d.body))
            .body(d.body.clone());
        for (name, value) in &d.headers {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("sending to {url}"))?;
        if response.status().is_success() {
            accepted += 1;
        } else {
            refused += 1;
            let status = response.status();
            eprintln!(
                "{}: {} {}",
                d.path.display(),
                status,
                response.text().await.unwrap_or_default()
            );
        }
    }
    println!(
        "fed {} deliveries from {} to {url}: {accepted} accepted, {refused} refused",
        accepted + refused,
        dir.display()
    );
    if refused > 0 {
        anyhow::bail!("{refused} deliveries were refused");
    }
    if reports {
        upload_reports(config, &client, &base, &dir, &deliveries).await?;
    }
    Ok(())
}

/// Uploads every real test report for the completed jobs of `deliveries` in turn (by job id),
/// as `test/test-reports/<folder>/<file>`.
async fn upload_reports(
    config: &Config,
    client: &reqwest::Client,
    base: &str,
    dir: &std::path::Path,
    deliveries: &[fixtures::Delivery],
) -> anyhow::Result<()> {
    let tokens = hudstream_runtime::secret::collect(
        &config.logs.upload_tokens,
        &config.logs.upload_token_files,
    )?;
    let Some(token) = tokens.first() else {
        println!("no upload token (logs.upload_tokens): no test reports sent");
        return Ok(());
    };
    let mut jobs: Vec<(i64, String, String)> = deliveries
        .iter()
        .filter(|d| d.event == "workflow_job")
        .filter_map(|d| {
            let body: serde_json::Value = serde_json::from_slice(&d.body).ok()?;
            let job = body.get("workflow_job")?;
            (job.get("status")?.as_str()? == "completed").then_some((
                job.get("id")?.as_i64()?,
                body.get("repository")?
                    .get("full_name")?
                    .as_str()?
                    .to_string(),
                job.get("head_sha")?
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ))
        })
        .collect();
    jobs.sort();
    jobs.dedup_by_key(|j| j.0);
    if jobs.is_empty() {
        println!("no completed job among the deliveries: no test reports sent");
        return Ok(());
    }
    let root = dir.join("../test-reports");
    let mut reports = Vec::new();
    for folder in ["action-junit-report", "test-reporter"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "xml") {
                reports.push((folder, path));
            }
        }
    }
    reports.sort();
    let (mut accepted, mut refused) = (0usize, 0usize);
    for (i, (folder, path)) in reports.iter().enumerate() {
        let (id, repository, head_sha) = &jobs[i % jobs.len()];
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let url = format!("{}/tests/{repository}/{id}", base.trim_end_matches('/'));
        let mut query = vec![("report", format!("test/test-reports/{folder}/{file}"))];
        if !head_sha.is_empty() {
            query.push(("head_sha", head_sha.clone()));
        }
        let response = client
            .put(&url)
            .query(&query)
            .bearer_auth(token.expose())
            .body(bytes)
            .send()
            .await
            .with_context(|| format!("uploading to {url}"))?;
        if response.status().is_success() {
            accepted += 1;
        } else {
            refused += 1;
            eprintln!(
                "{}: {} {}",
                path.display(),
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
    }
    println!(
        "uploaded {} test reports from {} for {} jobs: {accepted} accepted, {refused} refused",
        accepted + refused,
        root.display(),
        jobs.len()
    );
    if refused > 0 {
        anyhow::bail!("{refused} test reports were refused");
    }
    Ok(())
}
