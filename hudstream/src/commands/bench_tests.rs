//! `hudstream bench-tests`: the test-report write path on the real services, printed with the
//! figures each is compared against (not assertions).
//!
//! 1. **Upload to rows visible**: one PyTorch-sized commit — by default 1,000,000 test cases in
//!    400 jobs' reports (5 a job: one per test file, as PyTorch's shards write them) generated in
//!    the shape of the real pytest reports (a class per file, ~0.3 % failures with tracebacks,
//!    ~3 % skips, ~0.2 % passing after a `<rerun>`) — uploaded gzip-encoded through the gateway,
//!    parsed by the parser stage, projected into the four test tables; timed from the first
//!    upload to the last case in `test_case`. The goal is 100,000 cases/s.
//! 2. **The projection against `clickhouse-client`**: the parsed pages of that commit written
//!    into a copy of `test_case` by the projection writer, next to `clickhouse-client` inserting
//!    the same rows (goal ≥ 0.7).
//!
//! The parser's own speed and memory are `cargo bench -p hudstream-junit`; the processor's
//! memory on a 1 GiB report is `cargo bench -p hudstream-test-reports`; the reads over 50 M
//! rows are `hudstream bench-tests-read`.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;

use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::kafka::{to_in_record, whole_topic_reader};
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::worker::InRecord;
use hudstream_runtime::{Config, Secret};
use hudstream_schemas::topics::HUD_TEST_CASES_V1;

use crate::commands::load::namespaced;

pub struct TestBenchArgs {
    pub jobs: usize,
    pub reports_per_job: usize,
    pub cases_per_report: usize,
    pub concurrency: usize,
    pub clickhouse_tcp_port: Option<u16>,
}

const REPO: &str = "pytorch/pytorch";
const TOKEN: &str = "bench-upload-token";
/// The goal: cases per second from upload to rows visible.
const GOAL_CASES_PER_S: f64 = 100_000.0;

fn line(name: &str, figure: String, against: String) {
    println!("{name:<34} {figure:<40} {against}");
}

/// One generated report: `cases` test cases of test file `file` (a class per 50 cases),
/// numbered from `first`, in pytest's xunit2 form.
pub fn report(file: usize, first: usize, cases: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(cases * 160);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites><testsuite name=\"pytest\" errors=\"0\" failures=\"0\" skipped=\"0\" tests=\"{cases}\" time=\"1.0\" timestamp=\"2024-08-14T22:38:01.000000\" hostname=\"runner\">\n"
    );
    for i in 0..cases {
        let n = first + i;
        let class = format!("test_module_{file}.TestSuite{}", i / 50);
        let head = format!(
            "<testcase classname=\"{class}\" name=\"test_case_{n}_float32\" file=\"test_module_{file}.py\" line=\"{}\" time=\"{}.{:03}\"",
            100 + i % 900,
            n % 3,
            n % 1000
        );
        let _ = match n % 1000 {
            0..=2 => writeln!(
                out,
                "{head}><failure message=\"AssertionError: Tensor-likes are not close!\">Traceback (most recent call last):\n  File \"test_module_{file}.py\", line {}, in test_case_{n}_float32\n    self.assertEqual(actual, expected)\nAssertionError: Tensor-likes are not close!\n\nMismatched elements: 3 / 1024 (0.3%)</failure></testcase>",
                100 + i % 900
            ),
            3..=4 => writeln!(
                out,
                "{head}><rerun message=\"RuntimeError: CUDA error: an illegal memory access\">Traceback (most recent call last):\nRuntimeError: CUDA error</rerun></testcase>"
            ),
            5..=34 => writeln!(
                out,
                "{head}><skipped type=\"pytest.skip\" message=\"test requires a GPU with compute capability 9.0\">test_module_{file}.py:{}: test requires a GPU</skipped></testcase>",
                100 + i % 900
            ),
            _ => writeln!(out, "{head} />"),
        };
    }
    out.extend_from_slice(b"</testsuite></testsuites>\n");
    out
}

fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

pub async fn run(base: &Config, args: TestBenchArgs) -> anyhow::Result<()> {
    let (ns, mut config) = namespaced(base, "bench_tests");
    config.logs.enabled = false;
    config.logs.upload_tokens = vec![Secret::new(TOKEN)];
    let store = std::env::temp_dir().join(format!("hudstream-{ns}"));
    config.tests.enabled = true;
    config.tests.fetch_artifacts = false;
    config.tests.store = store.display().to_string();
    let cases = args.jobs * args.reports_per_job * args.cases_per_report;
    println!(
        "hudstream bench-tests — namespace {ns}: {cases} test cases in {} reports of {} jobs",
        args.jobs * args.reports_per_job,
        args.jobs
    );
    crate::create_topics(&config).await?;
    crate::migrate(&config).await?;
    let clickhouse = ClickHouse::new(&config.clickhouse)?;

    // The reports, generated and compressed before the clock starts.
    let started = Instant::now();
    let uploads: Vec<(String, String, Vec<u8>, usize)> = (0..args.jobs)
        .flat_map(|job| (0..args.reports_per_job).map(move |r| (job, r)))
        .map(|(job, r)| {
            let file = r * 37 % 400;
            let raw = report(file, job * 100_000 + r * args.cases_per_report, args.cases_per_report);
            let gz = gzip(&raw)?;
            Ok((
                format!("{REPO}/{}", 60_000_000_000u64 + job as u64),
                format!("test/test-reports/python-pytest/test_module_{file}/test_module_{file}-{job}.xml"),
                gz,
                raw.len(),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let raw_bytes: usize = uploads.iter().map(|u| u.3).sum();
    let gz_bytes: usize = uploads.iter().map(|u| u.2.len()).sum();
    println!(
        "  generated {:.0} MB of reports ({:.0} MB gzip) in {:.1} s",
        raw_bytes as f64 / 1e6,
        gz_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    // The stages, in this process: gateway, parser, projections.
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway_url = format!("http://{}", listener.local_addr()?);
    let mut tasks = Vec::new();
    {
        let (c, s) = (config.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            crate::run_gateway(&c, Some(listener), s).await
        }));
        let (c, s) = (config.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            crate::stages::run_test_report_stages(&c, s).await
        }));
        let (c, s) = (config.clone(), shutdown.clone());
        tasks.push(tokio::spawn(
            async move { crate::run_projections(&c, s).await },
        ));
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http
        .get(format!("{gateway_url}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the gateway did not start in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 1. Upload → rows visible.
    let started = Instant::now();
    let uploads = Arc::new(uploads);
    let answers: Vec<anyhow::Result<()>> = futures::stream::iter(0..uploads.len())
        .map(|i| {
            let (http, uploads, url) = (http.clone(), uploads.clone(), gateway_url.clone());
            async move {
                let (job, name, body, _) = &uploads[i];
                let response = http
                    .put(format!("{url}/tests/{job}"))
                    .query(&[("report", name)])
                    .bearer_auth(TOKEN)
                    .header("content-encoding", "gzip")
                    .body(body.clone())
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "upload {name}: {} {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                );
                Ok(())
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    answers.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let uploaded = started.elapsed().as_secs_f64();
    let count = |table: &'static str| {
        let clickhouse = clickhouse.clone();
        async move {
            clickhouse
                .fetch_all::<u64>(&format!(
                    "SELECT count() AS n FROM {}.{table}",
                    clickhouse.database()
                ))
                .await
                .map(|r| r.first().copied().unwrap_or(0))
        }
    };
    let deadline = Instant::now() + Duration::from_secs(900);
    while count("test_case").await? < cases as u64 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the cases did not arrive in 900 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let visible = started.elapsed().as_secs_f64();
    let rate = cases as f64 / visible;
    line(
        "reports: uploads (gzip, HTTP)",
        format!(
            "{:.0} reports/s, {:.0} MB/s uncompressed",
            uploads.len() as f64 / uploaded,
            raw_bytes as f64 / 1e6 / uploaded
        ),
        format!("c={}, each acknowledged by the broker", args.concurrency),
    );
    line(
        "upload → test_case rows visible",
        format!("{rate:>9.0} cases/s ({cases} in {visible:.1} s)"),
        format!(
            "goal {GOAL_CASES_PER_S:.0} cases/s: ×{:.2}",
            rate / GOAL_CASES_PER_S
        ),
    );
    // The other three tables finish their own inserts.
    let deadline = Instant::now() + Duration::from_secs(300);
    while count("test_case_by_name").await? < cases as u64 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "test_case_by_name did not fill in 300 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let by_name = started.elapsed().as_secs_f64();
    line(
        "… and test_case_by_name too",
        format!("{:>9.0} cases/s ({by_name:.1} s)", cases as f64 / by_name),
        "every case written twice (by job and by test), plus failures".into(),
    );
    shutdown.cancel();
    for task in tasks {
        let _ = task.await;
    }

    // 2. The projection writer against clickhouse-client, on the same pages.
    let pages = read_pages(&config, cases)?;
    let encoder = hudstream_projections::by_table("test_case")?;
    let (ours, against) = crate::commands::bench_writer::writer_against_client(
        &config,
        &clickhouse,
        encoder,
        &pages,
        cases,
        args.clickhouse_tcp_port,
    )
    .await?;
    line(
        "test_case projection → ClickHouse",
        format!("{ours:>9.0} rows/s ({cases} cases, median of 3)"),
        against,
    );
    crate::commands::load::drop_bench_database(&clickhouse).await;
    let _ = std::fs::remove_dir_all(&store);
    Ok(())
}

/// Every page of cases the parser published, read back from the topic.
fn read_pages(config: &Config, cases: usize) -> anyhow::Result<Vec<InRecord>> {
    use rdkafka::consumer::Consumer;
    let consumer = whole_topic_reader(&config.kafka, HUD_TEST_CASES_V1)?;
    let mut pages = Vec::new();
    let mut seen = 0usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen < cases {
        anyhow::ensure!(
            Instant::now() < deadline,
            "read {seen} of {cases} cases back"
        );
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let record = to_in_record(
            &config.kafka.topic_prefix,
            &message.context("reading the pages")?,
        );
        let page = record
            .decode::<hudstream_schemas::test_report::TestCases>()
            .map_err(anyhow::Error::msg)?;
        seen += page.cases.len();
        pages.push(record);
    }
    consumer.unassign().ok();
    Ok(pages)
}
