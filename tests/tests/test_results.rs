//! Test results end to end, on the real broker and ClickHouse, with the real reports of
//! `shared/fixtures/test-reports/`: uploaded plain and gzip through the gateway, parsed by the
//! parser stage, projected into the four test tables and read back through the API — each
//! report's counts checked against an independent DOM reading of the same file. Re-uploads
//! change nothing; a replaced report wins; a replay rebuilds the tables to identical
//! checksums. Then every bad input, answered at the gateway or dead-lettered with its reason;
//! and reports fetched from a completed run's artifacts through a GitHub stand-in.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use sha2::Digest;

use hudstream_e2e::{
    caught_up, count, fixture, read_topic, table_checksum, test_config, test_report_fixtures,
    wait_until, with_test_reports, Stack,
};
use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::Secret;
use hudstream_schemas::headers as h;
use hudstream_schemas::topics::{DEAD_LETTERS, HUD_TEST_REPORT_V1};

const TOKEN: &str = "reports-token";
const REPO: &str = "pytorch/pytorch";
const SHA: &str = "3484a3fb816e0859fd6e1cea078d76385ff50625";
const TEST_TABLES: [&str; 4] = [
    "test_report",
    "test_case",
    "test_case_by_name",
    "test_failure",
];

/// One `<testcase>` as a DOM reads it — this suite's own reading, not the product's parser.
#[derive(Debug)]
struct DomCase {
    test: (String, String, String),
    outcome: &'static str,
    reruns: usize,
}

/// Every `<testcase>` of a report, or `None` if it is not a well-formed JUnit report. Two
/// fixtures hold `time="<<computed>>"`, which strict XML forbids and the tools that wrote them
/// read anyway: the DOM gets those escaped.
fn dom_cases(bytes: &[u8]) -> Option<Vec<DomCase>> {
    let text =
        String::from_utf8_lossy(bytes).replace("\"<<computed>>\"", "\"&lt;&lt;computed&gt;&gt;\"");
    let doc = roxmltree::Document::parse(&text).ok()?;
    let root = doc.root_element().tag_name().name();
    if root != "testsuite" && root != "testsuites" {
        return None;
    }
    let retry_tags = [
        "rerun",
        "flakyFailure",
        "flakyError",
        "rerunFailure",
        "rerunError",
    ];
    Some(
        doc.descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .map(|case| {
                let children: Vec<_> = case.children().filter(|c| c.is_element()).collect();
                let first_problem = children
                    .iter()
                    .find(|c| c.has_tag_name("failure") || c.has_tag_name("error"));
                let status = case.attribute("status").unwrap_or("").to_lowercase();
                let outcome = match first_problem {
                    Some(p) if p.has_tag_name("failure") => "failed",
                    Some(_) => "errored",
                    None if children.iter().any(|c| c.has_tag_name("skipped"))
                        || ["skipped", "disabled", "notrun", "ignored"]
                            .contains(&status.as_str()) =>
                    {
                        "skipped"
                    }
                    None => "passed",
                };
                let suite_file = case
                    .ancestors()
                    .find(|a| a.has_tag_name("testsuite"))
                    .and_then(|s| s.attribute("file"))
                    .unwrap_or("");
                let file = case
                    .attribute("file")
                    .filter(|f| !f.is_empty())
                    .unwrap_or(suite_file);
                DomCase {
                    test: (
                        file.to_string(),
                        case.attribute("classname").unwrap_or("").to_string(),
                        case.attribute("name").unwrap_or("").to_string(),
                    ),
                    outcome,
                    reruns: children
                        .iter()
                        .filter(|c| retry_tags.contains(&c.tag_name().name()))
                        .count(),
                }
            })
            .collect(),
    )
}

/// torchci's status of a test from its runs in a job (`reference/test-reports.md` §1),
/// written here again: success if no run failed, errored, was skipped or retried; else skipped
/// if any was skipped; else flaky if any neither failed nor errored; else failure.
fn torchci_status(runs: &[&DomCase]) -> &'static str {
    let bad = |r: &&DomCase| r.outcome == "failed" || r.outcome == "errored";
    if runs.iter().all(|r| r.outcome == "passed" && r.reruns == 0) {
        "passed"
    } else if runs.iter().any(|r| r.outcome == "skipped") {
        "skipped"
    } else if runs.iter().any(|r| !bad(r)) {
        "flaky"
    } else {
        "failed"
    }
}

/// The DOM's tests of a report counted by status.
fn dom_statuses(cases: &[DomCase]) -> BTreeMap<&'static str, u64> {
    let mut runs: BTreeMap<&(String, String, String), Vec<&DomCase>> = BTreeMap::new();
    for case in cases {
        runs.entry(&case.test).or_default().push(case);
    }
    let mut out = BTreeMap::new();
    for runs in runs.values() {
        *out.entry(torchci_status(runs)).or_default() += 1;
    }
    out
}

fn report_name(folder: &str, file: &str) -> String {
    format!("test/test-reports/{folder}/{file}")
}

async fn test_checksums(clickhouse: &ClickHouse) -> BTreeMap<&'static str, (usize, String)> {
    let mut out = BTreeMap::new();
    for table in TEST_TABLES {
        out.insert(table, table_checksum(clickhouse, table).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_report_lands_as_a_dom_reads_it_and_reuploads_and_replays_change_nothing() {
    let mut config = test_config();
    let store = with_test_reports(&mut config, TOKEN);
    let stack = Stack::start_with(config).await;
    let clickhouse = stack.clickhouse();
    let fixtures = test_report_fixtures();
    assert_eq!(fixtures.len(), 50, "the fixture set changed");

    // Each report for a job of its own, every other one gzip-encoded.
    for (i, (folder, file, bytes)) in fixtures.iter().enumerate() {
        let job = format!("{REPO}/{}", 7000 + i);
        let query = format!("?report={}&head_sha={SHA}", report_name(folder, file));
        let (status, body) = stack
            .put_report(&job, &query, TOKEN, bytes.clone(), i % 2 == 1)
            .await;
        assert_eq!(status, 201, "{file}: {body}");
        assert_eq!(body["sha256"], hex::encode(sha2::Sha256::digest(bytes)));
        assert_eq!(body["bytes"], bytes.len(), "{file}: counted uncompressed");
        assert_eq!(body["already_stored"], false);
    }
    wait_until("every report projected", 180, || {
        let clickhouse = clickhouse.clone();
        async move {
            count(
                &clickhouse,
                "SELECT count() AS n FROM {db}.test_report FINAL",
            )
            .await
                == 50
        }
    })
    .await;
    caught_up(&stack.config).await;

    // Each report as the API tells it, against the DOM's reading.
    let mut refused = Vec::new();
    for (i, (folder, file, bytes)) in fixtures.iter().enumerate() {
        let (status, tests) = stack
            .api(&format!(
                "/api/tests/{REPO}/jobs/{}?per_page=5000",
                7000 + i
            ))
            .await;
        assert_eq!(status, 200, "{file}: {tests}");
        let report = &tests["reports"][0];
        assert_eq!(report["report"], report_name(folder, file));
        match dom_cases(bytes) {
            Some(cases) => {
                assert_eq!(report["state"], "parsed", "{file}: {report}");
                assert_eq!(report["cases"], cases.len(), "{file}");
                for outcome in ["passed", "failed", "errored", "skipped"] {
                    let n = cases.iter().filter(|c| c.outcome == outcome).count();
                    assert_eq!(report[outcome], n, "{file}: {outcome}");
                }
                let statuses = dom_statuses(&cases);
                for (status, field) in [
                    ("passed", "passed"),
                    ("failed", "failed"),
                    ("flaky", "flaky"),
                    ("skipped", "skipped"),
                ] {
                    assert_eq!(
                        tests["summary"][field],
                        statuses.get(status).copied().unwrap_or(0),
                        "{file}: tests {status}"
                    );
                }
                let listed = tests["cases"].as_array().expect("cases").len() as u64;
                assert_eq!(listed, statuses.values().sum::<u64>(), "{file}");
                // Failed before flaky before the rest.
                let ranks: Vec<u8> = tests["cases"]
                    .as_array()
                    .expect("cases")
                    .iter()
                    .map(|t| match t["status"].as_str() {
                        Some("failed") => 0,
                        Some("flaky") => 1,
                        _ => 2,
                    })
                    .collect();
                assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{file}: {ranks:?}");
                let rows = count(
                    &clickhouse,
                    &format!(
                        "SELECT count() AS n FROM {{db}}.test_case FINAL WHERE job_id = {}",
                        7000 + i
                    ),
                )
                .await;
                assert_eq!(rows, cases.len() as u64, "{file}: one row per case");
            }
            None => {
                assert_eq!(report["state"], "refused", "{file}: {report}");
                assert!(
                    report["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("at byte")),
                    "{file}: {report}"
                );
                refused.push(file.clone());
            }
        }
    }
    assert_eq!(refused.len(), 1, "the one corrupt fixture: {refused:?}");
    let dead = stack.read_topic(DEAD_LETTERS, |r| !r.is_empty()).await;
    let reason = dead[0]
        .header_str(h::DLQ_REASON)
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("refused") && reason.contains("at byte") && reason.contains("corrupt"),
        "{reason}"
    );

    // The same bytes again (plain where they were gzip): the same pointer, nothing changes.
    let before = test_checksums(&clickhouse).await;
    let (folder, file, bytes) = &fixtures[1];
    let query = format!("?report={}&head_sha={SHA}", report_name(folder, file));
    let (status, body) = stack
        .put_report(&format!("{REPO}/7001"), &query, TOKEN, bytes.clone(), false)
        .await;
    assert_eq!(
        (status, &body["already_stored"]),
        (200, &json!(true)),
        "{body}"
    );
    stack
        .read_topic(HUD_TEST_REPORT_V1, |r| r.len() >= 51)
        .await;
    caught_up(&stack.config).await;
    assert_eq!(
        test_checksums(&clickhouse).await,
        before,
        "a retried upload changes nothing"
    );

    // Another report uploaded under the same name replaces it.
    let (folder, file, _) = &fixtures[0];
    let replacement = fixtures
        .iter()
        .find(|(_, f, _)| f.contains("flaky_with_classname_file"))
        .expect("fixture");
    let (status, _) = stack
        .put_report(
            &format!("{REPO}/7000"),
            &format!("?report={}", report_name(folder, file)),
            TOKEN,
            replacement.2.clone(),
            true,
        )
        .await;
    assert_eq!(status, 201);
    let replaced = stack
        .wait_for(&format!("/api/tests/{REPO}/jobs/7000"), |t| {
            t["reports"][0]["sha256"] == hex::encode(sha2::Sha256::digest(&replacement.2))
                && t["summary"]["total"] == 3
        })
        .await;
    assert_eq!(replaced["summary"]["flaky"], 1, "{replaced}");
    assert_eq!(replaced["cases"][0]["name"], "test_foo", "{replaced}");
    assert_eq!(replaced["cases"][0]["status"], "flaky", "{replaced}");

    // torchci's bot disables it; the flaky and disabled views and pages say so.
    let issue = hudstream_ingest::fixtures::disabled_test_issue(
        &hudstream_ingest::fixtures::default_dir(),
        REPO,
        77,
        "test_foo",
        "__main__.TestFoo",
        "linux, ROCm, typo",
    )
    .expect("issue");
    stack.post_all([&issue]).await;
    let disabled = stack
        .wait_for(&format!("/api/tests/{REPO}/disabled"), |d| {
            d["tests"].as_array().is_some_and(|t| t.len() == 1)
        })
        .await;
    let test = &disabled["tests"][0];
    assert_eq!(test["platforms"], json!(["linux", "rocm"]), "{test}");
    assert_eq!(test["invalid_platforms"], json!(["typo"]), "{test}");
    assert_eq!(
        test["recent"]["classnames"],
        json!(["test_foo.TestFoo"]),
        "{test}"
    );
    assert_eq!(
        (
            test["recent"]["green"].as_u64(),
            test["recent"]["red"].as_u64()
        ),
        (Some(2), Some(4)),
        "two jobs ran it (its own fixture's and the replaced report): a pass and two failures each"
    );
    assert_eq!(test["reenable"]["eligible"], false);
    let flaky = stack.api(&format!("/api/tests/{REPO}/flaky")).await.1;
    let foo = flaky["tests"]
        .as_array()
        .and_then(|t| {
            t.iter()
                .find(|t| t["name"] == "test_foo" && t["classname"] == "test_foo.TestFoo")
        })
        .unwrap_or_else(|| panic!("test_foo is flaky: {flaky}"));
    assert_eq!(foo["how"], json!(["in_job"]));
    assert_eq!(foo["disabled_by"]["number"], 77);
    let history = stack
        .api(&format!(
            "/api/tests/{REPO}/history?name=test_foo&classname=test_foo.TestFoo"
        ))
        .await
        .1;
    assert_eq!(history["jobs"]["flaky"], 2, "{history}");
    assert_eq!(history["runs"][0]["job_id"], 7000, "{history}");
    hudstream_e2e::check_page(
        &stack,
        "flaky-tests",
        &format!("/tests/{REPO}/flaky"),
        &[
            "id=\"flaky-tests\"",
            "data-name=\"test_foo\" data-classname=\"test_foo.TestFoo\"",
            "class=\"disabled-issue\"",
        ],
    )
    .await;
    hudstream_e2e::check_page(
        &stack,
        "disabled-tests",
        &format!("/tests/{REPO}/disabled"),
        &[
            "id=\"disabled-tests\"",
            "data-name=\"test_foo\" data-eligible=\"false\"",
            "linux, rocm",
            "150 needed",
        ],
    )
    .await;
    hudstream_e2e::check_page(
        &stack,
        "job-without-webhook",
        &format!("/{REPO}/job/7000"),
        &[
            "id=\"job-unknown\"",
            "data-status=\"flaky\" data-name=\"test_foo\"",
        ],
    )
    .await;
    // The re-enable rule on the real report: its TestBar.test_foo passes every time; once it
    // has passed 150 times in a week (150 more jobs upload the report) and its issue has been
    // left alone for 14 days (the fixture issue was last updated in 2019), it may be re-enabled.
    let bar = hudstream_ingest::fixtures::disabled_test_issue(
        &hudstream_ingest::fixtures::default_dir(),
        REPO,
        78,
        "test_foo",
        "__main__.TestBar",
        "linux",
    )
    .expect("issue");
    stack.post_all([&bar]).await;
    for job in 8000..8150 {
        let (status, body) = stack
            .put_report(
                &format!("{REPO}/{job}"),
                "?report=test/test-reports/test_foo/test_foo-1.xml",
                TOKEN,
                replacement.2.clone(),
                false,
            )
            .await;
        assert!(status == 201 || status == 200, "{body}");
    }
    let disabled = stack
        .wait_for(&format!("/api/tests/{REPO}/disabled"), |d| {
            d["tests"].as_array().is_some_and(|t| {
                t.iter().any(|t| {
                    t["suite"] == "__main__.TestBar" && t["recent"]["green"].as_u64() >= Some(150)
                })
            })
        })
        .await;
    let tests = disabled["tests"].as_array().expect("tests");
    let bar = tests
        .iter()
        .find(|t| t["suite"] == "__main__.TestBar")
        .expect("TestBar");
    assert_eq!(bar["recent"]["red"], 0, "{bar}");
    assert_eq!(bar["reenable"]["eligible"], true, "{bar}");
    let foo = tests
        .iter()
        .find(|t| t["suite"] == "__main__.TestFoo")
        .expect("TestFoo");
    assert_eq!(foo["reenable"]["eligible"], false, "still failing: {foo}");
    hudstream_e2e::check_page(
        &stack,
        "disabled-tests-reenable",
        &format!("/tests/{REPO}/disabled"),
        &[
            "data-name=\"test_foo\" data-eligible=\"true\"",
            ">ready</span>",
        ],
    )
    .await;
    caught_up(&stack.config).await;

    // A replay rebuilds every test table to the same contents.
    let before = test_checksums(&clickhouse).await;
    for (table, (rows, _)) in &before {
        assert!(*rows > 0, "{table} is empty");
    }
    let replayer = hudstream::replayer(&stack.config).expect("replayer");
    for table in TEST_TABLES {
        for encoder in hudstream::tables_to_replay(table).expect("table") {
            replayer
                .replay(encoder, &mut |_| {})
                .await
                .unwrap_or_else(|e| panic!("replaying {table}: {e:#}"));
        }
    }
    assert_eq!(
        test_checksums(&clickhouse).await,
        before,
        "a replay rebuilds the same tables"
    );
    stack.stop().await;
    let _ = std::fs::remove_dir_all(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_answered_and_reports_that_are_not_reports_are_dead_lettered() {
    let mut config = test_config();
    let store = with_test_reports(&mut config, TOKEN);
    config.tests.max_report_bytes = 64 * 1024;
    let stack = Stack::start_with(config).await;
    let job = format!("{REPO}/9001");
    let ok_report = b"<testsuite><testcase name=\"test_a\"/></testsuite>".to_vec();
    let put = |job: String,
               query: &'static str,
               token: &'static str,
               body: Vec<u8>,
               headers: Vec<(&'static str, &'static str)>| {
        let http = stack.http.clone();
        let url = format!("{}/tests/{job}{query}", stack.gateway_url);
        async move {
            let mut request = http.put(url).bearer_auth(token).body(body);
            for (k, v) in headers {
                request = request.header(k, v);
            }
            let response = request.send().await.expect("gateway answers");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let big = format!(
        "<testsuite>{}</testsuite>",
        "<testcase name=\"t\"/>".repeat(5000)
    )
    .into_bytes();
    let cases: Vec<(&str, (u16, Value), u16, &str)> = vec![
        (
            "no token",
            put(job.clone(), "?report=a.xml", "", ok_report.clone(), vec![]).await,
            401,
            "unauthorized",
        ),
        (
            "a wrong token",
            put(
                job.clone(),
                "?report=a.xml",
                "nope",
                ok_report.clone(),
                vec![],
            )
            .await,
            401,
            "unauthorized",
        ),
        (
            "JSON, not XML",
            put(
                job.clone(),
                "?report=a.xml",
                TOKEN,
                br#"{"tests": 3}"#.to_vec(),
                vec![],
            )
            .await,
            400,
            "not_xml",
        ),
        (
            "gzip that is not",
            put(
                job.clone(),
                "?report=a.xml",
                TOKEN,
                b"<testsuite/>".to_vec(),
                vec![("content-encoding", "gzip")],
            )
            .await,
            400,
            "bad_gzip",
        ),
        (
            "gzip of JSON",
            put(
                job.clone(),
                "?report=a.xml",
                TOKEN,
                hudstream_e2e::gzip(b"[1, 2]"),
                vec![("content-encoding", "gzip")],
            )
            .await,
            400,
            "not_xml",
        ),
        (
            "too large",
            put(job.clone(), "?report=a.xml", TOKEN, big.clone(), vec![]).await,
            413,
            "too_large",
        ),
        (
            "too large once unzipped",
            put(
                job.clone(),
                "?report=a.xml",
                TOKEN,
                hudstream_e2e::gzip(&big),
                vec![("content-encoding", "gzip")],
            )
            .await,
            413,
            "too_large",
        ),
        (
            "brotli",
            put(
                job.clone(),
                "?report=a.xml",
                TOKEN,
                ok_report.clone(),
                vec![("content-encoding", "br")],
            )
            .await,
            415,
            "unsupported_encoding",
        ),
        (
            "no report name",
            put(job.clone(), "", TOKEN, ok_report.clone(), vec![]).await,
            400,
            "bad_upload",
        ),
        (
            "a job id that is not one",
            put(
                format!("{REPO}/x1"),
                "?report=a.xml",
                TOKEN,
                ok_report.clone(),
                vec![],
            )
            .await,
            400,
            "bad_upload",
        ),
        (
            "a short head_sha",
            put(
                job.clone(),
                "?report=a.xml&head_sha=abc",
                TOKEN,
                ok_report.clone(),
                vec![],
            )
            .await,
            400,
            "bad_upload",
        ),
        (
            "an empty body",
            put(job.clone(), "?report=a.xml", TOKEN, Vec::new(), vec![]).await,
            400,
            "empty_body",
        ),
    ];
    for (what, (status, body), want, code) in cases {
        assert_eq!(status, want, "{what}: {body}");
        assert_eq!(body["code"], code, "{what}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {body}"
        );
    }
    let (status, _) = stack
        .put_report(&job, "?report=a.xml", TOKEN, ok_report.clone(), false)
        .await;
    assert_eq!(status, 201, "a good report after all that");

    // XML that is not a report: accepted (it is XML), then refused by the parser with the
    // reason and the byte, and dead-lettered.
    let not_reports: [(&str, &[u8], &str); 4] = [
        ("page.xml", b"<!DOCTYPE html>\n<html><body><p>502 Bad Gateway</p></body></html>", "not a JUnit report"),
        ("cut.xml", b"<testsuite><testcase name=\"a\"><failure>boom</testcase></testsuite>", "malformed XML at byte"),
        ("bomb.xml", b"<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>\n<testsuite><testcase name=\"&lol2;\"/></testsuite>", "entit"),
        ("entity.xml", b"<testsuite><testcase name=\"&undefined;\"/></testsuite>", "undefined entity"),
    ];
    for (name, body, _) in not_reports {
        let query = format!("?report={name}");
        let (status, answer) = stack
            .put_report(&job, &query, TOKEN, body.to_vec(), false)
            .await;
        assert_eq!(status, 201, "{name}: {answer}");
    }
    let dead = stack.read_topic(DEAD_LETTERS, |r| r.len() >= 4).await;
    for (name, _, says) in not_reports {
        let letter = dead
            .iter()
            .find(|r| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).ends_with(name))
            .unwrap_or_else(|| panic!("{name} is dead-lettered"));
        let reason = letter.header_str(h::DLQ_REASON).unwrap_or_default();
        assert!(
            reason.contains(says) && reason.contains("byte"),
            "{name}: {reason}"
        );
        assert_eq!(letter.header_str(h::DLQ_STAGE), Some("test-parse"));
    }
    let tests = stack
        .wait_for(&format!("/api/tests/{REPO}/jobs/9001"), |t| {
            // The summaries and the cases come through different projections: wait for both.
            t["reports"].as_array().is_some_and(|r| r.len() == 5) && t["summary"]["total"] == 1
        })
        .await;
    let states: Vec<&str> = tests["reports"]
        .as_array()
        .expect("reports")
        .iter()
        .map(|r| r["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        states.iter().filter(|s| **s == "refused").count(),
        4,
        "{tests}"
    );
    assert_eq!(
        tests["summary"]["total"], 1,
        "only the good report's test counts: {tests}"
    );
    stack.stop().await;
    let _ = std::fs::remove_dir_all(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_refused_when_no_upload_token_is_configured() {
    let mut config = test_config();
    let store = with_test_reports(&mut config, TOKEN);
    config.logs.upload_tokens.clear();
    let stack = Stack::start_with(config).await;
    let (status, body) = stack
        .put_report(
            &format!("{REPO}/1"),
            "?report=a.xml",
            TOKEN,
            b"<testsuite/>".to_vec(),
            false,
        )
        .await;
    assert_eq!((status, &body["code"]), (404, &json!("disabled")), "{body}");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(store);
}

/// The artifact endpoints the fetcher uses, with scripted trouble.
#[derive(Default)]
struct GitHubStandIn {
    base: Mutex<String>,
    blob_base: Mutex<String>,
    artifacts: Mutex<Value>,
    zips: Mutex<BTreeMap<i64, Vec<u8>>>,
    list_requests: AtomicUsize,
    downloads: AtomicUsize,
    leaked_tokens: AtomicUsize,
}

async fn list_artifacts(
    State(gh): State<Arc<GitHubStandIn>>,
    Path((_owner, _repo, _run)): Path<(String, String, i64)>,
) -> Response {
    // The first request fails, as GitHub sometimes does.
    if gh.list_requests.fetch_add(1, Ordering::SeqCst) == 0 {
        return (StatusCode::BAD_GATEWAY, "upstream trouble").into_response();
    }
    axum::Json(gh.artifacts.lock().unwrap().clone()).into_response()
}

async fn artifact_zip(
    State(gh): State<Arc<GitHubStandIn>>,
    Path((_owner, _repo, id)): Path<(String, String, i64)>,
) -> Response {
    if !gh.zips.lock().unwrap().contains_key(&id) {
        return (StatusCode::GONE, r#"{"message":"Artifact has expired"}"#).into_response();
    }
    let location = format!("{}/blob/{id}?sig=short-lived", gh.blob_base.lock().unwrap());
    (StatusCode::FOUND, [("location", location)]).into_response()
}

async fn blob(
    State(gh): State<Arc<GitHubStandIn>>,
    Path(id): Path<i64>,
    headers: axum::http::HeaderMap,
) -> Response {
    if headers.contains_key("authorization") {
        gh.leaked_tokens.fetch_add(1, Ordering::SeqCst);
        return StatusCode::BAD_REQUEST.into_response();
    }
    gh.downloads.fetch_add(1, Ordering::SeqCst);
    match gh.zips.lock().unwrap().get(&id) {
        Some(zip) => zip.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A zip of real reports, laid out as PyTorch's artifacts are.
fn zip_of(files: &[(String, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        zip.start_file(name.as_str(), options).expect("zip entry");
        zip.write_all(bytes).expect("zip write");
    }
    zip.finish().expect("zip").into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_runs_test_report_artifacts_are_fetched_unzipped_and_parsed() {
    let gh = Arc::new(GitHubStandIn::default());
    let api = Router::new()
        .route(
            "/repos/{owner}/{repo}/actions/runs/{run}/artifacts",
            get(list_artifacts),
        )
        .route(
            "/repos/{owner}/{repo}/actions/artifacts/{id}/zip",
            get(artifact_zip),
        )
        .with_state(gh.clone());
    let blobs = Router::new()
        .route("/blob/{id}", get(blob))
        .with_state(gh.clone());
    for (router, base) in [(api, &gh.base), (blobs, &gh.blob_base)] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *base.lock().unwrap() = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
    }
    let fixtures = test_report_fixtures();
    let pick = |part: &str| {
        fixtures
            .iter()
            .find(|(_, f, _)| f.contains(part))
            .map(|(_, _, b)| b.as_slice())
            .expect("fixture")
    };
    // The fixture run 289782451 (attempt 1) of octo-org/octo-repo; job 555 has two reports.
    let zip = zip_of(&[
        (
            "test-reports/python-pytest/test_sample/test_sample-1.xml".into(),
            pick("python__report"),
        ),
        (
            "test-reports/python-pytest/test_foo/test_foo-2.xml".into(),
            pick("flaky_with_classname_file"),
        ),
        ("test-reports/usage_log.txt".into(), b"not a report"),
    ]);
    gh.zips.lock().unwrap().insert(1, zip);
    *gh.artifacts.lock().unwrap() = json!({
        "total_count": 5,
        "artifacts": [
            {"id": 1, "name": "test-reports-runattempt1-test-default-1-2-linux.2xlarge_555", "size_in_bytes": 1000, "expired": false},
            {"id": 2, "name": "logs-runattempt1-test-default-1-2-linux.2xlarge_555", "size_in_bytes": 10, "expired": false},
            {"id": 3, "name": "test-reports-runattempt1-test-default-2-2-linux.2xlarge_556", "size_in_bytes": 10, "expired": true},
            {"id": 4, "name": "test-reports-runattempt2-test-default-1-2-linux.2xlarge_557", "size_in_bytes": 10, "expired": false},
            {"id": 5, "name": "test-reports-runattempt1-test-crossref-1-1-linux.2xlarge_558", "size_in_bytes": 10, "expired": false}
        ]
    });

    let mut config = test_config();
    let store = with_test_reports(&mut config, TOKEN);
    config.tests.fetch_artifacts = true;
    config.logs.github_api_url = gh.base.lock().unwrap().clone();
    config.logs.github_token = Secret::new("gh-token");
    config.logs.fetch_attempts = 3;
    let stack = Stack::start_with(config).await;
    let run = fixture("workflow_run/completed.payload.json");
    stack.post_all([&run]).await;

    let tests = stack
        .wait_for("/api/tests/octo-org/octo-repo/jobs/555", |t| {
            t["reports"].as_array().is_some_and(|r| r.len() == 2) && t["summary"]["total"] == 6
        })
        .await;
    let reports = tests["reports"].as_array().expect("reports");
    assert!(
        reports
            .iter()
            .all(|r| r["state"] == "parsed" && r["source"] == "artifact"),
        "{tests}"
    );
    assert_eq!(
        reports
            .iter()
            .map(|r| r["invoking_file"].as_str().unwrap_or_default())
            .collect::<Vec<_>>(),
        vec!["test_foo", "test_sample"],
        "the report's folder is its invoking file"
    );
    assert_eq!(tests["summary"]["flaky"], 1, "{tests}");
    assert!(
        tests["summary"]["failed"].as_u64().is_some_and(|n| n >= 1),
        "{tests}"
    );
    // Only the matching, live, current-attempt artifacts were asked for; the expired one and
    // the gone one are skipped, not errors.
    assert_eq!(gh.downloads.load(Ordering::SeqCst), 1);
    assert_eq!(gh.leaked_tokens.load(Ordering::SeqCst), 0);
    for job in [556, 557, 558] {
        let (status, _) = stack
            .api(&format!("/api/tests/octo-org/octo-repo/jobs/{job}"))
            .await;
        assert_eq!(status, 404, "job {job} has no report");
    }
    let pointers = read_topic(&stack.config, "tests.reports", |r| r.len() >= 2).await;
    let pointer: Value =
        serde_json::from_slice(pointers[0].payload.as_deref().expect("value")).expect("json");
    assert_eq!(pointer["run_id"], 289782451);
    assert_eq!(pointer["run_attempt"], 1);
    assert_eq!(pointer["source"], "artifact");

    // The same run's completion delivered again: the run is marked fetched, GitHub is not asked.
    let mut again = run.clone();
    again.delivery_id = "redelivered-run".into();
    stack.post_all([&again]).await;
    caught_up(&stack.config).await;
    assert_eq!(gh.downloads.load(Ordering::SeqCst), 1, "no second download");
    stack.stop().await;
    let _ = std::fs::remove_dir_all(store);
}
