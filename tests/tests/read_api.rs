//! The read API and the HUD pages end to end: all 236 real fixtures flow through the whole
//! stack, plus a few deliveries derived from them where the real set has no example (a push
//! of the commit the real CodeQL jobs ran on, a rerun that makes a flaky cell, a workflow run
//! naming a PR), a real failing log uploaded for the real failed job, and a prepared set of OOT
//! relay callbacks whose expected numbers are worked out by torchci's rules (torchci.md §7.5).
//! Then every endpoint's rows, bad parameters and injection attempts, and every page in
//! headless Chromium, with screenshots.

use std::path::PathBuf;

use serde_json::{json, Value};

use hudstream_classifier::fixture::reference_dir;
use hudstream_e2e::{all_fixtures, check_page, derived, run_chromium, test_config, Stack};
use hudstream_ingest::fixtures::Delivery;
use hudstream_runtime::Secret;

const REPO: &str = "Codertocat/Hello-World";
/// The commit every real CodeQL job fixture ran on.
const SHA: &str = "3484a3fb816e0859fd6e1cea078d76385ff50625";
/// The real failed job (CodeQL / linters).
const FAILED_JOB: i64 = 289782451;
const UPLOAD_TOKEN: &str = "read-api-upload-token";
/// A real workflow run that failed without starting a job.
const STARTUP_FAILURE_SHA: &str = "d74df09c45f5b338e2f67c1c73e8662ccf97561c";

/// The scenario's derived deliveries.
fn derived_deliveries() -> Vec<Delivery> {
    let mut out = Vec::new();
    // The real push of 6113728f to master, as a push of the CodeQL jobs' commit to main.
    out.push(derived(
        "push/with-new-branch.payload.json",
        "push-main",
        |b| {
            b["ref"] = json!("refs/heads/main");
            b["after"] = json!(SHA);
            b["head_commit"]["id"] = json!(SHA);
            b["head_commit"]["message"] = json!("Run CodeQL on every push (#2)");
            b["head_commit"]["timestamp"] = json!("2021-08-05T10:30:00Z");
            b["commits"][0]["id"] = json!(SHA);
            b["commits"][0]["message"] = json!("Run CodeQL on every push (#2)");
            b["commits"][0]["timestamp"] = json!("2021-08-05T10:30:00Z");
        },
    ));
    // A job that failed and passed on its rerun: a flaky cell.
    for (id, attempt, conclusion) in [(289782460_i64, 1, "failure"), (289782461, 2, "success")] {
        out.push(derived(
            "workflow_job/completed.failure.with-organization.payload.json",
            &format!("rerun-{id}"),
            |b| {
                b["workflow_job"]["id"] = json!(id);
                b["workflow_job"]["run_attempt"] = json!(attempt);
                b["workflow_job"]["name"] = json!("test");
                b["workflow_job"]["conclusion"] = json!(conclusion);
            },
        ));
    }
    // A workflow run of PR #2 on that commit: a head the PR no longer has.
    out.push(derived(
        "workflow_run/completed.with-pull-requests.payload.json",
        "run-pr-2",
        |b| {
            b["repository"]["full_name"] = json!(REPO);
            b["repository"]["name"] = json!("Hello-World");
            b["repository"]["owner"]["login"] = json!("Codertocat");
            b["workflow_run"]["id"] = json!(2202229078_i64);
        },
    ));
    out
}

/// One OOT relay callback (torchci.md §7.2).
#[allow(clippy::too_many_arguments)]
fn callback(
    backend: &str,
    level: &str,
    pr: i64,
    job: &str,
    check: &str,
    attempt: i64,
    status: &str,
    conclusion: Option<&str>,
    started: i64,
    completed: Option<i64>,
) -> Value {
    let now = chrono::Utc::now().timestamp();
    let at = |ago: i64| {
        chrono::DateTime::from_timestamp(now - ago, 0)
            .expect("time")
            .to_rfc3339()
    };
    let mut workflow = json!({
        "schema_version": "1", "status": status, "name": "oot-ci",
        // One relay sends a script URL: the pages must not make it a link.
        "url": if check == "32" { "javascript:alert(1)".to_string() } else { format!("https://github.com/{backend}/actions/runs/{check}") },
        "job_name": job, "check_run_id": check, "run_id": format!("run-{pr}"),
        "run_attempt": attempt,
    });
    if status == "in_progress" {
        workflow["started_at"] = json!(at(started));
    } else {
        workflow["started_at"] = Value::Null;
        workflow["conclusion"] = json!(conclusion);
        workflow["completed_at"] = json!(at(completed.expect("completed")));
        workflow["test_results"] = json!({"passed": 10, "failed": 0, "skipped": 1});
    }
    json!({
        "trusted": {"verified_repo": backend, "downstream_repo_level": level,
                    "ci_metrics": {"queue_time": if status == "in_progress" { json!(30.0) } else { Value::Null },
                                   "execution_time": null}},
        "untrusted": {"callback_payload": {
            "event_type": "pull_request", "delivery_id": format!("delivery-{pr}"),
            "payload": {"pull_request": {"number": pr, "head": {"sha": format!("{pr:0>40}")}},
                        "repository": {"full_name": "pytorch/pytorch"}},
            "workflow": workflow}}
    })
}

const XPU: &str = "intel/torch-xpu-ops";
const NPU: &str = "huawei/torch-npu";
const HOUR: i64 = 3600;

/// The prepared relay callbacks: each completed job sends in_progress then completed (some
/// in the other order), as the relay does.
fn oot_callbacks() -> Vec<Value> {
    // (backend, level, pr, job, check, attempt, conclusion or None = still running,
    //  started ago, completed ago)
    let jobs: Vec<(&str, &str, i64, &str, &str, i64, Option<&str>, i64, i64)> = vec![
        (
            XPU,
            "L2",
            115150,
            "test (1, 2)",
            "11",
            1,
            Some("failure"),
            5 * HOUR,
            5 * HOUR - 1800,
        ),
        (
            XPU,
            "L2",
            115150,
            "test (1, 2)",
            "12",
            2,
            Some("success"),
            4 * HOUR,
            4 * HOUR - 1800,
        ),
        (
            XPU,
            "L2",
            115150,
            "build",
            "13",
            1,
            Some("success"),
            6 * HOUR,
            6 * HOUR - 1800,
        ),
        // The same attempt again, later: the tie goes to the most recent.
        (
            XPU,
            "L2",
            115150,
            "build",
            "14",
            1,
            Some("failure"),
            3 * HOUR,
            3 * HOUR - 360,
        ),
        (XPU, "L2", 115200, "test (1, 2)", "21", 1, None, HOUR, 0),
        (
            XPU,
            "L2",
            115200,
            "lint",
            "22",
            1,
            Some("cancelled"),
            2 * HOUR,
            2 * HOUR - 360,
        ),
        // Ten days ago: in the 30-day window, not the 7-day one.
        (
            XPU,
            "L2",
            115000,
            "build",
            "01",
            1,
            Some("success"),
            240 * HOUR,
            240 * HOUR - 600,
        ),
        (
            NPU,
            "L3",
            115150,
            "test",
            "31",
            1,
            Some("success"),
            2 * HOUR,
            2 * HOUR - 600,
        ),
        (
            NPU,
            "L3",
            115150,
            "build",
            "32",
            1,
            Some("success"),
            3 * HOUR,
            3 * HOUR - 600,
        ),
    ];
    let mut out = Vec::new();
    for (i, (backend, level, pr, job, check, attempt, conclusion, started, completed)) in
        jobs.into_iter().enumerate()
    {
        let start = callback(
            backend,
            level,
            pr,
            job,
            check,
            attempt,
            "in_progress",
            None,
            started,
            None,
        );
        match conclusion {
            None => out.push(start),
            Some(c) => {
                let end = callback(
                    backend,
                    level,
                    pr,
                    job,
                    check,
                    attempt,
                    "completed",
                    Some(c),
                    started,
                    Some(completed),
                );
                if i % 2 == 0 {
                    out.extend([start, end]);
                } else {
                    out.extend([end, start]);
                }
            }
        }
    }
    out
}

async fn get(stack: &Stack, path: &str) -> (u16, Value) {
    stack.api(path).await
}

/// Starts the stack with log uploads on, feeds everything, and waits until the last pieces
/// are readable.
async fn scenario() -> Stack {
    let store = std::env::temp_dir().join(format!("hudstream-read-api-{}", uuid_like()));
    let mut config = test_config();
    config.logs.enabled = true;
    config.logs.fetch_from_github = false;
    config.logs.store = store.display().to_string();
    config.logs.ruleset =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../classifier/rulesets/pytorch.toml");
    config.logs.upload_tokens = vec![Secret::new(UPLOAD_TOKEN)];
    hudstream_e2e::with_test_reports(&mut config, UPLOAD_TOKEN);
    let stack = Stack::start_with(config).await;
    stack
        .post_all(all_fixtures().iter().chain(derived_deliveries().iter()))
        .await;
    for body in oot_callbacks() {
        stack
            .post_oot(serde_json::to_vec(&body).expect("json"))
            .await;
    }
    // A real failing log for the real failed job.
    let log = std::fs::read(reference_dir().join("fixtures/pytest_failures_section.txt"))
        .expect("log fixture");
    let (status, answer) = stack
        .put_log(
            &format!("{REPO}/{FAILED_JOB}"),
            &format!("?head_sha={SHA}"),
            UPLOAD_TOKEN,
            log,
        )
        .await;
    assert!(status < 300, "upload: {status} {answer}");
    stack
        .wait_for(&format!("/api/jobs/{REPO}/{FAILED_JOB}"), |j| {
            j["classification"]["outcome"] == "matched"
        })
        .await;
    // The real pytest report with two failing tests, for the real failed job.
    let (status, answer) = upload_pytest_report(&stack).await;
    assert_eq!(status, 201, "report upload: {answer}");
    stack
        .wait_for(&format!("/api/tests/{REPO}/jobs/{FAILED_JOB}"), |t| {
            t["summary"]["failed"] == 2
        })
        .await;
    stack
        .wait_for("/api/oot/summary?days=30", |s| {
            s["backends"].as_array().is_some_and(|b| b.len() == 2)
                && s["backends"][0]["completed"] == 6
        })
        .await;
    stack
}

/// Uploads the real pytest report with two failing tests for the real failed job.
async fn upload_pytest_report(stack: &Stack) -> (u16, Value) {
    let report = hudstream_e2e::test_report_fixtures()
        .into_iter()
        .find(|(_, file, _)| file == "python__report.xml")
        .expect("the pytest fixture report");
    stack
        .put_report(
            &format!("{REPO}/{FAILED_JOB}"),
            "?report=test/test-reports/python-pytest/test_sample/test_sample-1.xml",
            UPLOAD_TOKEN,
            report.2,
            true,
        )
        .await
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_and_page_answers_from_the_real_fixtures() {
    let stack = scenario().await;
    grid_has_a_flaky_cell_and_a_failure_line(&stack).await;
    the_hot_window_answers_as_clickhouse_does(&stack).await;
    commit_page_lists_jobs_and_startup_failures(&stack).await;
    pull_request_page_has_old_heads_and_oot(&stack).await;
    oot_endpoints_reproduce_torchcis_numbers(&stack).await;
    failures_and_queue(&stack).await;
    bad_parameters_are_400s_and_injections_are_harmless(&stack).await;
    caching_headers(&stack).await;
    pages_in_headless_chromium(&stack).await;
    stack.stop().await;
}

/// The grid's pages from memory (the hot window, fed by the derived topics) are the pages from
/// ClickHouse, field by field, on every branch the fixtures push to.
async fn the_hot_window_answers_as_clickhouse_does(stack: &Stack) {
    for path in [
        format!("/api/hud/{REPO}/main"),
        format!("/api/hud/{REPO}/main?per_page=1&page=1"),
        format!("/api/hud/{REPO}/main?page=2"),
        "/api/hud/Codertocat/Hello-World/master".to_string(),
    ] {
        stack.assert_hot_window_agrees(&path).await;
    }
    // The HTML page comes from memory too.
    let page = stack
        .http
        .get(format!("{}/hud/{REPO}/main", stack.api_url))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-hud-source"], "memory");
    // A branch memory does not hold comes from ClickHouse.
    let other = stack
        .http
        .get(format!("{}/api/hud/{REPO}/some-feature", stack.api_url))
        .send()
        .await
        .expect("grid");
    assert_eq!(other.headers()["x-hud-source"], "clickhouse");
}

async fn grid_has_a_flaky_cell_and_a_failure_line(stack: &Stack) {
    let grid = stack
        .wait_for(&format!("/api/hud/{REPO}/main"), |g| {
            g["commits"].as_array().is_some_and(|c| c.len() == 1)
                && g["job_names"].as_array().is_some_and(|n| n.len() == 2)
        })
        .await;
    assert_eq!(
        grid["job_names"],
        json!(["CodeQL / linters", "CodeQL / test"])
    );
    let row = &grid["commits"][0];
    assert_eq!(row["sha"], SHA);
    assert_eq!(row["title"], "Run CodeQL on every push (#2)");
    assert_eq!(row["pr_number"], 2);
    let (linters, test) = (&row["jobs"][0], &row["jobs"][1]);
    // The real failed job, with the classifier's line from its real log.
    let job = get(stack, &format!("/api/jobs/{REPO}/{FAILED_JOB}"))
        .await
        .1;
    assert_eq!(linters["conclusion"], "failure");
    assert_eq!(linters["id"], FAILED_JOB);
    assert_eq!(linters["flaky"], false);
    assert_eq!(linters["failure"]["line"], job["classification"]["line"]);
    assert_eq!(
        linters["failure"]["captures"],
        job["classification"]["captures"]
    );
    assert!(!linters["failure"]["line"].as_str().unwrap_or("").is_empty());
    // The rerun that passed: a flaky success, represented by the passing run.
    assert_eq!(test["conclusion"], "success");
    assert_eq!(test["flaky"], true);
    assert_eq!(test["id"], 289782461);
    assert_eq!(test["runs"], 2);
    // Null fields are left out of cells: the passing run has no verdict, but has a duration.
    assert!(test.get("failure").is_none(), "{test}");
    assert!(test["duration_s"].is_number(), "{test}");
    // The real push to master is the master grid's one row; it ran no job.
    let master = get(stack, &format!("/api/hud/{REPO}/master")).await.1;
    assert_eq!(master["commits"].as_array().map(Vec::len), Some(1));
    assert_eq!(master["job_names"], json!([]));
    // Paging: one commit a page, so page 2 of main is empty and page 1 says no more.
    let paged = get(stack, &format!("/api/hud/{REPO}/main?per_page=1&page=2"))
        .await
        .1;
    assert_eq!(paged["commits"], json!([]));
    assert_eq!(paged["has_more"], false);
    // A branch with slashes is a path, encoded or not.
    let (status, nested) = get(stack, &format!("/api/hud/{REPO}/release/2.4")).await;
    assert_eq!(
        (status, nested["branch"].as_str()),
        (200, Some("release/2.4"))
    );
    let (status, encoded) = get(stack, &format!("/api/hud/{REPO}/release%2F2.4")).await;
    assert_eq!(
        (status, encoded["branch"].as_str()),
        (200, Some("release/2.4"))
    );
}

async fn commit_page_lists_jobs_and_startup_failures(stack: &Stack) {
    let (status, page) = get(stack, &format!("/api/{REPO}/commit/{SHA}")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["commit"]["title"], "Run CodeQL on every push (#2)");
    let jobs = page["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 3, "{page}");
    let linters = jobs
        .iter()
        .find(|j| j["id"] == FAILED_JOB)
        .expect("linters");
    assert_eq!(linters["name"], "CodeQL / linters");
    assert_eq!(linters["duration_s"], 198.0);
    assert_eq!(linters["queue_time_s"], 60.0);
    assert_eq!(linters["run_attempt"], 1);
    assert_eq!(linters["labels"], json!(["ubuntu-latest"]));
    assert!(linters["runner"].is_string());
    assert_eq!(
        linters["failure"]["rule"].as_str().map(|r| !r.is_empty()),
        Some(true)
    );
    // The derived run of PR #2 has jobs (the CodeQL ones share its id): no startup failure.
    assert_eq!(page["startup_failures"], json!([]));
    // Its failed tests count each run once, even while the table holds unmerged copies of
    // the rows: the same report uploaded again is written again (on one server; a replicated
    // table drops the identical block), and the page does not move.
    let failed_tests = page["failed_tests"].clone();
    let which_fails = failed_tests
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "test_which_fails"))
        .unwrap_or_else(|| panic!("test_which_fails among {failed_tests:#}"));
    assert_eq!(
        (&which_fails["runs"], &which_fails["failures"]),
        (&json!(1), &json!(1)),
        "{which_fails:#}"
    );
    let clickhouse =
        hudstream_runtime::clickhouse::ClickHouse::new(&stack.config.clickhouse).expect("client");
    let rows = format!("SELECT count() AS n FROM {{db}}.test_case WHERE job_id = {FAILED_JOB}");
    let before = hudstream_e2e::count(&clickhouse, &rows).await;
    assert!(before > 0, "the report's rows are in test_case");
    let (status, answer) = upload_pytest_report(stack).await;
    assert_eq!(status, 200, "the same report again: {answer}");
    hudstream_e2e::caught_up(&stack.config).await;
    if stack.config.clickhouse.cluster.is_empty() {
        assert_eq!(
            hudstream_e2e::count(&clickhouse, &rows).await,
            2 * before,
            "the report's rows written again"
        );
    }
    let (_, again) = get(stack, &format!("/api/{REPO}/commit/{SHA}")).await;
    assert_eq!(again["failed_tests"], failed_tests);
    // A real run that ended without a job and did not fail is no startup failure...
    let (status, octo) = get(stack, &format!("/api/octo-org/octo-repo/commit/{SHA}")).await;
    assert_eq!(status, 200, "{octo}");
    assert_eq!(octo["jobs"], json!([]));
    assert_eq!(octo["startup_failures"], json!([]));
    assert_eq!(octo["workflow_runs"][0]["id"], 289782451);
    assert!(octo["commit"]["title"]
        .as_str()
        .is_some_and(|t| t.starts_with("build(test)")));
    // ...and a real run that failed without one is.
    let (status, rebase) = get(
        stack,
        &format!("/api/clee2000/random-testing/commit/{STARTUP_FAILURE_SHA}"),
    )
    .await;
    assert_eq!(status, 200, "{rebase}");
    assert_eq!(
        rebase["startup_failures"].as_array().map(Vec::len),
        Some(1),
        "{rebase}"
    );
    assert_eq!(rebase["startup_failures"][0]["id"], 3206737417_i64);
    assert_eq!(rebase["startup_failures"][0]["conclusion"], "failure");
    let first = get(stack, &format!("/api/{REPO}/commit/{SHA}?per_page=2"))
        .await
        .1;
    assert_eq!(first["jobs"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["has_more"], true);
    // Paging over jobs.
    let paged = get(
        stack,
        &format!("/api/{REPO}/commit/{SHA}?per_page=2&page=2"),
    )
    .await
    .1;
    assert_eq!(paged["jobs"].as_array().map(Vec::len), Some(1));
    // Nothing known: 404.
    let (status, missing) = get(stack, &format!("/api/{REPO}/commit/{}", "0".repeat(40))).await;
    assert_eq!((status, missing["code"].as_str()), (404, Some("not_found")));
}

async fn pull_request_page_has_old_heads_and_oot(stack: &Stack) {
    let (status, page) = get(stack, &format!("/api/{REPO}/pull/2")).await;
    assert_eq!(status, 200, "{page}");
    let pr = &page["pull_request"];
    assert_eq!(pr["number"], 2);
    assert_eq!(pr["title"], "Update the README with new information.");
    let commits = page["commits"].as_array().expect("commits");
    let shas: Vec<&str> = commits.iter().filter_map(|c| c["sha"].as_str()).collect();
    // The current head, and the head a run saw that the PR no longer has.
    assert!(
        shas.contains(&pr["head_sha"].as_str().expect("head")),
        "{shas:?}"
    );
    let head = commits
        .iter()
        .find(|c| c["sha"] == pr["head_sha"])
        .expect("head");
    assert_eq!(head["is_head"], true);
    let old = commits
        .iter()
        .find(|c| c["sha"] == SHA)
        .expect("the old head");
    assert_eq!(old["is_head"], false);
    assert_eq!(old["sources"], json!(["workflow_run"]));
    assert_eq!(old["jobs"].as_array().map(Vec::len), Some(3));
    assert_eq!(old["counts"]["failure"], 2);
    assert_eq!(old["counts"]["success"], 1);
    // The real pytorch PR carries the OOT section.
    let (status, page) = get(stack, "/api/pytorch/pytorch/pull/115150").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["pull_request"]["number"], 115150);
    assert_eq!(
        (
            &page["oot"]["passed"],
            &page["oot"]["completed"],
            &page["oot"]["running"]
        ),
        (&json!(4), &json!(6), &json!(0))
    );
    let (status, missing) = get(stack, &format!("/api/{REPO}/pull/99999")).await;
    assert_eq!((status, missing["code"].as_str()), (404, Some("not_found")));
}

async fn oot_endpoints_reproduce_torchcis_numbers(stack: &Stack) {
    // oot_summary, 7 days: xpu 2 of 5 completed passed (2 failures, 1 cancelled), npu 2 of 2;
    // worst first.
    let summary = get(stack, "/api/oot/summary?days=7").await.1;
    let backends = summary["backends"].as_array().expect("backends");
    assert_eq!(backends.len(), 2, "{summary}");
    let (xpu, npu) = (&backends[0], &backends[1]);
    assert_eq!(xpu["downstream_repo"], XPU);
    assert_eq!(xpu["downstream_repo_level"], "L2");
    assert_eq!(
        (&xpu["successes"], &xpu["failures"], &xpu["completed"]),
        (&json!(2), &json!(2), &json!(5))
    );
    assert_eq!(xpu["pass_rate"], 0.4);
    assert_eq!(xpu["health"], "red");
    // (1800 + 1800 + 1800 + 360 + 360) / 5
    assert_eq!(xpu["avg_duration_s"], 1224.0);
    assert_eq!(npu["downstream_repo"], NPU);
    assert_eq!(
        (&npu["pass_rate"], &npu["health"], &npu["avg_duration_s"]),
        (&json!(1.0), &json!("green"), &json!(600.0))
    );
    assert!(xpu["last_run"].is_string());
    // 30 days takes in the older run.
    let summary = get(stack, "/api/oot/summary?days=30").await.1;
    assert_eq!(summary["backends"][0]["completed"], 6);
    assert_eq!(summary["backends"][0]["pass_rate"], 0.5);

    // The backend matrix: PRs newest number first, job names sorted; the highest attempt wins,
    // a tie goes to the most recent.
    let matrix = get(stack, &format!("/api/oot/{XPU}?days=7")).await.1;
    assert_eq!(matrix["job_names"], json!(["build", "lint", "test (1, 2)"]));
    let rows = matrix["rows"].as_array().expect("rows");
    assert_eq!(
        rows.iter()
            .map(|r| r["pr_number"].clone())
            .collect::<Vec<_>>(),
        [json!(115200), json!(115150)]
    );
    let (newer, older) = (&rows[0]["jobs"], &rows[1]["jobs"]);
    assert_eq!(
        older[0]["dynamo_key"],
        format!("{XPU}/delivery-115150/oot-ci/build/14")
    );
    assert_eq!(older[0]["label"], "failure");
    assert_eq!(older[1], Value::Null);
    assert_eq!(
        (&older[2]["run_attempt"], &older[2]["label"]),
        (&json!(2), &json!("success"))
    );
    assert_eq!(newer[0], Value::Null);
    assert_eq!(newer[1]["label"], "cancelled");
    assert_eq!(newer[2]["label"], "running");
    assert_eq!(newer[2]["queue_time_s"], 30.0);
    assert_eq!(
        (&matrix["successes"], &matrix["completed"]),
        (&json!(2), &json!(5))
    );
    assert_eq!(rows[1]["sha"], format!("{:0>40}", 115150));

    // One PR's OOT jobs: "X/Y passed, Z running", by backend, newest first.
    let pr = get(stack, "/api/oot/pr/115150").await.1;
    assert_eq!(
        (&pr["passed"], &pr["completed"], &pr["running"]),
        (&json!(4), &json!(6), &json!(0))
    );
    let backends: Vec<&str> = pr["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["downstream_repo"].as_str())
        .collect();
    assert_eq!(backends, [NPU, NPU, XPU, XPU, XPU, XPU]);
    // Merged from both callbacks, whichever came first.
    let first = &pr["jobs"][2];
    assert_eq!(
        first["dynamo_key"],
        format!("{XPU}/delivery-115150/oot-ci/build/14")
    );
    assert_eq!(
        (
            &first["total_tests"],
            &first["queue_time_s"],
            &first["duration_s"]
        ),
        (&json!(11), &json!(30.0), &json!(360.0))
    );
    let pr = get(stack, "/api/oot/pr/115200").await.1;
    assert_eq!(
        (&pr["passed"], &pr["completed"], &pr["running"]),
        (&json!(0), &json!(1), &json!(1))
    );
    let other = get(stack, "/api/oot/pr/115150?repo=someone/else").await.1;
    assert_eq!(other["jobs"], json!([]));
}

async fn failures_and_queue(stack: &Stack) {
    let job = get(stack, &format!("/api/jobs/{REPO}/{FAILED_JOB}"))
        .await
        .1;
    let rule = job["classification"]["rule"]
        .as_str()
        .expect("rule")
        .to_string();
    let window = "since=2021-08-01&until=2021-09-01";
    let (status, failures) = get(stack, &format!("/api/failures?repo={REPO}&{window}")).await;
    assert_eq!(status, 200, "{failures}");
    let top = &failures["failures"][0];
    assert_eq!(top["captures"], job["classification"]["captures"]);
    assert_eq!(
        (&top["jobs"], top["rule"].as_str()),
        (&json!(1), Some(rule.as_str()))
    );
    assert_eq!(top["example_job_ids"], json!([FAILED_JOB]));
    let by_rule = get(
        stack,
        &format!(
            "/api/failures?repo={REPO}&{window}&rule={}",
            urlencode(&rule)
        ),
    )
    .await
    .1;
    assert_eq!(by_rule["failures"].as_array().map(Vec::len), Some(1));
    let outside = get(
        stack,
        &format!("/api/failures?repo={REPO}&since=2022-01-01&until=2022-02-01"),
    )
    .await
    .1;
    assert_eq!(outside["failures"], json!([]));

    // The real queued job of clee2000/random-testing (queued since 2022: within ten years).
    let (status, queued) = get(
        stack,
        "/api/queued?repo=clee2000/random-testing&max_age_h=87600",
    )
    .await;
    assert_eq!(status, 200, "{queued}");
    let labels = queued["labels"].as_array().expect("labels");
    assert!(!labels.is_empty(), "{queued}");
    assert_eq!(labels[0]["queued"], 1);
    assert_eq!(labels[0]["jobs"][0]["name"], "alert-15min / alert-15min");
    assert!(labels[0]["max_queue_s"]
        .as_i64()
        .is_some_and(|s| s > 86_400));
    // Within the default day it is too old to be a real queue.
    let recent = get(stack, "/api/queued?repo=clee2000/random-testing")
        .await
        .1;
    assert_eq!(recent["labels"], json!([]));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn bad_parameters_are_400s_and_injections_are_harmless(stack: &Stack) {
    let injection = "x' OR '1'='1";
    let bad = [
        format!("/api/hud/{REPO}/main?page=0"),
        format!("/api/hud/{REPO}/main?per_page=100000"),
        format!("/api/hud/{REPO}/main?pag=1"),
        format!("/api/hud/{REPO}/main?page=1&page=2"),
        format!("/api/hud/{REPO}/a..b"),
        format!("/api/hud/{}/r/main", urlencode(injection)),
        format!("/api/hud/o/{}/main", urlencode(injection)),
        format!("/api/hud/{REPO}/{}", urlencode(injection)),
        format!("/api/{REPO}/commit/abc"),
        format!("/api/{REPO}/commit/{}", urlencode(injection)),
        format!("/api/{REPO}/pull/0"),
        format!("/api/{REPO}/pull/{}", urlencode(injection)),
        "/api/oot/summary?days=0".to_string(),
        "/api/oot/summary?days=366".to_string(),
        "/api/oot/summary?days=7%3B%20DROP%20TABLE%20x".to_string(),
        format!("/api/oot/{}/r", urlencode(injection)),
        "/api/oot/pr/-1".to_string(),
        format!("/api/oot/pr/1?repo={}", urlencode(injection)),
        format!("/api/jobs/{REPO}/{}", urlencode(injection)),
        format!("/api/jobs/{REPO}/1?x=1"),
        "/api/failures".to_string(),
        format!("/api/failures?repo={}", urlencode(injection)),
        format!("/api/failures?repo={REPO}&since={}", urlencode(injection)),
        format!("/api/failures?repo={REPO}&since=2022-01-02&until=2022-01-01"),
        format!("/api/failures?repo={REPO}&since=2020-01-01&until=2022-01-01"),
        format!("/api/failures?repo={REPO}&rule=%01"),
        "/api/queued".to_string(),
        format!("/api/queued?repo={}", urlencode(injection)),
        "/api/queued?repo=a/b&max_age_h=0".to_string(),
        format!("/api/{REPO}/commit/%FF"),
        format!("/api/jobs/{REPO}/%FF"),
    ];
    for path in &bad {
        let (status, body) = get(stack, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["code"], "bad_request", "{path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}"
        );
    }
    // Strings that are valid values reach ClickHouse as literals: they find nothing and
    // break nothing.
    let harmless = [
        format!("/api/hud/{REPO}/{}", urlencode("main'--")),
        format!(
            "/api/failures?repo={REPO}&since=2021-08-01&until=2021-09-01&rule={}",
            urlencode(injection)
        ),
        format!(
            "/api/failures?repo={REPO}&since=2021-08-01&until=2021-09-01&rule={}",
            urlencode("\\' OR 1=1) --")
        ),
    ];
    for path in &harmless {
        let (status, body) = get(stack, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let rows = body.get("commits").or(body.get("failures")).expect("rows");
        assert_eq!(rows, &json!([]), "{path}");
    }
    // The tables are intact.
    let grid = get(stack, &format!("/api/hud/{REPO}/main")).await.1;
    assert_eq!(grid["commits"].as_array().map(Vec::len), Some(1));
    // Unknown API paths are JSON 404s.
    let (status, body) = get(stack, "/api/nope").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
}

/// GETs `url`, then again with its `ETag`: the second answer must be a 304. Returns the first.
async fn revalidates(stack: &Stack, url: &str) -> reqwest::Response {
    let first = stack.http.get(url).send().await.expect("answer");
    assert_eq!(first.status().as_u16(), 200, "{url}");
    let etag = first.headers()["etag"].to_str().expect("etag").to_string();
    let again = stack
        .http
        .get(url)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("answer");
    assert_eq!(again.status().as_u16(), 304, "{url}");
    first
}

async fn caching_headers(stack: &Stack) {
    let first = revalidates(stack, &format!("{}/api/hud/{REPO}/main", stack.api_url)).await;
    assert!(first.headers()["cache-control"]
        .to_str()
        .expect("cc")
        .contains("s-maxage=60"));
    let missing = stack
        .http
        .get(format!("{}/api/{REPO}/pull/99999", stack.api_url))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status().as_u16(), 404);
    assert_eq!(missing.headers()["cache-control"], "no-store");
    // The pages have ETags too.
    revalidates(stack, &format!("{}/hud/{REPO}/main", stack.api_url)).await;
    let (status, doc) = get(stack, "/api/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/api/hud/{owner}/{repo}/{branch}"].is_object());
}

async fn pages_in_headless_chromium(stack: &Stack) {
    let job = get(stack, &format!("/api/jobs/{REPO}/{FAILED_JOB}"))
        .await
        .1;
    let line = job["classification"]["line"].as_str().expect("line");
    // A piece of the failure line with nothing the DOM serializer would escape.
    let piece: String = line
        .chars()
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take_while(|c| c.is_ascii_alphanumeric() || *c == ' ')
        .collect();
    assert!(piece.len() >= 5, "{line}");
    let flaky_cell = r#"data-job="CodeQL / test" data-conclusion="success" data-flaky="true""#;
    let failed_cell = r#"data-job="CodeQL / linters" data-conclusion="failure" data-flaky="false""#;
    check_page(
        stack,
        "grid",
        &format!("/hud/{REPO}/main"),
        &[
            "id=\"grid\"",
            &format!("data-sha=\"{SHA}\""),
            flaky_cell,
            failed_cell,
            // Hovering the failed cell shows its failing test and its failure line.
            "title=\"CodeQL / linters: failure — failed test python.test_sample::test_which_fails (and 1 more) — ",
            "data-failed-test=\"python.test_sample::test_which_fails\"",
            ">F</a>",
            ">X</a>",
            // A plain cell's hover text is made on hover (the fixtures' two cells are not plain).
            "grid.addEventListener(\"mouseover\"",
            "data-failure-line=\"",
            &piece,
            &format!("href=\"/{REPO}/commit/{SHA}\""),
            &format!("href=\"/{REPO}/pull/2\""),
        ],
    )
    .await;
    check_page(
        stack,
        "commit",
        &format!("/{REPO}/commit/{SHA}"),
        &[
            "Run CodeQL on every push (#2)",
            &format!("data-id=\"{FAILED_JOB}\""),
            "class=\"failure-line\"",
            &piece,
            &format!("href=\"https://github.com/{REPO}/commit/{SHA}\""),
            // The tests that failed in its jobs, linked to their histories and jobs.
            "id=\"failed-tests\"",
            "data-name=\"test_which_fails\"",
            "AssertionError: assert 'test' == 'xyz'",
            &format!("href=\"/{REPO}/job/{FAILED_JOB}\""),
        ],
    )
    .await;
    check_page(
        stack,
        "job",
        &format!("/{REPO}/job/{FAILED_JOB}"),
        &[
            "id=\"job-header\"",
            "id=\"failure-line\"",
            "id=\"failed-tests\"",
            "data-status=\"failed\" data-name=\"test_with_error\"",
            "href=\"/tests/Codertocat/Hello-World/history?name=test_which_fails&amp;classname=python.test_sample\"",
            "data-state=\"parsed\"",
        ],
    )
    .await;
    check_page(
        stack,
        "test-history",
        &format!("/tests/{REPO}/history?name=test_which_fails&classname=python.test_sample"),
        &[
            "id=\"rates\"",
            &format!("data-status=\"failed\" data-job=\"{FAILED_JOB}\""),
            "CodeQL / linters",
            "100.0%",
        ],
    )
    .await;
    check_page(
        stack,
        "commit-startup-failure",
        &format!("/clee2000/random-testing/commit/{STARTUP_FAILURE_SHA}"),
        &["id=\"startup-failures\"", "data-run=\"3206737417\""],
    )
    .await;
    check_page(
        stack,
        "pull",
        "/pytorch/pytorch/pull/115150",
        &[
            "id=\"oot\"",
            "4/6 passed, 0 running",
            &format!("href=\"/oot/{XPU}\""),
            "data-label=\"failure\"",
        ],
    )
    .await;
    check_page(
        stack,
        "pull-old-heads",
        &format!("/{REPO}/pull/2"),
        &[&format!("data-sha=\"{SHA}\""), "class=\"pr-commit\""],
    )
    .await;
    check_page(
        stack,
        "oot-summary",
        "/oot?days=7",
        &[
            "id=\"oot-summary\"",
            &format!("data-repo=\"{XPU}\" data-pass-rate=\"0.4\""),
            "40.0%",
            "class=\"chip red\"",
            "class=\"chip green\"",
        ],
    )
    .await;
    check_page(
        stack,
        "oot-backend",
        &format!("/oot/{XPU}?days=7"),
        &[
            "id=\"matrix\"",
            "data-pr=\"115200\"",
            r#"data-job="test (1, 2)" data-label="success" data-attempt="2""#,
            r#"data-job="build" data-label="failure" data-attempt="1""#,
            "2/5 passed",
        ],
    )
    .await;
    // A script URL from a callback is shown, never linked.
    let dom = run_chromium(
        &format!("{}/pytorch/pytorch/pull/115150", stack.api_url),
        &["--dump-dom".to_string()],
    )
    .await;
    assert!(dom.contains("data-label=\"success\"") && !dom.contains("href=\"javascript:"));
    // The home page's form opens a grid.
    let opened = stack
        .http
        .get(format!("{}/?repo={REPO}&branch=main", stack.api_url))
        .send()
        .await
        .expect("answer");
    assert_eq!(opened.status().as_u16(), 200);
    assert!(opened.url().path().ends_with(&format!("/hud/{REPO}/main")));
    // A bad request is a page that says so.
    let (status, _) = {
        let r = stack
            .http
            .get(format!("{}/hud/{REPO}/a..b", stack.api_url))
            .send()
            .await
            .expect("answer");
        (r.status().as_u16(), ())
    };
    assert_eq!(status, 400);
}
