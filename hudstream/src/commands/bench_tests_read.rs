//! `hudstream bench-tests-read`: the test views over 50 million test-case rows.
//!
//! A database of its own is filled by the server (`INSERT … SELECT … FROM numbers(n)`) with what
//! the projections would have written for a month of PyTorch CI: by default 20,000 jobs over 30
//! days, each running a shard of 2,500 tests (of 200,000) in 5 reports of 500 — 50 M rows in
//! `test_case` and in `test_case_by_name`, the failed and retried ones in `test_failure`, a
//! summary per report, and the jobs themselves. Failures are where they are in real CI: a few
//! unstable tests (0.5 %) fail a fifth of their runs, a few (0.25 %) pass only on a retry a
//! third of the time, and 3 % are skipped. Then every test endpoint is timed through the real
//! HTTP API: p50/p99 against the goals (a job's tests 50 ms, a test's 30-day history 200 ms,
//! the flaky tests of 7 days 500 ms). Figures, not assertions.

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::commands::bench_read::{print_timings, time_endpoints, Endpoint};
use crate::commands::load::namespace;
use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::Config;

pub struct TestReadBenchArgs {
    pub jobs: u64,
    pub cases_per_job: u64,
    pub days: u64,
    pub requests: usize,
    pub keep: bool,
}

const REPO: &str = "pytorch/pytorch";
const FIRST_JOB: u64 = 61_000_000_000;
/// Jobs of one commit (a commit's shards).
const JOBS_PER_COMMIT: u64 = 8;
/// Different shards of the suite: job j runs shard j % SHARDS.
const SHARDS: u64 = 80;
const CASES_PER_REPORT: u64 = 500;

/// The generator's common columns for row `number` (job j, case i of the job, test t).
fn generated(jobs: u64, per_job: u64, first_s: u64, span_s: u64) -> String {
    let sha = |x: &str| {
        format!("concat(lower(hex(MD5({x}))), substring(lower(hex(MD5(concat({x}, 'x')))), 1, 8))")
    };
    format!(
        "SELECT number, intDiv(number, {per_job}) AS j, number % {per_job} AS i, \
         (j % {SHARDS}) * {per_job} + i AS t, intDiv(t, {CASES_PER_REPORT}) AS f, intDiv(i, {CASES_PER_REPORT}) AS r, \
         {FIRST_JOB} + j AS job_id, \
         concat('test/test-reports/python-pytest/test_module_', toString(f), '/test_module_', toString(f), '-', toString(j), '.xml') AS report, \
         {report_sha} AS report_sha256, i % {CASES_PER_REPORT} AS case_index, toUInt64(1000 + j) AS version, \
         concat('test_module_', toString(f)) AS invoking_file, {commit_sha} AS head_sha, \
         toDateTime({first_s} + intDiv(j * {span_s}, {jobs}), 'UTC') AS reported_at, \
         concat('test_module_', toString(f), '.py') AS file, \
         concat('test_module_', toString(f), '.TestSuite', toString(intDiv(t, 50))) AS classname, \
         concat('test_case_', toString(t)) AS name, \
         reinterpretAsUInt64(MD5(name)) AS name_id, \
         reinterpretAsUInt64(MD5(concat(file, '\\x1F', classname, '\\x1F', name))) AS test_id, \
         t % 200 = 7 AND cityHash64(number) % 100 < 20 AS fails, \
         t % 400 = 3 AND cityHash64(number, 1) % 100 < 33 AS retried, \
         t % 33 = 0 AS skips, \
         multiIf(fails, 'failed', skips, 'skipped', 'passed') AS outcome, \
         toInt32(retried) AS reruns, \
         if(fails, 'AssertionError: Tensor-likes are not close!', '') AS problem_message, \
         toFloat64(cityHash64(number, 2) % 3000) / 1000 AS seconds \
         FROM numbers({rows})",
        report_sha = sha("concat(toString(j), '/', toString(r))"),
        commit_sha = sha(&format!("toString(intDiv(j, {JOBS_PER_COMMIT}))")),
        rows = jobs * per_job,
    )
}

fn statements(args: &TestReadBenchArgs, now: u64) -> Vec<(&'static str, String)> {
    let (jobs, per_job) = (args.jobs, args.cases_per_job);
    let span = args.days * 86_400;
    let first = now - span;
    let rows = generated(jobs, per_job, first, span);
    let reports = per_job.div_ceil(CASES_PER_REPORT);
    vec![
        (
            "jobs",
            format!(
                "INSERT INTO {{db}}.workflow_job (repository_full_name, id, version, run_id, run_attempt, head_sha, head_branch, \
                 workflow_name, name, status, conclusion, created_at, started_at, completed_at) \
                 SELECT '{REPO}', {FIRST_JOB} + j, 1, 9500000000 + intDiv(j, {JOBS_PER_COMMIT}), 1, \
                 concat(lower(hex(MD5(toString(intDiv(j, {JOBS_PER_COMMIT}))))), substring(lower(hex(MD5(concat(toString(intDiv(j, {JOBS_PER_COMMIT})), 'x')))), 1, 8)), \
                 'main', 'pull', concat('linux-jammy-py3.9 / test (default, ', toString(j % {SHARDS} + 1), ', {SHARDS}, linux.2xlarge)'), \
                 'completed', 'success', at, at, at \
                 FROM (SELECT number AS j, toDateTime({first} + intDiv(number * {span}, {jobs}), 'UTC') AS at FROM numbers({jobs}))"
            ),
        ),
        (
            "workflow_job_by_id (the same jobs, keyed by id)",
            "INSERT INTO {db}.workflow_job_by_id (repository_full_name, id, version, run_id, run_attempt, head_sha, head_branch, \
             workflow_name, name, status, conclusion, created_at, started_at, completed_at) \
             SELECT repository_full_name, id, version, run_id, run_attempt, head_sha, head_branch, workflow_name, name, status, \
             conclusion, created_at, started_at, completed_at FROM {db}.workflow_job"
                .to_string(),
        ),
        (
            "grid_job (the same jobs, as the grid reads them)",
            format!(
                "INSERT INTO {{db}}.grid_job ({cols}) SELECT {cols} FROM {{db}}.workflow_job",
                cols = crate::commands::bench_read::GRID_JOB_COLUMNS
            ),
        ),
        (
            "test_report (a summary per report)",
            format!(
                "INSERT INTO {{db}}.test_report (repository_full_name, job_id, report, version, report_sha256, invoking_file, head_sha, \
                 reported_at, source, store_key, state, parts, cases, passed) \
                 SELECT '{REPO}', job_id, report, version, report_sha256, invoking_file, head_sha, reported_at, 'upload', \
                 concat('tests/{REPO}/', toString(job_id), '/', report_sha256, '.xml.gz'), 'parsed', 1, {CASES_PER_REPORT}, {CASES_PER_REPORT} \
                 FROM ({rows_one_per_report}) WHERE i % {CASES_PER_REPORT} = 0",
                rows_one_per_report = generated(jobs, per_job, first, span),
            ),
        ),
        (
            "test_case",
            format!(
                "INSERT INTO {{db}}.test_case (repository_full_name, job_id, report, report_sha256, case_index, version, \
                 invoking_file, head_sha, reported_at, suite, file, classname, name, test_id, line, time_s, outcome, problem_type, \
                 problem_message, problem_text, reruns, rerun_message) \
                 SELECT '{REPO}', job_id, report, report_sha256, case_index, version, invoking_file, head_sha, reported_at, \
                 'pytest', file, classname, name, test_id, toInt64(100 + t % 900), seconds, outcome, if(fails, 'AssertionError', ''), \
                 problem_message, if(fails, 'Traceback (most recent call last):\\n  AssertionError', ''), reruns, \
                 if(retried, 'RuntimeError: CUDA error', '') FROM ({rows})"
            ),
        ),
        (
            "test_case_by_name",
            format!(
                "INSERT INTO {{db}}.test_case_by_name (repository_full_name, name_id, test_id, reported_at, job_id, report, \
                 report_sha256, case_index, version, name, classname, file, invoking_file, head_sha, time_s, outcome, reruns, \
                 problem_message) \
                 SELECT '{REPO}', name_id, test_id, reported_at, job_id, report, report_sha256, case_index, version, name, \
                 classname, file, invoking_file, head_sha, seconds, outcome, reruns, problem_message FROM ({rows})"
            ),
        ),
        (
            "test_failure",
            format!(
                "INSERT INTO {{db}}.test_failure (repository_full_name, reported_at, job_id, report, report_sha256, case_index, \
                 version, invoking_file, head_sha, file, classname, name, name_id, test_id, time_s, outcome, reruns, problem_type, \
                 problem_message, rerun_message) \
                 SELECT '{REPO}', reported_at, job_id, report, report_sha256, case_index, version, invoking_file, head_sha, file, \
                 classname, name, name_id, test_id, seconds, outcome, reruns, if(fails, 'AssertionError', ''), problem_message, \
                 if(retried, 'RuntimeError: CUDA error', '') FROM ({rows}) WHERE fails OR retried"
            ),
        ),
    ]
    .into_iter()
    .chain(std::iter::once((
        "merge",
        format!("OPTIMIZE TABLE {{db}}.test_report FINAL /* {reports} reports a job */"),
    )))
    .collect()
}

pub async fn run(config: &Config, args: TestReadBenchArgs) -> anyhow::Result<()> {
    let mut config = config.clone();
    config.clickhouse.database = namespace("bench_tests_read");
    // Generating 50 M rows is one long query per table.
    config.clickhouse.request_timeout_ms = config.clickhouse.request_timeout_ms.max(1_800_000);
    let clickhouse = ClickHouse::new(&config.clickhouse)?;
    crate::migrate(&config).await?;
    let rows = args.jobs * args.cases_per_job;
    println!(
        "generating {rows} test cases: {} jobs × {} over {} days ({} tests in {SHARDS} shards)",
        args.jobs,
        args.cases_per_job,
        args.days,
        SHARDS * args.cases_per_job
    );
    let now = chrono::Utc::now().timestamp() as u64;
    let started = Instant::now();
    for (what, sql) in statements(&args, now) {
        let t = Instant::now();
        clickhouse
            .execute(&sql.replace("{db}", clickhouse.database()))
            .await
            .with_context(|| format!("generating {what}"))?;
        println!("  {what}: {:.1} s", t.elapsed().as_secs_f64());
    }
    println!("generated in {:.1} s", started.elapsed().as_secs_f64());
    // Timed in the steady state: after the merges the inserts started (a table written to all
    // day merges as it goes, and these 50 M rows arrived at once).
    let settled = Instant::now();
    let deadline = settled + Duration::from_secs(1800);
    loop {
        let merging = clickhouse
            .fetch_all::<u64>(&format!(
                "SELECT count() AS n FROM system.merges WHERE database = '{}'",
                clickhouse.database()
            ))
            .await?
            .first()
            .copied()
            .unwrap_or(0);
        if merging == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "merges settled after {:.1} s",
        settled.elapsed().as_secs_f64()
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(hudstream_api::serve(
        listener,
        clickhouse.clone(),
        shutdown.clone(),
    ));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let (jobs, tests) = (args.jobs, SHARDS * args.cases_per_job);
    // The unstable tests (t % 200 = 7) have failures to show; every fourth asked about is one.
    let test = move |i: usize| {
        let t = (i as u64 * 7919) % tests;
        if i % 4 == 0 {
            t - t % 200 + 7
        } else {
            t
        }
    };
    let endpoints: Vec<Endpoint> = vec![
        (
            "a job's tests",
            Some(50.0),
            Box::new(move |i| {
                format!(
                    "/api/tests/{REPO}/jobs/{}",
                    FIRST_JOB + (i as u64 * 7919) % jobs
                )
            }),
        ),
        (
            "a test's history, 30 days",
            Some(200.0),
            Box::new(move |i| {
                format!(
                    "/api/tests/{REPO}/history?name=test_case_{}&days=30",
                    test(i)
                )
            }),
        ),
        (
            "flaky tests, 7 days",
            Some(500.0),
            Box::new(|_| format!("/api/tests/{REPO}/flaky?days=7")),
        ),
        (
            "slowest tests, 7 days",
            None,
            Box::new(|_| format!("/api/tests/{REPO}/slowest?days=7")),
        ),
        (
            "search, 7 days",
            None,
            Box::new(move |i| format!("/api/tests/{REPO}/search?q=test_case_{}", test(i) / 10)),
        ),
        (
            "job page (HTML)",
            None,
            Box::new(move |i| format!("/{REPO}/job/{}", FIRST_JOB + (i as u64 * 104_729) % jobs)),
        ),
    ];
    let timings = time_endpoints(&http, &base, &endpoints, args.requests).await?;
    shutdown.cancel();
    let _ = server.await;
    print_timings(&clickhouse, &timings, args.requests).await;
    if !args.keep {
        crate::commands::load::drop_bench_database(&clickhouse).await;
    }
    Ok(())
}
