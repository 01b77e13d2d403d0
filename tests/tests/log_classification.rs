//! Log classification end to end: a completed job's webhook → the log fetcher asks a local
//! GitHub stand-in for the log (rate-limited once, failing once, then redirected to blob
//! storage) → the gzip log store → the classifier with the real ruleset → the verdict in
//! ClickHouse → the job API, next to the job. Then redeliveries, a log GitHub no longer has,
//! uploads (whole and partial), and ruleset reloads, good and bad.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

use hudstream_classifier::fixture::{reference_dir, Fixture};
use hudstream_classifier::preprocess::Preprocessor;
use hudstream_classifier::{Ruleset, ENGINE_VERSION};
use hudstream_e2e::{count, fixture, test_config, wait_until, Stack};
use hudstream_runtime::{Config, Secret};
use hudstream_schemas::topics::HUD_JOB_CLASSIFICATION_V1;

const JOB: &str = "/api/jobs/Codertocat/Hello-World/289782451";
const JOB_ID: i64 = 289782451;
const TOKEN: &str = "gh-test-token";
const UPLOAD_TOKEN: &str = "upload-test-token";

/// The few GitHub endpoints the log fetcher uses, with scripted trouble.
#[derive(Default)]
struct GitHubStandIn {
    base: Mutex<String>,
    /// Blob storage is another host, as GitHub's redirect target is.
    blob_base: Mutex<String>,
    logs: Mutex<HashMap<i64, Vec<u8>>>,
    /// Answers given to the logs endpoint, in order, before the real one.
    trouble: Mutex<Vec<StatusCode>>,
    log_requests: AtomicUsize,
    blob_downloads: AtomicUsize,
    /// Requests that reached blob storage with the GitHub token: there must be none.
    leaked_tokens: AtomicUsize,
}

async fn job_logs(
    State(gh): State<Arc<GitHubStandIn>>,
    Path((_owner, _repo, job_id)): Path<(String, String, i64)>,
    headers: HeaderMap,
) -> Response {
    gh.log_requests.fetch_add(1, Ordering::SeqCst);
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        return (StatusCode::UNAUTHORIZED, r#"{"message":"Bad credentials"}"#).into_response();
    }
    let trouble = {
        let mut t = gh.trouble.lock().unwrap();
        (!t.is_empty()).then(|| t.remove(0))
    };
    match trouble {
        Some(StatusCode::TOO_MANY_REQUESTS) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "slow down",
            )
                .into_response()
        }
        Some(status) => return (status, "upstream trouble").into_response(),
        None => {}
    }
    if !gh.logs.lock().unwrap().contains_key(&job_id) {
        return (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#).into_response();
    }
    let location = format!(
        "{}/blob/{job_id}?sig=short-lived",
        gh.blob_base.lock().unwrap()
    );
    (StatusCode::FOUND, [("location", location)]).into_response()
}

async fn blob(
    State(gh): State<Arc<GitHubStandIn>>,
    Path(job_id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    // Blob storage must never see the GitHub token.
    if headers.contains_key("authorization") {
        gh.leaked_tokens.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::BAD_REQUEST, "token leaked to blob storage").into_response();
    }
    gh.blob_downloads.fetch_add(1, Ordering::SeqCst);
    match gh.logs.lock().unwrap().get(&job_id) {
        Some(log) => log.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start_github() -> Arc<GitHubStandIn> {
    let gh = Arc::new(GitHubStandIn::default());
    let api = Router::new()
        .route(
            "/repos/{owner}/{repo}/actions/jobs/{id}/logs",
            get(job_logs),
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
    gh
}

fn logs_config(gh: &GitHubStandIn, ruleset: std::path::PathBuf) -> (Config, std::path::PathBuf) {
    let mut config = test_config();
    let store = std::env::temp_dir().join(format!("hudstream-logs-{}", config.kafka.group_prefix));
    config.logs.enabled = true;
    config.logs.store = store.display().to_string();
    config.logs.ruleset = ruleset;
    config.logs.ruleset_reload_ms = 200;
    config.logs.github_api_url = gh.base.lock().unwrap().clone();
    config.logs.github_token = Secret::new(TOKEN);
    config.logs.upload_tokens = vec![Secret::new(UPLOAD_TOKEN)];
    config.logs.fetch_attempts = 5;
    (config, store)
}

/// Waits until the verdict topic holds `n` records: a barrier for "classified".
async fn verdicts(stack: &Stack, n: usize) {
    stack
        .read_topic(HUD_JOB_CLASSIFICATION_V1, move |r| r.len() >= n)
        .await;
}

const JOB_PATH: &str = "Codertocat/Hello-World/289782451";

async fn upload(stack: &Stack, query: &str, body: Vec<u8>, token: &str) -> (u16, Value) {
    stack.put_log(JOB_PATH, query, token, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_jobs_log_is_fetched_classified_shown_with_the_job_and_survives_redelivery() {
    let gh = start_github().await;
    let text =
        std::fs::read_to_string(reference_dir().join("fixtures/pytest_failures_section.txt"))
            .expect("fixture");
    let fixture_log = Fixture::parse(&text);
    let expected = fixture_log
        .expected
        .clone()
        .expect("the fixture has a verdict");
    gh.logs
        .lock()
        .unwrap()
        .insert(JOB_ID, fixture_log.log.clone().into_bytes());
    // GitHub rate-limits the first request and fails the second; the fetcher rides both out.
    *gh.trouble.lock().unwrap() = vec![StatusCode::TOO_MANY_REQUESTS, StatusCode::BAD_GATEWAY];
    let (config, store) = logs_config(&gh, reference_dir().join("ruleset.toml"));
    let stack = Stack::start_with(config).await;

    let completed = fixture("workflow_job/completed.failure.with-organization.payload.json");
    assert_eq!(stack.post(&completed).await.status().as_u16(), 202);
    let job = stack
        .wait_for(JOB, |j| !j["classification"].is_null())
        .await;
    let verdict = &job["classification"];
    assert_eq!(job["conclusion"], "failure");
    assert_eq!(verdict["outcome"], "matched", "{verdict}");
    let want_line = Preprocessor::new()
        .line(&expected.raw_line)
        .unwrap_or_default();
    assert_eq!(verdict["line"], want_line.as_ref());
    assert_eq!(verdict["line_number"], expected.line_number);
    assert_eq!(verdict["captures"], serde_json::json!(expected.captures));
    let ruleset = Ruleset::from_path(&reference_dir().join("ruleset.toml")).unwrap();
    assert_eq!(verdict["ruleset_hash"], ruleset.hash());
    assert_eq!(verdict["engine_version"], ENGINE_VERSION);
    assert_eq!(verdict["log_partial"], false);
    assert_eq!(verdict["log_bytes"], fixture_log.log.len());
    let location = verdict["log_location"]
        .as_str()
        .expect("location")
        .to_string();
    let stored = std::fs::read(store.join(&location)).expect("the log is in the store");
    assert_eq!(&stored[..2], &[0x1f, 0x8b], "gzip-compressed");
    assert_eq!(
        gh.log_requests.load(Ordering::SeqCst),
        3,
        "429, 502, then the log"
    );

    // Redeliveries: the completed event again and an older in-progress one, late.
    for path in [
        "workflow_job/in_progress.payload.json",
        "workflow_job/completed.failure.with-organization.payload.json",
    ] {
        assert_eq!(stack.post(&fixture(path)).await.status().as_u16(), 202);
    }
    verdicts(&stack, 2).await;
    let marker = fixture("workflow_job/waiting.payload.json");
    stack.post(&marker).await;
    stack
        .wait_for(
            "/api/jobs/lineville/elastic-machines-testing/12877621891",
            |_| true,
        )
        .await;
    let after = stack
        .wait_for(JOB, |j| {
            j["classification"]["version"].as_u64() > verdict["version"].as_u64()
        })
        .await;
    assert_eq!(after["status"], "completed");
    assert_eq!(after["classification"]["rule"], verdict["rule"]);
    assert_eq!(after["classification"]["line"], verdict["line"]);
    assert_eq!(after["classification"]["captures"], verdict["captures"]);
    assert_eq!(
        gh.blob_downloads.load(Ordering::SeqCst),
        1,
        "a stored log is not downloaded again"
    );
    assert_eq!(
        gh.leaked_tokens.load(Ordering::SeqCst),
        0,
        "token sent to blob storage"
    );
    stack.stop().await;
    let _ = std::fs::remove_dir_all(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_logs_uploads_ruleset_reloads_and_reclassification() {
    let gh = start_github().await;
    let rules_dir = std::env::temp_dir().join(format!("hudstream-rules-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&rules_dir).unwrap();
    let rules_path = rules_dir.join("ruleset.toml");
    std::fs::copy(reference_dir().join("ruleset.toml"), &rules_path).unwrap();
    let (mut config, store) = logs_config(&gh, rules_path.clone());
    config.logs.max_log_bytes = 4096;
    let stack = Stack::start_with(config).await;
    let clickhouse = stack.clickhouse();

    // GitHub has no log for the job: a final "log_gone" verdict, not endless retries.
    let completed = fixture("workflow_job/completed.failure.with-organization.payload.json");
    assert_eq!(stack.post(&completed).await.status().as_u16(), 202);
    let job = stack
        .wait_for(JOB, |j| !j["classification"].is_null())
        .await;
    assert_eq!(job["classification"]["outcome"], "log_gone");
    let first_hash = job["classification"]["ruleset_hash"].clone();

    // Bad uploads get a precise status and a JSON reason; nothing of them is stored.
    let refusals: [(&str, &str, Vec<u8>, &str, u16, &str); 5] = [
        (JOB_PATH, "", b"x".to_vec(), "wrong", 401, "unauthorized"),
        (
            "Codertocat/Hello-World/-3",
            "",
            b"x".to_vec(),
            UPLOAD_TOKEN,
            400,
            "bad_upload",
        ),
        (
            JOB_PATH,
            "?partial=maybe",
            b"x".to_vec(),
            UPLOAD_TOKEN,
            400,
            "bad_upload",
        ),
        (
            JOB_PATH,
            "?head_sha=abc",
            b"x".to_vec(),
            UPLOAD_TOKEN,
            400,
            "bad_upload",
        ),
        (
            JOB_PATH,
            "",
            vec![b'x'; 5000],
            UPLOAD_TOKEN,
            413,
            "too_large",
        ),
    ];
    for (job, query, body, token, status, code) in refusals {
        let (got, answer) = stack.put_log(job, query, token, body).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{job}{query}: {answer}"
        );
    }
    let response = stack
        .http
        .put(format!("{}/logs/{JOB_PATH}", stack.gateway_url))
        .bearer_auth(UPLOAD_TOKEN)
        .header("content-encoding", "gzip")
        .body(vec![0x1f, 0x8b])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);

    // A broken ruleset is reported and the old one stays in force.
    std::fs::write(
        &rules_path,
        "[[rule]]\nname = 'broken'\npattern = '(unclosed'\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A whole log with CRLF ends and bytes that are not UTF-8, matching no rule.
    let (status, body) = upload(
        &stack,
        "",
        b"all good\r\n\xff\xfe fine\r\n".to_vec(),
        UPLOAD_TOKEN,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    verdicts(&stack, 2).await;
    let job = stack
        .wait_for(JOB, |j| j["classification"]["outcome"] == "no_match")
        .await;
    assert_eq!(
        job["classification"]["ruleset_hash"], first_hash,
        "old rules kept"
    );
    assert_eq!(job["classification"]["log_partial"], false);
    // PUT is idempotent: the same bytes again (a retried upload) append nothing.
    let (status, body) = upload(
        &stack,
        "",
        b"all good\r\n\xff\xfe fine\r\n".to_vec(),
        UPLOAD_TOKEN,
    )
    .await;
    assert_eq!(
        (status, body["unchanged"].as_bool()),
        (200, Some(true)),
        "{body}"
    );

    // A partial (keep-going) log that matches does not displace the whole log's verdict.
    let (status, _) = upload(
        &stack,
        "?partial=true",
        b"##[error]The action 'x' has timed out after 5 minutes.\n".to_vec(),
        UPLOAD_TOKEN,
    )
    .await;
    assert_eq!(status, 201);
    verdicts(&stack, 3).await;
    wait_until("the partial verdict in ClickHouse", 60, || async {
        count(
            &clickhouse,
            "SELECT count() AS n FROM {db}.job_classification WHERE log_partial = 1 AND outcome = 'matched'",
        )
        .await
            == 1
    })
    .await;
    let (_, job) = stack.api(JOB).await;
    assert_eq!(job["classification"]["outcome"], "no_match", "{job}");
    assert_eq!(job["classification"]["log_partial"], false);

    // A new valid ruleset is picked up without a restart, and its verdict supersedes.
    std::fs::write(
        &rules_path,
        "[[rule]]\nname = 'all good'\npattern = '^all (good)'\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = upload(&stack, "", b"all good\n".to_vec(), UPLOAD_TOKEN).await;
    assert_eq!(status, 201);
    verdicts(&stack, 4).await;
    let job = stack
        .wait_for(JOB, |j| j["classification"]["outcome"] == "matched")
        .await;
    let verdict = job["classification"].clone();
    assert_eq!(verdict["rule"], "all good");
    assert_eq!(verdict["captures"], serde_json::json!(["good"]));
    assert_ne!(verdict["ruleset_hash"], first_hash);
    assert_eq!(verdict["log_partial"], false);

    // `hudstream reclassify` with another ruleset: a dry run appends nothing; the real run's
    // verdict supersedes the live one.
    let other_rules = rules_dir.join("other.toml");
    std::fs::write(
        &other_rules,
        "[[rule]]\nname = 'reclassified'\npattern = '^all (go)od'\n",
    )
    .unwrap();
    let args = |dry_run| hudstream::commands::reclassify::Args {
        jobs: vec![JOB_PATH.to_string()],
        since: None,
        until: None,
        ruleset: Some(other_rules.clone()),
        dry_run,
    };
    hudstream::commands::reclassify::run(&stack.config, args(true))
        .await
        .expect("dry run");
    hudstream::commands::reclassify::run(&stack.config, args(false))
        .await
        .expect("reclassify");
    let records = stack
        .read_topic(HUD_JOB_CLASSIFICATION_V1, |r| r.len() >= 5)
        .await;
    assert_eq!(records.len(), 5, "the dry run appended nothing");
    let job = stack
        .wait_for(JOB, |j| j["classification"]["rule"] == "reclassified")
        .await;
    let reclassified = &job["classification"];
    assert_eq!(reclassified["captures"], serde_json::json!(["go"]));
    assert!(reclassified["version"].as_u64() > verdict["version"].as_u64());
    assert_ne!(reclassified["ruleset_hash"], verdict["ruleset_hash"]);

    stack.stop().await;
    let _ = std::fs::remove_dir_all(store);
    let _ = std::fs::remove_dir_all(rules_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_refused_when_no_upload_token_is_configured() {
    let stack = Stack::start().await;
    let (status, answer) = stack
        .put_log(JOB_PATH, "", "anything", b"log".to_vec())
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (404, Some("disabled")),
        "{answer}"
    );
    stack.stop().await;
}

#[test]
fn start_up_fails_on_an_invalid_rule_naming_it() {
    let dir = std::env::temp_dir().join(format!("hudstream-badrules-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ruleset.toml");
    std::fs::write(
        &path,
        "[[rule]]\nname = 'fine'\npattern = 'x'\n[[rule]]\nname = 'GHA oops'\npattern = 'a{2,1}'\n",
    )
    .unwrap();
    let mut config = Config::default();
    config.logs.ruleset = path;
    let err = hudstream::open_ruleset(&config)
        .err()
        .expect("start-up fails");
    let text = format!("{err:#}");
    assert!(text.contains("rule #2 'GHA oops'"), "{text}");
    assert!(text.contains("logs.ruleset"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}
