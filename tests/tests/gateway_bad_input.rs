//! Every kind of bad request gets a precise status and a JSON error, and appends nothing.

use hudstream_e2e::{fixture, raw_http, test_config, RawThen, Stack};
use hudstream_ingest::signature::sign_sha256;
use hudstream_runtime::Secret;
use hudstream_schemas::headers as h;
use hudstream_schemas::topics::{GITHUB_WORKFLOW_JOB, OOT_RESULTS};
use serde_json::{json, Value};

async fn json_error(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.expect("a JSON error body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_bad_requests_get_precise_answers_and_append_nothing() {
    let mut config = test_config();
    config.gateway.max_body_bytes = 64 * 1024;
    config.gateway.body_read_timeout_ms = 700;
    let stack = Stack::start_with(config).await;
    let d = fixture("workflow_job/queued.payload.json");
    let sig = |body: &[u8]| Some(sign_sha256(stack.secret(), body));

    // (status, code, request)
    let wrong_secret = sign_sha256(&Secret::new("an unknown secret"), &d.body);
    let cases: Vec<(u16, &str, reqwest::Response)> = vec![
        (
            401,
            "bad_signature",
            stack
                .post_raw(
                    "workflow_job",
                    "bad-1",
                    "application/json",
                    d.body.clone(),
                    Some(wrong_secret),
                )
                .await,
        ),
        (
            401,
            "bad_signature",
            stack
                .post_raw(
                    "workflow_job",
                    "bad-2",
                    "application/json",
                    d.body.clone(),
                    None,
                )
                .await,
        ),
        (
            401,
            "bad_signature",
            stack
                .post_raw(
                    "workflow_job",
                    "bad-3",
                    "application/json",
                    d.body.clone(),
                    Some("sha256=123".into()),
                )
                .await,
        ),
        (
            415,
            "unsupported_content_type",
            stack
                .post_raw(
                    "workflow_job",
                    "bad-4",
                    "text/xml",
                    d.body.clone(),
                    sig(&d.body),
                )
                .await,
        ),
        (
            400,
            "missing_form_payload",
            stack
                .post_raw(
                    "workflow_job",
                    "bad-5",
                    "application/x-www-form-urlencoded",
                    b"other=1".to_vec(),
                    sig(b"other=1"),
                )
                .await,
        ),
        (
            400,
            "invalid_json",
            stack
                .post_raw(
                    "workflow_job",
                    "bad-6",
                    "application/json",
                    b"{\"a\":".to_vec(),
                    sig(b"{\"a\":"),
                )
                .await,
        ),
        (
            400,
            "empty_body",
            stack
                .post_raw(
                    "workflow_job",
                    "bad-7",
                    "application/json",
                    Vec::new(),
                    sig(b""),
                )
                .await,
        ),
        (
            400,
            "not_an_object",
            stack
                .post_raw(
                    "workflow_job",
                    "bad-8",
                    "application/json",
                    b"\"x\"".to_vec(),
                    sig(b"\"x\""),
                )
                .await,
        ),
        (
            413,
            "too_large",
            stack
                .post_raw(
                    "workflow_job",
                    "bad-9",
                    "application/json",
                    vec![b' '; 65 * 1024],
                    sig(&vec![b' '; 65 * 1024]),
                )
                .await,
        ),
    ];
    for (want_status, want_code, response) in cases {
        let (status, body) = json_error(response).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (want_status, Some(want_code)),
            "{body}"
        );
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    for (missing, header) in [
        ("x-github-event", "X-GitHub-Event"),
        ("x-github-delivery", "X-GitHub-Delivery"),
    ] {
        let mut request = stack
            .http
            .post(format!("{}/github/webhook", stack.gateway_url))
            .header("content-type", "application/json");
        for (name, value) in [
            ("x-github-event", "workflow_job"),
            ("x-github-delivery", "bad-10"),
        ] {
            if name != missing {
                request = request.header(name, value);
            }
        }
        let (status, body) =
            json_error(request.body(d.body.clone()).send().await.expect("answer")).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], format!("missing {header} header"));
    }
    let (status, body) = json_error(
        stack
            .http
            .get(format!("{}/github/webhook", stack.gateway_url))
            .send()
            .await
            .expect("answer"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (405, Some("Method not allowed"))
    );

    let address = stack.gateway_url.trim_start_matches("http://").to_string();
    let head = |len: usize| {
        format!(
            "POST /github/webhook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-github-event: workflow_job\r\nx-github-delivery: raw\r\nx-hub-signature-256: sha256={}\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n",
            "0".repeat(64)
        )
    };
    // Announced over the cap: refused from the header, without waiting for the body.
    let started = std::time::Instant::now();
    let (status, body) = raw_http(&address, &head(10_000_000), b"{", RawThen::Stall).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(650),
        "answered before the read timeout"
    );
    // Truncated: the client hangs up mid-body.
    let (status, body) = raw_http(&address, &head(1000), b"{\"action\":", RawThen::HangUp).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unreadable_body"), "{body}");
    // Slow: the body stops arriving.
    let (status, body) = raw_http(&address, &head(1000), b"{\"action\":", RawThen::Stall).await;
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("slow_body"), "{body}");

    // None of it was appended: only the good delivery sent last is in the topic.
    assert_eq!(stack.post(&d).await.status().as_u16(), 202);
    let good = d.delivery_id.clone();
    let records = stack
        .read_topic(GITHUB_WORKFLOW_JOB, move |rs| {
            rs.iter()
                .any(|r| r.header_str(h::GITHUB_DELIVERY) == Some(good.as_str()))
        })
        .await;
    assert_eq!(records.len(), 1, "only the good delivery was appended");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_in_flight_cap_requests_get_503_with_retry_after() {
    let mut config = test_config();
    config.gateway.max_in_flight = 1;
    config.gateway.body_read_timeout_ms = 3000;
    let stack = Stack::start_with(config).await;
    let address = stack.gateway_url.trim_start_matches("http://").to_string();
    // One request holds the only slot by sending its body slowly.
    let holder = tokio::spawn(async move {
        raw_http(
            &address,
            "POST /github/webhook HTTP/1.1\r\nhost: x\r\nx-github-event: ping\r\nx-github-delivery: slow\r\ncontent-length: 100\r\n\r\n",
            b"{",
            RawThen::Stall,
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let d = fixture("ping/payload.json");
    let response = stack.post(&d).await;
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let (_, body) = json_error(response).await;
    assert_eq!(body["code"], "overloaded");
    assert_eq!(holder.await.expect("holder").0, 408);
    // The slot is free again.
    assert_eq!(stack.post(&d).await.status().as_u16(), 202);
    let records = stack.read_topic("github.ping", |rs| !rs.is_empty()).await;
    assert_eq!(records.len(), 1);
    stack.stop().await;
}

fn oot_result(job_name: Value, check_run_id: Value) -> Value {
    json!({
        "trusted": {"verified_repo": "intel/torch-xpu-ops", "downstream_repo_level": "L2", "ci_metrics": {"queue_time": 12.5, "execution_time": null}},
        "untrusted": {"callback_payload": {
            "event_type": "pull_request",
            "delivery_id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "payload": {"pull_request": {"number": 12345, "head": {"sha": "abc"}}, "repository": {"full_name": "pytorch/pytorch"}},
            "workflow": {"schema_version": "1", "status": "in_progress", "name": "xpu-ci", "url": "https://github.com/intel/torch-xpu-ops/actions/runs/1",
                         "job_name": job_name, "check_run_id": check_run_id, "run_id": "1", "run_attempt": 1, "started_at": "2026-05-01T10:00:00Z"}
        }}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oot_results_follow_torchcis_contract() {
    let stack = Stack::start().await;
    let token = stack.config.gateway.oot_relay_tokens[0]
        .expose()
        .to_string();
    let post = |path: &'static str, header: &'static str, token: String, body: Vec<u8>| {
        let request = stack
            .http
            .post(format!("{}{path}", stack.gateway_url))
            .header("content-type", "application/json")
            .body(body);
        async move { json_error(request.header(header, token).send().await.expect("answer")).await }
    };
    let good = serde_json::to_vec(&oot_result(json!("test (1, 2)"), json!(777))).expect("json");

    // Each refusal: (token, body, status, the error torchci gives or, for the 400s where
    // torchci answers 500, ours).
    let json_of = |v: Value| serde_json::to_vec(&v).expect("json");
    let refusals: [(String, Vec<u8>, u16, Option<&str>); 6] = [
        ("wrong".into(), good.clone(), 401, Some("Unauthorized")),
        (
            token.clone(),
            vec![b' '; 2 * 1024 * 1024 + 1],
            413,
            Some("Payload exceeds 2MB limit"),
        ),
        (
            token.clone(),
            json_of(oot_result(json!(""), json!(1))),
            400,
            Some("Missing required field: workflow.job_name"),
        ),
        (
            token.clone(),
            json_of(oot_result(json!("j"), Value::Null)),
            400,
            Some("Missing required field: workflow.check_run_id"),
        ),
        // A broken body is a 400 with the reason, not torchci's 500.
        (
            token.clone(),
            b"{\"trusted\": {}}".to_vec(),
            400,
            Some("Malformed OOT result: trusted.verified_repo is missing"),
        ),
        (token.clone(), b"not json".to_vec(), 400, None),
    ];
    for (token, body, want_status, want_error) in refusals {
        let (status, answer) = post("/oot/results", "x-oot-relay-token", token, body).await;
        assert_eq!(status, want_status, "{answer}");
        if let Some(error) = want_error {
            assert_eq!(answer["error"].as_str(), Some(error));
        }
    }

    // Accepted on both paths and with both headers.
    let (status, body) = post(
        "/oot/results",
        "x-oot-relay-token",
        token.clone(),
        good.clone(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(body["status"], "in_progress");
    assert_eq!(
        body["dynamoKey"],
        "intel/torch-xpu-ops/72d3162e-cc78-11e3-81ab-4c9367dc0958/xpu-ci/test (1, 2)/777"
    );
    let (status, _) = post(
        "/api/oot/results",
        "x-hud-internal-bot",
        token.clone(),
        good.clone(),
    )
    .await;
    assert_eq!(status, 200);

    let records = stack.read_topic(OOT_RESULTS, |rs| rs.len() >= 2).await;
    assert_eq!(records.len(), 2, "refused results were not appended");
    for r in &records {
        assert_eq!(r.payload.as_deref(), Some(good.as_slice()));
        assert_eq!(
            r.key.as_deref(),
            Some(
                &b"intel/torch-xpu-ops/72d3162e-cc78-11e3-81ab-4c9367dc0958/xpu-ci/test (1, 2)/777"
                    [..]
            )
        );
        assert_eq!(r.header_str(h::OOT_STATUS), Some("in_progress"));
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_relay_token_the_oot_endpoint_says_it_is_misconfigured() {
    let mut config = test_config();
    config.gateway.oot_relay_tokens.clear();
    let stack = Stack::start_with(config).await;
    let r = stack
        .http
        .post(format!("{}/oot/results", stack.gateway_url))
        .body("{}")
        .send()
        .await
        .expect("answer");
    let (status, body) = json_error(r).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (500, Some("Server misconfigured"))
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circleci_webhooks_are_verified_and_appended() {
    let stack = Stack::start().await;
    let secret = stack.config.gateway.circleci_secrets[0].clone();
    let body = serde_json::to_vec(&json!({
        "type": "workflow-completed", "id": "3888f21b-eaa7-38e3-8f3d-75a63bba8895", "happened_at": "2021-09-01T22:49:34.317Z",
        "project": {"id": "84996744-a854-4f5e-aea3-04e2851dc1d2", "name": "webhook-service", "slug": "circleci/9YytKzouJxzu4TjCRFqAoD/2ZcnZ4Ct6sg3L14E5xgEPs"},
        "workflow": {"id": "fda08377-fe7e-46b1-8992-3a7aaecac9c3", "name": "build-test-deploy", "status": "success"}
    }))
    .expect("json");
    let send = |signature: String| {
        stack
            .http
            .post(format!("{}/circleci/webhook", stack.gateway_url))
            .header("content-type", "application/json")
            .header("circleci-signature", signature)
            .body(body.clone())
            .send()
    };
    let signed = sign_sha256(&secret, &body).replace("sha256=", "v1=");
    let (status, e) = json_error(
        send(sign_sha256(&Secret::new("x"), &body).replace("sha256=", "v1="))
            .await
            .expect("answer"),
    )
    .await;
    assert_eq!((status, e["code"].as_str()), (401, Some("bad_signature")));
    let r = send(signed).await.expect("answer");
    assert_eq!(r.status().as_u16(), 202);
    let records = stack
        .read_topic(hudstream_schemas::topics::CIRCLECI_WEBHOOK, |rs| {
            !rs.is_empty()
        })
        .await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].payload.as_deref(), Some(body.as_slice()));
    assert_eq!(
        records[0].key.as_deref(),
        Some(&b"circleci/9YytKzouJxzu4TjCRFqAoD/2ZcnZ4Ct6sg3L14E5xgEPs/fda08377-fe7e-46b1-8992-3a7aaecac9c3"[..])
    );
    assert_eq!(
        records[0].header_str(h::CIRCLECI_EVENT),
        Some("workflow-completed")
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sha1_signatures_count_only_when_enabled() {
    let d = fixture("ping/payload.json");
    for enabled in [false, true] {
        let mut config = test_config();
        config.gateway.accept_sha1_signatures = enabled;
        let stack = Stack::start_with(config).await;
        let sha1 = {
            use hmac::{Hmac, Mac};
            let mut mac =
                <Hmac<sha1::Sha1> as Mac>::new_from_slice(stack.secret().expose().as_bytes())
                    .expect("key");
            mac.update(&d.body);
            format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
        };
        let r = stack
            .http
            .post(format!("{}/github/webhook", stack.gateway_url))
            .header("x-github-event", "ping")
            .header("x-github-delivery", "sha1")
            .header("x-hub-signature", sha1)
            .body(d.body.clone())
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status().as_u16(), if enabled { 202 } else { 401 });
        stack.stop().await;
    }
}
