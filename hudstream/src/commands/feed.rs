//! `hudstream feed [--gateway URL] [--dir D] [--event E]`: sends the real sample webhooks to a
//! gateway, signed like GitHub signs them — a smoke test of a running stack.

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
    let deliveries = fixtures::load(&dir)?;
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
    Ok(())
}
