//! The gateway on the real broker: what it appends, and what it refuses without appending.

use futures::StreamExt;
use hudstream_e2e::{all_fixtures, fixture, test_config, Stack};
use hudstream_ingest::signature::sign_sha256;
use hudstream_runtime::Secret;
use hudstream_schemas::headers as h;
use hudstream_schemas::topics::GITHUB_WORKFLOW_JOB;

fn has_delivery(records: &[hudstream_runtime::worker::InRecord], id: &str) -> bool {
    records
        .iter()
        .any(|r| r.header_str(h::GITHUB_DELIVERY) == Some(id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_gets_401_with_a_json_error_and_appends_nothing() {
    let stack = Stack::start().await;
    let d = fixture("workflow_job/completed.success.with-organization.payload.json");

    let wrong = sign_sha256(&Secret::new("not the secret"), &d.body);
    let r = stack
        .post_raw(
            &d.event,
            "bad-signature",
            "application/json",
            d.body.clone(),
            Some(wrong),
        )
        .await;
    assert_eq!(r.status().as_u16(), 401);
    let body: serde_json::Value = r.json().await.expect("json error");
    assert_eq!(body["code"], "bad_signature");
    assert!(body["error"]
        .as_str()
        .expect("text")
        .contains("does not match"));

    let r = stack
        .post_raw(
            &d.event,
            "no-signature",
            "application/json",
            d.body.clone(),
            None,
        )
        .await;
    assert_eq!(r.status().as_u16(), 401);

    // A body changed after signing.
    let mut tampered = d.body.clone();
    tampered.extend_from_slice(b" ");
    let r = stack
        .post_raw(
            &d.event,
            "tampered",
            "application/json",
            tampered,
            Some(sign_sha256(stack.secret(), &d.body)),
        )
        .await;
    assert_eq!(r.status().as_u16(), 401);

    // Then a good one; everything before it in the partition has been read once it shows up.
    let r = stack.post(&d).await;
    assert_eq!(r.status().as_u16(), 202);
    let answer: serde_json::Value = r.json().await.expect("json");
    assert_eq!(answer["delivery_id"], d.delivery_id);
    assert_eq!(answer["topic"], GITHUB_WORKFLOW_JOB);
    let good = d.delivery_id.clone();
    let records = stack
        .read_topic(GITHUB_WORKFLOW_JOB, move |rs| has_delivery(rs, &good))
        .await;
    assert_eq!(records.len(), 1, "only the good delivery was appended");
    for refused in ["bad-signature", "no-signature", "tampered"] {
        assert!(!has_delivery(&records, refused));
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_the_body_byte_for_byte_with_the_delivery_headers_and_job_key() {
    let stack = Stack::start().await;
    let d = fixture("workflow_job/in_progress.payload.json");
    assert_eq!(stack.post(&d).await.status().as_u16(), 202);
    let id = d.delivery_id.clone();
    let records = stack
        .read_topic(GITHUB_WORKFLOW_JOB, move |rs| has_delivery(rs, &id))
        .await;
    let r = &records[0];
    assert_eq!(
        r.payload.as_deref(),
        Some(d.body.as_slice()),
        "the raw body is stored unchanged"
    );
    assert_eq!(
        r.key.as_deref(),
        Some(&b"Codertocat/Hello-World/289782451"[..])
    );
    assert_eq!(r.header_str(h::GITHUB_EVENT), Some("workflow_job"));
    assert_eq!(r.header_str(h::GITHUB_ACTION), Some("in_progress"));
    assert!(r.header_str(h::RECEIVED_AT).is_some());
    assert!(r
        .header_str(h::GATEWAY_VERSION)
        .expect("version")
        .starts_with("hudstream/"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_a_precise_4xx() {
    let stack = Stack::start().await;
    let body = b"{\"action\":\"queued\"".to_vec();
    let sig = sign_sha256(stack.secret(), &body);
    let r = stack
        .post_raw("workflow_job", "d1", "application/json", body, Some(sig))
        .await;
    assert_eq!(r.status().as_u16(), 400);
    let e: serde_json::Value = r.json().await.expect("json");
    assert_eq!(e["code"], "invalid_json");

    let body = b"[1,2]".to_vec();
    let sig = sign_sha256(stack.secret(), &body);
    let r = stack
        .post_raw("workflow_job", "d2", "application/json", body, Some(sig))
        .await;
    assert_eq!(r.status().as_u16(), 400);

    let body = b"{}".to_vec();
    let sig = sign_sha256(stack.secret(), &body);
    let r = stack
        .post_raw("ping", "d3", "text/plain", body, Some(sig))
        .await;
    assert_eq!(r.status().as_u16(), 415);

    let r = stack
        .http
        .post(format!("{}/github/webhook", stack.gateway_url))
        .header("x-github-delivery", "d4")
        .body("{}")
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status().as_u16(), 400);
    let e: serde_json::Value = r.json().await.expect("json");
    assert_eq!(e["error"], "missing X-GitHub-Event header");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_encoded_delivery_is_verified_over_the_raw_body_and_appended_as_json() {
    let stack = Stack::start().await;
    let d = fixture("workflow_job/queued.payload.json");
    let form: String = form_urlencoded_body(&d.body);
    let sig = sign_sha256(stack.secret(), form.as_bytes());
    let r = stack
        .post_raw(
            "workflow_job",
            "form-1",
            "application/x-www-form-urlencoded",
            form.into_bytes(),
            Some(sig),
        )
        .await;
    assert_eq!(
        r.status().as_u16(),
        202,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let records = stack
        .read_topic(GITHUB_WORKFLOW_JOB, |rs| has_delivery(rs, "form-1"))
        .await;
    assert_eq!(records[0].payload.as_deref(), Some(d.body.as_slice()));
    stack.stop().await;
}

fn form_urlencoded_body(json: &[u8]) -> String {
    let mut out = String::from("payload=");
    for b in json {
        match *b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(*b as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_real_fixture_is_accepted() {
    let stack = Stack::start().await;
    let fixtures = all_fixtures();
    for d in &fixtures {
        let r = stack.post(d).await;
        assert_eq!(
            r.status().as_u16(),
            202,
            "{}: {}",
            d.path.display(),
            r.text().await.unwrap_or_default()
        );
    }
    assert_eq!(fixtures.len(), 236);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_gets_413_with_a_json_error() {
    let mut config = test_config();
    config.gateway.max_body_bytes = 4096;
    let stack = Stack::start_with(config).await;
    let d = fixture("workflow_job/completed.success.with-organization.payload.json");
    assert!(d.body.len() > 4096);
    let r = stack.post(&d).await;
    assert_eq!(r.status().as_u16(), 413);
    let e: serde_json::Value = r.json().await.expect("json");
    assert_eq!(e["code"], "too_large");
    assert_eq!(e["error"], "body is larger than the 4096-byte limit");

    // Refused from its Content-Length while the client is still sending megabytes: the rest is
    // read and thrown away before the answer, so the client reads its 413 and not a reset
    // (which CI saw when the answer went out first).
    let mut big = d.body.clone();
    big.resize(3 << 20, b' ');
    for attempt in 0..10 {
        let r = stack
            .post_raw(
                "workflow_job",
                &format!("big-refused-{attempt}"),
                "application/json",
                big.clone(),
                Some(sign_sha256(stack.secret(), &big)),
            )
            .await;
        assert_eq!(r.status().as_u16(), 413, "attempt {attempt}");
        let e: serde_json::Value = r.json().await.expect("json");
        assert_eq!(e["code"], "too_large");
    }
    // The same without a Content-Length, sent slowly: the cap is found while reading, and the
    // answer is ready long before the client has finished.
    for attempt in 0..3 {
        let chunks = futures::stream::iter(0..40).then(|_| async {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            Ok::<_, std::io::Error>(vec![b' '; 16 << 10])
        });
        let r = stack
            .http
            .post(format!("{}/github/webhook", stack.gateway_url))
            .header("content-type", "application/json")
            .header("x-github-event", "workflow_job")
            .header("x-github-delivery", format!("slow-refused-{attempt}"))
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .expect("the gateway's answer, not a reset");
        assert_eq!(r.status().as_u16(), 413, "attempt {attempt}");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_of_several_megabytes_is_appended_whole() {
    // librdkafka's default record limit is 1 MB; GitHub sends up to 25 MiB (a push of many
    // commits). A real delivery padded with whitespace to 3 MiB, still the same JSON.
    let stack = Stack::start().await;
    let real = fixture("workflow_job/in_progress.payload.json");
    let mut body = real.body.clone();
    body.resize(3 << 20, b' ');
    let signature = hudstream_ingest::signature::sign_sha256(stack.secret(), &body);
    let r = stack
        .post_raw(
            "workflow_job",
            "big-1",
            "application/json",
            body.clone(),
            Some(signature),
        )
        .await;
    assert_eq!(r.status().as_u16(), 202, "{:?}", r.text().await);
    let records = stack
        .read_topic(GITHUB_WORKFLOW_JOB, |rs| has_delivery(rs, "big-1"))
        .await;
    let r = records
        .iter()
        .find(|r| r.header_str(h::GITHUB_DELIVERY) == Some("big-1"))
        .expect("appended");
    assert_eq!(r.payload.as_deref(), Some(body.as_slice()));
    stack.stop().await;
}
