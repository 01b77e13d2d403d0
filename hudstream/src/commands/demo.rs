//! `hudstream feed --demo [--seed N] [--at RFC3339] [--api URL]`: sends a generated day of one
//! busy repository (`pytorch-demo/pytorch`, see the `hudstream-demo` crate) to a gateway, as
//! GitHub and the OOT relays would — signed webhooks, relay callbacks, the real failing logs of
//! `reference/log-classifier/fixtures/` and the real test reports for the jobs that produced
//! them — then waits until the API shows the day's main grid whole.
//!
//! The day ends at `--at`, by default now rounded down to ten minutes: sending it again within
//! those ten minutes sends the same bytes (nothing changes); later, the same jobs move later.
//! Requests go out oldest first, `--concurrency` at a time, and log and test-report uploads no
//! more at once than the gateway takes (`upload_max_concurrent`); a 429 or 503 (busy, or the
//! broker away) is retried after a growing pause for up to two minutes, a dropped connection
//! up to eight times, and any other refusal stops the feed with the gateway's answer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;

use hudstream_demo::{DayShape, GridExpectation, Options, Request};
use hudstream_ingest::signature::sign_sha256;
use hudstream_runtime::secret::collect;
use hudstream_runtime::{Config, Secret};

/// How long to wait for the API to show the whole day.
const VISIBLE_WITHIN: Duration = Duration::from_secs(180);
/// How long one request is retried while the gateway answers 429/503 (busy, or its broker
/// away): long enough for a loaded durable broker to drain, short enough that a gateway that
/// stays busy is reported rather than waited on forever.
const BUSY_PATIENCE: Duration = Duration::from_secs(120);
/// The anchor's rounding: a rerun within it sends the same bytes.
const ANCHOR_STEP_MS: i64 = 10 * 60 * 1000;

pub struct DemoArgs {
    pub gateway: Option<String>,
    /// The read API to wait on (defaults to `api.listen`); `None` with `no_wait`.
    pub api: Option<String>,
    pub no_wait: bool,
    pub seed: u64,
    pub at: Option<String>,
    /// The shared data folder (datasets, logs, reports); defaults to the fixtures' grandparent.
    pub shared: PathBuf,
    /// Requests in flight at once. The durable local broker commits each batch of appends to
    /// SQLite, so more in flight means bigger batches: on nisshi here 64 gave ~470 requests/s,
    /// 256 ~890/s, 512 ~1,320/s.
    pub concurrency: usize,
}

/// What the day is sent with.
struct Credentials {
    webhook: Secret,
    oot: Option<Secret>,
    upload: Option<Secret>,
}

fn anchor(at: Option<&str>) -> anyhow::Result<i64> {
    match at {
        Some(at) => Ok(chrono::DateTime::parse_from_rfc3339(at)
            .with_context(|| {
                format!("--at {at:?} is not an RFC 3339 instant (e.g. 2026-12-05T16:00:00Z)")
            })?
            .timestamp_millis()),
        None => {
            let now = chrono::Utc::now().timestamp_millis();
            Ok(now - now.rem_euclid(ANCHOR_STEP_MS))
        }
    }
}

fn sorted_files(dir: &Path, extension: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    Ok(files)
}

/// The real failing logs of the classifier's reference, by file name: each fixture's log part,
/// of the fixtures that say which line the real ruleset matches (so every failure the demo
/// uploads a log for shows its line).
fn failing_logs(dir: &Path) -> anyhow::Result<Vec<(String, bytes::Bytes)>> {
    let mut logs = Vec::new();
    for path in sorted_files(dir, "txt")? {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let fixture = hudstream_classifier::fixture::Fixture::parse(&text);
        if fixture.expected.is_some() {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            logs.push((name, bytes::Bytes::from(fixture.log)));
        }
    }
    anyhow::ensure!(
        !logs.is_empty(),
        "no classifier fixture with an expected verdict in {}",
        dir.display()
    );
    Ok(logs)
}

/// The real test reports, as `feed` uploads them: `(folder, path)`.
fn reports(shared: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for folder in ["action-junit-report", "test-reporter"] {
        let dir = shared.join("fixtures/test-reports").join(folder);
        for path in sorted_files(&dir, "xml").unwrap_or_default() {
            out.push((folder.to_string(), path));
        }
    }
    out
}

pub async fn run(config: &Config, args: DemoArgs) -> anyhow::Result<()> {
    let credentials = Credentials {
        webhook: collect(&config.gateway.webhook_secrets, &config.gateway.webhook_secret_files)?
            .into_iter()
            .next()
            .context("feed --demo signs with the first webhook secret (gateway.webhook_secrets or webhook_secret_files), and none is configured")?,
        oot: collect(&config.gateway.oot_relay_tokens, &config.gateway.oot_relay_token_files)?
            .into_iter()
            .next(),
        upload: collect(&config.logs.upload_tokens, &config.logs.upload_token_files)?
            .into_iter()
            .next(),
    };
    let dataset = args
        .shared
        .join("reference/datasets/pytorch_jobs_2024-08-14.csv");
    let shape = DayShape::load(&dataset)?;
    let logs = failing_logs(&args.shared.join("reference/log-classifier/fixtures"))?;
    let reports = reports(&args.shared);
    let anchor_ms = anchor(args.at.as_deref())?;
    let day = hudstream_demo::generate(
        &shape,
        Options::demo(
            args.seed,
            anchor_ms,
            logs.iter().map(|(name, _)| name.clone()).collect(),
            reports.len(),
        ),
    );
    let requests = day.requests();
    let repository = day.options.repository.clone();
    let base = args
        .gateway
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.gateway.listen));
    let base = base.trim_end_matches('/').to_string();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let log_bodies: Vec<bytes::Bytes> = logs.into_iter().map(|(_, log)| log).collect();
    let report_bodies: Vec<bytes::Bytes> = reports
        .iter()
        .map(|(_, p)| {
            std::fs::read(p)
                .map(bytes::Bytes::from)
                .with_context(|| format!("reading {}", p.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    let skipped = requests
        .iter()
        .filter(|r| match r {
            Request::Oot { .. } => credentials.oot.is_none(),
            Request::Log { .. } | Request::TestReport { .. } => credentials.upload.is_none(),
            Request::Webhook { .. } => false,
        })
        .count();
    if skipped > 0 {
        println!("{skipped} OOT results and uploads not sent: no oot relay token or log upload token is configured");
    }
    println!(
        "demo day of {repository}: {} commits of main, {} pull requests, {} jobs, {} requests, ending {}",
        day.commits.len(),
        day.pulls.len(),
        day.jobs.len(),
        requests.len() - skipped,
        hudstream_demo::github::instant(anchor_ms)
    );
    let started = Instant::now();
    let sent = AtomicUsize::new(0);
    let total = requests.len() - skipped;
    // The gateway takes `upload_max_concurrent` log and test-report uploads at once and answers
    // 503 beyond: sending more at a time would only be refused and sent again.
    let log_uploads = tokio::sync::Semaphore::new(config.logs.upload_max_concurrent.max(1));
    let report_uploads = tokio::sync::Semaphore::new(config.tests.upload_max_concurrent.max(1));
    let ctx = Sender {
        log_uploads: &log_uploads,
        report_uploads: &report_uploads,
        client: &client,
        base: &base,
        repository: &repository,
        credentials: &credentials,
        logs: &log_bodies,
        reports: &report_bodies,
        report_names: &reports,
    };
    let mut stream = futures::stream::iter(requests.iter().filter(|r| ctx.can_send(r)))
        .map(|r| {
            let ctx = &ctx;
            let sent = &sent;
            async move {
                let result = ctx.send(r).await;
                sent.fetch_add(1, Ordering::Relaxed);
                result
            }
        })
        .buffer_unordered(args.concurrency.max(1));
    let mut last_report = Instant::now();
    while let Some(result) = stream.next().await {
        result?;
        if last_report.elapsed() >= Duration::from_secs(2) {
            last_report = Instant::now();
            eprintln!("  sent {}/{total}", sent.load(Ordering::Relaxed));
        }
    }
    let took = started.elapsed();
    println!(
        "sent {total} requests to {base} in {:.1} s ({:.0}/s)",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64().max(1e-3)
    );
    if args.no_wait {
        return Ok(());
    }
    let api = args
        .api
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.api.listen));
    let expected = day.main_grid();
    wait_visible(
        &client,
        api.trim_end_matches('/'),
        &repository,
        expected,
        credentials.upload.is_some(),
    )
    .await
}

struct Sender<'a> {
    log_uploads: &'a tokio::sync::Semaphore,
    report_uploads: &'a tokio::sync::Semaphore,
    client: &'a reqwest::Client,
    base: &'a str,
    repository: &'a str,
    credentials: &'a Credentials,
    logs: &'a [bytes::Bytes],
    reports: &'a [bytes::Bytes],
    report_names: &'a [(String, PathBuf)],
}

impl Sender<'_> {
    fn can_send(&self, r: &Request) -> bool {
        match r {
            Request::Webhook { .. } => true,
            Request::Oot { .. } => self.credentials.oot.is_some(),
            Request::Log { .. } | Request::TestReport { .. } => self.credentials.upload.is_some(),
        }
    }

    fn request(&self, r: &Request) -> reqwest::RequestBuilder {
        let upload = |url: String| {
            let token = self
                .credentials
                .upload
                .as_ref()
                .map(|t| t.expose())
                .unwrap_or_default();
            self.client.put(url).bearer_auth(token)
        };
        match r {
            Request::Webhook {
                event,
                delivery_id,
                body,
                ..
            } => self
                .client
                .post(format!("{}/github/webhook", self.base))
                .header("content-type", "application/json")
                .header("user-agent", "GitHub-Hookshot/hudstream-demo")
                .header("x-github-event", *event)
                .header("x-github-delivery", delivery_id)
                .header(
                    "x-hub-signature-256",
                    sign_sha256(&self.credentials.webhook, body),
                )
                .body(body.clone()),
            Request::Oot { body } => self
                .client
                .post(format!("{}/oot/results", self.base))
                .header("content-type", "application/json")
                .header(
                    "x-oot-relay-token",
                    self.credentials
                        .oot
                        .as_ref()
                        .map(|t| t.expose())
                        .unwrap_or_default(),
                )
                .body(body.clone()),
            Request::Log {
                job_id,
                head_sha,
                log,
            } => upload(format!("{}/logs/{}/{job_id}", self.base, self.repository))
                .query(&[("head_sha", head_sha)])
                .body(self.logs[*log].clone()),
            Request::TestReport {
                job_id,
                head_sha,
                report,
            } => {
                let (folder, path) = &self.report_names[*report];
                let file = path.file_name().unwrap_or_default().to_string_lossy();
                upload(format!("{}/tests/{}/{job_id}", self.base, self.repository))
                    .query(&[
                        ("report", format!("test/test-reports/{folder}/{file}")),
                        ("head_sha", head_sha.clone()),
                    ])
                    .body(self.reports[*report].clone())
            }
        }
    }

    async fn send(&self, r: &Request) -> anyhow::Result<()> {
        let _permit = match r {
            Request::Log { .. } => Some(self.log_uploads.acquire().await?),
            Request::TestReport { .. } => Some(self.report_uploads.acquire().await?),
            Request::Webhook { .. } | Request::Oot { .. } => None,
        };
        let mut pause = Duration::from_millis(100);
        let busy_until = Instant::now() + BUSY_PATIENCE;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // A connection dropped under load is retried: a delivery sent twice appends the
            // same bytes, which change no row.
            let response = match self.request(r).send().await {
                Ok(response) => response,
                Err(e) if attempt < 8 => {
                    tracing::debug!(error = %e, "retrying a demo request");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                    continue;
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "sending a {} to {}",
                        r.kind(),
                        self.base
                    )))
                }
            };
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            if (status.as_u16() == 429 || status.as_u16() == 503) && Instant::now() < busy_until {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
            let body = response.text().await.unwrap_or_default();
            if status.as_u16() == 429 || status.as_u16() == 503 {
                anyhow::bail!(
                    "the gateway stayed busy for a {} for {} s ({attempt} tries), last answer {status} {body}",
                    r.kind(),
                    BUSY_PATIENCE.as_secs()
                );
            }
            anyhow::bail!("the gateway refused a {}: {status} {body}", r.kind());
        }
    }
}

/// What the main grid shows now.
fn seen(grid: &serde_json::Value) -> GridExpectation {
    let rows = grid["commits"].as_array().cloned().unwrap_or_default();
    let mut s = GridExpectation {
        commits: rows.len(),
        ..Default::default()
    };
    for cell in rows
        .iter()
        .flat_map(|r| r["jobs"].as_array().cloned().unwrap_or_default())
    {
        if cell.is_null() {
            continue;
        }
        s.cells += 1;
        match cell["conclusion"].as_str() {
            Some("success") | Some("failure") => s.done += 1,
            _ => {}
        }
        if cell["flaky"].as_bool() == Some(true) {
            s.flaky += 1;
        }
        // A failure counts once its log's verdict is in.
        if cell["conclusion"] == "failure" && cell["failure"].is_object() {
            s.failed += 1;
        }
    }
    s
}

async fn wait_visible(
    client: &reqwest::Client,
    api: &str,
    repository: &str,
    expected: GridExpectation,
    logs_sent: bool,
) -> anyhow::Result<()> {
    let url = format!(
        "{api}/api/hud/{repository}/main?per_page={}",
        expected.commits.max(1)
    );
    let started = Instant::now();
    let mut last = GridExpectation::default();
    loop {
        if let Ok(response) = client.get(&url).send().await {
            if let Ok(grid) = response.json::<serde_json::Value>().await {
                last = seen(&grid);
            }
        }
        let whole = last.commits >= expected.commits
            && last.cells >= expected.cells
            && last.done >= expected.done
            && last.flaky >= expected.flaky
            && (!logs_sent || last.failed >= expected.failed);
        if whole {
            println!(
                "the API shows the day after {:.1} s: {} commits, {} jobs ({} finished, {} failed with their log line, {} flaky)",
                started.elapsed().as_secs_f64(),
                last.commits,
                last.cells,
                last.done,
                last.failed,
                last.flaky
            );
            return Ok(());
        }
        if started.elapsed() > VISIBLE_WITHIN {
            anyhow::bail!(
                "after {} s the API's grid ({url}) shows {last:?}, expected {expected:?}: see the pipeline's logs and `hudstream status`",
                VISIBLE_WITHIN.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
