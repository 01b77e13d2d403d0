//! `hudstream bench-read`: fills a ClickHouse database of its own with a pytorch-sized CI
//! history — by default 1,000,000 jobs over 2,500 commits of `pytorch/pytorch` main, shaped like
//! the real day of jobs in `pytorch_jobs_2024-08-14.csv` (its most frequent job names and each
//! name's own failure rate) — then times every read endpoint through the real HTTP API and
//! prints p50/p99 with the ratio to its goal. Figures, not assertions.
//!
//! The history is generated straight into ClickHouse ([`history`]); the API's statements are
//! logged by the server, and ClickHouse's own account of them — server time, rows and bytes
//! read per saved query — is printed after the timings ([`server_account`]).

mod history;
mod server_account;

pub(crate) use history::GRID_JOB_COLUMNS;
use history::{generate, Generated, JobPages, OOT_BACKENDS, PR_BASE};

use std::time::{Duration, Instant};

use crate::commands::load::percentile;
use axum::response::IntoResponse;
use hudstream_api::hot_window::HotWindow;
use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::config::HotWindowConfig;
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::Config;

pub struct ReadBenchArgs {
    pub jobs: u64,
    pub commits: u64,
    pub dataset: std::path::PathBuf,
    /// Requests per endpoint (after a warm-up).
    pub requests: usize,
    /// Keep the database afterwards.
    pub keep: bool,
    /// Time the grid again over a history this many jobs long (same jobs a commit, more
    /// commits) and print its p99 against the first run's.
    pub at_scale: Option<u64>,
}

const REPO: &str = "pytorch/pytorch";

/// An endpoint to time: its name, its p99 goal, and the path of its i-th request.
pub(crate) type Endpoint = (&'static str, Option<f64>, Box<dyn Fn(usize) -> String>);

/// One endpoint's figures.
pub(crate) struct Timing {
    endpoint: &'static str,
    goal_ms: Option<f64>,
    p50_ms: f64,
    p99_ms: f64,
    bytes: usize,
    /// The warm-up's answer: what the floor serves.
    sample: bytes::Bytes,
    content_type: String,
    /// `X-Hud-Source` of the answer (`memory`, `clickhouse`, or none for other endpoints).
    source: String,
    /// The same bytes served from memory by the same server, p99.
    floor_p99_ms: Option<f64>,
}

/// The API over a generated database, on a free port of this process, with its hot window
/// loaded from the tables as an instance does when it starts (no log to follow here: the rows
/// were generated straight into ClickHouse). `/floor/{i}` serves the i-th endpoint's answer
/// from memory (the floor each endpoint is compared with).
struct Served {
    base: String,
    floors: Floors,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn serve(clickhouse: &ClickHouse) -> anyhow::Result<Served> {
    let rss_before = rss_mib();
    let hot = HotWindow::new(&HotWindowConfig {
        enabled: true,
        branches: vec!["main".into()],
        commits: HOT_COMMITS,
        pending_jobs: 50_000,
        page_cache_mb: 64,
    });
    let t = Instant::now();
    hudstream_api::hot_window::feed::load_into(&hot, clickhouse)
        .await
        .map_err(|e| anyhow::anyhow!("loading the hot window: {e}"))?;
    let (held_commits, held_jobs, _) = hot.sizes();
    let rss_after = rss_mib();
    println!(
        "hot window loaded from the tables in {:.1} s: {held_commits} commits of main, {held_jobs} jobs; \
         process memory {rss_before:.0} → {rss_after:.0} MiB (goal for the API: ≤ 512 MiB)",
        t.elapsed().as_secs_f64()
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let floors = Floors::default();
    let app = hudstream_api::router_with(hudstream_api::ApiState {
        clickhouse: clickhouse.clone(),
        hot: Some(hot),
    })
    .merge(floors.router());
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    });
    Ok(Served {
        base,
        floors,
        shutdown,
        server,
    })
}

impl Served {
    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
    }
}

/// The grid's endpoints, timed at both scales: from memory, from ClickHouse past the hot
/// window, and the hot window's pages from ClickHouse.
fn grid_endpoints() -> Vec<(Endpoint, &'static [(&'static str, &'static str)])> {
    vec![
        (
            (
                "HUD grid, pages 1-5 (memory)",
                Some(50.0),
                Box::new(|i| format!("/api/hud/{REPO}/main?page={}", i % HOT_PAGES + 1)),
            ),
            &[],
        ),
        (
            (
                "HUD grid, pages 6-20",
                Some(50.0),
                Box::new(|i| {
                    format!(
                        "/api/hud/{REPO}/main?page={}",
                        i % (20 - HOT_PAGES) + HOT_PAGES + 1
                    )
                }),
            ),
            &[],
        ),
        (
            (
                "HUD grid, pages 1-5 (ClickHouse)",
                Some(50.0),
                Box::new(|i| format!("/api/hud/{REPO}/main?page={}", i % HOT_PAGES + 1)),
            ),
            &[("x-hud-source", "clickhouse")],
        ),
        (
            (
                "HUD grid, pages 1-5 (memory, made)",
                Some(50.0),
                Box::new(|i| format!("/api/hud/{REPO}/main?page={}", i % HOT_PAGES + 1)),
            ),
            &[("cache-control", "no-cache")],
        ),
    ]
}

pub async fn run(config: &Config, args: ReadBenchArgs) -> anyhow::Result<()> {
    let Generated {
        clickhouse,
        jobs,
        commits,
    } = generate(
        config,
        &args.dataset,
        args.jobs,
        args.commits,
        JobPages::Fill,
    )
    .await?;
    let Served {
        base,
        floors,
        shutdown,
        server,
    } = serve(&clickhouse).await?;
    let since = server_account::server_now(&clickhouse).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let shas: Vec<String> = clickhouse
        .fetch_all::<String>(&format!(
            "SELECT sha FROM {}.commit ORDER BY timestamp DESC LIMIT 200",
            clickhouse.database()
        ))
        .await?;
    anyhow::ensure!(!shas.is_empty(), "the generator made no commits");
    let failed_jobs: Vec<i64> = clickhouse
        .fetch_all::<i64>(&format!(
            "SELECT job_id FROM {}.job_classification ORDER BY classified_at DESC LIMIT 200",
            clickhouse.database()
        ))
        .await?;
    anyhow::ensure!(!failed_jobs.is_empty(), "the generator made no verdicts");
    let prs = commits / 10;
    let n = args.requests;
    // The grid's first two endpoints (no headers) lead the list; its other two, with their
    // headers, are timed after it.
    let mut grid = grid_endpoints().into_iter();
    let mut endpoints: Vec<Endpoint> = grid.by_ref().take(2).map(|(e, _)| e).collect();
    endpoints.extend::<Vec<Endpoint>>(vec![
        (
            "HUD grid HTML, pages 1-5",
            None,
            Box::new(|i| format!("/hud/{REPO}/main?page={}", i % HOT_PAGES + 1)),
        ),
        (
            "commit page",
            Some(20.0),
            Box::new(move |i| format!("/api/{REPO}/commit/{}", shas[(i * 7 + 5) % shas.len()])),
        ),
        (
            "PR page (2 heads)",
            Some(30.0),
            Box::new(move |i| {
                format!(
                    "/api/{REPO}/pull/{}",
                    PR_BASE + (i as u64 * 13) % prs.max(1)
                )
            }),
        ),
        (
            "job",
            Some(10.0),
            Box::new(move |i| {
                format!(
                    "/api/jobs/{REPO}/{}",
                    28_000_000_000u64 + (i as u64 * 7919) % jobs
                )
            }),
        ),
        (
            "OOT summary, 7 days",
            None,
            Box::new(|_| "/api/oot/summary?days=7".into()),
        ),
        (
            "OOT backend matrix, 7 days",
            None,
            Box::new(|i| format!("/api/oot/{}?days=7", OOT_BACKENDS[i % OOT_BACKENDS.len()])),
        ),
        (
            "OOT PR results",
            None,
            Box::new(move |i| format!("/api/oot/pr/{}", PR_BASE + (i as u64 * 17) % prs.max(1))),
        ),
        (
            "failures, 7 days",
            Some(100.0),
            Box::new(|_| format!("/api/failures?repo={REPO}")),
        ),
        (
            "queued",
            Some(50.0),
            Box::new(|_| format!("/api/queued?repo={REPO}")),
        ),
        (
            "Dr.CI, PR of 2 heads",
            Some(100.0),
            Box::new(move |i| {
                format!(
                    "/api/drci/{REPO}/{}",
                    PR_BASE + (i as u64 * 13) % prs.max(1)
                )
            }),
        ),
        (
            "similar failures, one job",
            Some(100.0),
            Box::new(move |i| {
                format!(
                    "/api/failures/{REPO}/similar?job_id={}&days=7",
                    failed_jobs[(i * 7) % failed_jobs.len()]
                )
            }),
        ),
        (
            "failure clusters, 7 days",
            None,
            Box::new(|_| format!("/api/failures/{REPO}/clusters?days=7")),
        ),
        (
            "trunk: time to signal, 30 d",
            Some(300.0),
            Box::new(|_| format!("/api/trunk/{REPO}/signal?branch=main&days=30")),
        ),
        (
            "trunk: red rate, 30 d",
            Some(300.0),
            Box::new(|_| format!("/api/trunk/{REPO}/red?branch=main&days=30")),
        ),
        (
            "trunk: broken, 30 d",
            Some(300.0),
            Box::new(|_| format!("/api/trunk/{REPO}/broken?branch=main&days=30")),
        ),
        (
            "trunk: queue times, 30 d",
            Some(300.0),
            Box::new(|_| format!("/api/trunk/{REPO}/queue?days=30")),
        ),
    ]);
    let mut timings = time_endpoints(&http, &base, &endpoints, n).await?;
    // The hot window's pages asked of ClickHouse (what they cost without it), and made from
    // memory on every request (`Cache-Control: no-cache`: the page cache bypassed, the
    // commits' cells reused — what a page costs after one of its commits changed).
    for (endpoint, headers) in grid {
        timings.extend(time_endpoints_with(&http, &base, &[endpoint], n, headers).await?);
    }
    floors.time(&http, &base, &mut timings, n).await?;
    shutdown.cancel();
    let _ = server.await;
    print_timings(&clickhouse, &timings, n).await;
    server_account::print(&clickhouse, since).await;
    print_html_ratio(&timings);
    if !args.keep {
        crate::commands::load::drop_bench_database(&clickhouse).await;
    }
    if let Some(larger) = args.at_scale.filter(|larger| *larger > jobs) {
        at_scale(config, &args, &http, &timings, (jobs, commits), larger).await?;
    }
    Ok(())
}

/// The grid again over a history `larger` jobs long (the same jobs a commit, more commits),
/// against its figures at `jobs`: what a page costs must grow with the page, not with history
/// (goal: p99 within ×1.5).
async fn at_scale(
    config: &Config,
    args: &ReadBenchArgs,
    http: &reqwest::Client,
    smaller: &[Timing],
    (jobs, commits): (u64, u64),
    larger: u64,
) -> anyhow::Result<()> {
    let commits = larger / (jobs / commits.max(1)).max(1);
    println!("\nthe grid at {larger} jobs:");
    let generated = generate(
        config,
        &args.dataset,
        larger,
        commits.max(1),
        JobPages::Skip,
    )
    .await?;
    let served = serve(&generated.clickhouse).await?;
    let mut timings = Vec::new();
    for (endpoint, headers) in grid_endpoints() {
        timings.extend(
            time_endpoints_with(http, &served.base, &[endpoint], args.requests, headers).await?,
        );
    }
    served.stop().await;
    println!(
        "\nthe grid's p99 at {} jobs against {} jobs (goal ≤ ×1.5):",
        generated.jobs, jobs
    );
    println!(
        "  {:<34} {:>12} {:>12} {:>8}",
        "endpoint", "p99 small", "p99 large", "ratio"
    );
    for t in &timings {
        let Some(small) = smaller.iter().find(|s| s.endpoint == t.endpoint) else {
            continue;
        };
        println!(
            "  {:<34} {:>9.1} ms {:>9.1} ms {:>7.2}×",
            t.endpoint,
            small.p99_ms,
            t.p99_ms,
            t.p99_ms / small.p99_ms.max(0.001)
        );
    }
    if !args.keep {
        crate::commands::load::drop_bench_database(&generated.clickhouse).await;
    }
    Ok(())
}

/// Times each endpoint: a warm-up (the first request must succeed, then each of the first 20
/// requests once), then `n` sequential ones.
pub(crate) async fn time_endpoints(
    http: &reqwest::Client,
    base: &str,
    endpoints: &[Endpoint],
    n: usize,
) -> anyhow::Result<Vec<Timing>> {
    time_endpoints_with(http, base, endpoints, n, &[]).await
}

/// [`time_endpoints`], every request with these headers.
pub(crate) async fn time_endpoints_with(
    http: &reqwest::Client,
    base: &str,
    endpoints: &[Endpoint],
    n: usize,
    headers: &[(&str, &str)],
) -> anyhow::Result<Vec<Timing>> {
    let get = |path: String| {
        let mut request = http.get(format!("{base}{path}"));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request
    };
    let mut timings = Vec::new();
    for (endpoint, goal_ms, path) in endpoints {
        // Warm-up, and a check that the endpoint answers.
        let warm = get(path(0)).send().await?;
        anyhow::ensure!(
            warm.status().is_success(),
            "{endpoint}: {} answered {}",
            path(0),
            warm.status()
        );
        let content_type = warm
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_string();
        let source = warm
            .headers()
            .get("x-hud-source")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let sample = warm.bytes().await?;
        let bytes = sample.len();
        // Each distinct request once more before timing (the endpoints cycle through up to 20
        // pages or ids): what is timed is the steady state, for every source alike.
        for i in 1..n.min(20) {
            get(path(i)).send().await?.bytes().await?;
        }
        let mut seconds = Vec::with_capacity(n);
        for i in 0..n {
            let t = Instant::now();
            let r = get(path(i)).send().await?;
            let status = r.status();
            r.bytes().await?;
            seconds.push(t.elapsed().as_secs_f64());
            anyhow::ensure!(
                status.is_success(),
                "{endpoint}: {} answered {status}",
                path(i)
            );
        }
        seconds.sort_by(f64::total_cmp);
        timings.push(Timing {
            endpoint,
            goal_ms: *goal_ms,
            p50_ms: percentile(&seconds, 0.50),
            p99_ms: percentile(&seconds, 0.99),
            bytes,
            sample,
            content_type,
            source,
            floor_p99_ms: None,
        });
    }
    Ok(timings)
}

/// Prints the timings with their ratios to the goals.
pub(crate) async fn print_timings(clickhouse: &ClickHouse, timings: &[Timing], n: usize) {
    println!(
        "\nread API on ClickHouse {} ({n} sequential requests each, after a warm-up; database {}):",
        clickhouse_version(clickhouse).await,
        clickhouse.database()
    );
    println!(
        "  {:<34} {:>9} {:>9} {:>10} {:>9} {:>9} {:>10} {:>8} {:>10}",
        "endpoint",
        "p50 ms",
        "p99 ms",
        "goal p99",
        "p99/goal",
        "answer",
        "floor p99",
        "×floor",
        "source"
    );
    for t in timings {
        let (goal, ratio) = match t.goal_ms {
            Some(g) => (format!("{g:.0} ms"), format!("{:.2}", t.p99_ms / g)),
            None => ("-".into(), "-".into()),
        };
        let (floor, times) = match t.floor_p99_ms {
            Some(f) => (
                format!("{f:.1} ms"),
                format!("{:.1}", t.p99_ms / f.max(0.001)),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "  {:<34} {:>9.1} {:>9.1} {:>10} {:>9} {:>7} KB {:>10} {:>8} {:>10}",
            t.endpoint,
            t.p50_ms,
            t.p99_ms,
            goal,
            ratio,
            t.bytes / 1024,
            floor,
            times,
            if t.source.is_empty() { "-" } else { &t.source }
        );
    }
}

/// The HTML grid's p99 against the JSON grid's, from memory (goal ×1.3).
fn print_html_ratio(timings: &[Timing]) {
    let p99 = |name: &str| {
        timings
            .iter()
            .find(|t| t.endpoint == name)
            .map(|t| t.p99_ms)
    };
    if let (Some(html), Some(json)) = (
        p99("HUD grid HTML, pages 1-5"),
        p99("HUD grid, pages 1-5 (memory)"),
    ) {
        println!(
            "  the grid's HTML page against its JSON (pages 1-5, memory): p99 {html:.1} / {json:.1} ms = ×{:.2} (goal ≤ ×1.3)",
            html / json.max(0.001)
        );
    }
}

/// Commits of main the benchmark's hot window holds, and the pages of 50 they answer.
const HOT_COMMITS: usize = 300;
const HOT_PAGES: usize = 5;

/// The resident memory of this process, MiB.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Each endpoint's answer served from memory by the same server: what no read model can beat.
#[derive(Clone, Default)]
struct Floors {
    answers: std::sync::Arc<std::sync::RwLock<Vec<(String, bytes::Bytes)>>>,
}

impl Floors {
    fn router(&self) -> axum::Router {
        let answers = self.answers.clone();
        axum::Router::new().route(
            "/floor/{i}",
            axum::routing::get(move |axum::extract::Path(i): axum::extract::Path<usize>| {
                let answers = answers.clone();
                async move {
                    let answers = answers.read().unwrap_or_else(|p| p.into_inner());
                    match answers.get(i) {
                        Some((content_type, body)) => (
                            [(axum::http::header::CONTENT_TYPE, content_type.clone())],
                            body.clone(),
                        )
                            .into_response(),
                        None => axum::http::StatusCode::NOT_FOUND.into_response(),
                    }
                }
            }),
        )
    }

    /// Times `/floor/{i}` for each endpoint and records its p99 there.
    async fn time(
        &self,
        http: &reqwest::Client,
        base: &str,
        timings: &mut [Timing],
        n: usize,
    ) -> anyhow::Result<()> {
        {
            let mut answers = self.answers.write().unwrap_or_else(|p| p.into_inner());
            *answers = timings
                .iter()
                .map(|t| (t.content_type.clone(), t.sample.clone()))
                .collect();
        }
        for (i, t) in timings.iter_mut().enumerate() {
            let url = format!("{base}/floor/{i}");
            http.get(&url).send().await?.bytes().await?;
            let mut seconds = Vec::with_capacity(n);
            for _ in 0..n {
                let started = Instant::now();
                http.get(&url).send().await?.bytes().await?;
                seconds.push(started.elapsed().as_secs_f64());
            }
            seconds.sort_by(f64::total_cmp);
            t.floor_p99_ms = Some(percentile(&seconds, 0.99));
        }
        Ok(())
    }
}

async fn clickhouse_version(clickhouse: &ClickHouse) -> String {
    clickhouse
        .fetch_all::<String>("SELECT version() AS v")
        .await
        .ok()
        .and_then(|rows| rows.into_iter().next())
        .unwrap_or_else(|| "?".into())
}
