//! A real job's webhooks, through the gateway, Kafka, the processor, the projection and
//! ClickHouse, to the read API — in order, shuffled, and with redeliveries.

use rand::seq::SliceRandom;
use serde_json::Value;

use hudstream_e2e::{count, fixture, wait_until, Stack};
use hudstream_ingest::fixtures::Delivery;

const JOB: &str = "/api/jobs/Codertocat/Hello-World/289782451";
// A different job, sent last: with one partition, once it is in the API everything sent
// before it has been projected too.
const MARKER: &str = "/api/jobs/lineville/elastic-machines-testing/12877621891";

fn lifecycle() -> Vec<Delivery> {
    [
        "workflow_job/queued.payload.json",
        "workflow_job/in_progress.payload.json",
        "workflow_job/completed.success.with-organization.payload.json",
    ]
    .iter()
    .map(|p| fixture(p))
    .collect()
}

async fn deliver_and_read(order: &[Delivery]) -> Value {
    let stack = Stack::start().await;
    for d in order {
        let response = stack.post(d).await;
        assert_eq!(
            response.status().as_u16(),
            202,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }
    stack
        .post(&fixture("workflow_job/waiting.payload.json"))
        .await;
    stack.wait_for(MARKER, |_| true).await;
    let (status, mut job) = stack.api(JOB).await;
    assert_eq!(status, 200, "{job}");
    stack.stop().await;
    // When the webhooks arrived is not the job's state: each stack received them at its time.
    if let Some(o) = job.as_object_mut() {
        o.remove("replication");
    }
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_shows_the_completed_job_whatever_the_delivery_order() {
    let in_order = lifecycle();
    let mut shuffled = lifecycle();
    shuffled.shuffle(&mut rand::thread_rng());
    // GitHub redelivers too: the completed event twice, an old state late.
    let mut with_redeliveries = vec![
        in_order[2].clone(),
        in_order[0].clone(),
        in_order[2].clone(),
        in_order[1].clone(),
        in_order[0].clone(),
    ];
    with_redeliveries.shuffle(&mut rand::thread_rng());
    let reversed: Vec<Delivery> = in_order.iter().rev().cloned().collect();

    let (a, b, c, d) = tokio::join!(
        deliver_and_read(&in_order),
        deliver_and_read(&shuffled),
        deliver_and_read(&reversed),
        deliver_and_read(&with_redeliveries)
    );
    assert_eq!(a, b, "shuffled order gave a different job");
    assert_eq!(a, c, "reversed order gave a different job");
    assert_eq!(a, d, "redeliveries gave a different job");

    assert_eq!(a["repository"], "Codertocat/Hello-World");
    assert_eq!(a["id"], 289782451);
    assert_eq!(a["run_id"], 2202229078i64);
    assert_eq!(a["name"], "linters");
    assert_eq!(a["workflow_name"], "CodeQL");
    assert_eq!(a["status"], "completed");
    assert_eq!(a["conclusion"], "success");
    assert_eq!(a["created_at"], "2021-08-05T10:33:58Z");
    assert_eq!(a["started_at"], "2021-08-05T10:34:58Z");
    assert_eq!(a["completed_at"], "2021-08-05T10:38:16Z");
    assert_eq!(a["queue_time_s"], 60.0);
    assert_eq!(a["duration_s"], 198.0);
    assert_eq!(a["labels"], serde_json::json!(["ubuntu-latest"]));
    assert_eq!(
        a["runner"],
        serde_json::json!({"id": 5, "name": "GitHub Actions 5", "group_id": 2, "group_name": "GitHub Actions"})
    );
    let steps = a["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 8);
    assert_eq!(
        steps[0],
        serde_json::json!({"number": 1, "name": "Set up job", "status": "completed", "conclusion": "success", "started_at": "2021-08-05T10:26:08Z", "completed_at": "2021-08-05T10:26:11Z"})
    );
    assert_eq!(steps[7]["name"], "Complete job");
    assert_eq!(
        a["html_url"],
        "https://github.com/octo-org/octo-repo/runs/1291536064"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_shows_its_progress_and_nulls_for_what_has_not_happened() {
    let stack = Stack::start().await;
    stack
        .post(&fixture("workflow_job/in_progress.payload.json"))
        .await;
    let job = stack.wait_for(JOB, |j| j["status"] == "in_progress").await;
    assert_eq!(job["conclusion"], Value::Null);
    assert_eq!(job["completed_at"], Value::Null);
    assert_eq!(job["duration_s"], Value::Null);
    assert_eq!(job["queue_time_s"], 0.0);
    stack
        .post(&fixture(
            "workflow_job/completed.success.with-organization.payload.json",
        ))
        .await;
    stack.wait_for(JOB, |j| j["status"] == "completed").await;
    stack.stop().await;
}

/// The job page reads the job's document from `job_page`; where that table cannot answer — the
/// job not in it yet (its projection catching up after an upgrade) or a document that does not
/// read as the job's row — the job is read from its columns in `workflow_job_by_id`, the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_page_document_that_does_not_read_is_answered_from_the_jobs_columns() {
    let stack = Stack::start().await;
    stack
        .post(&fixture(
            "workflow_job/completed.success.with-organization.payload.json",
        ))
        .await;
    let mut from_document = stack.wait_for(JOB, |j| j["status"] == "completed").await;
    let clickhouse = stack.clickhouse();
    wait_until("the job's columns", 60, || {
        let clickhouse = clickhouse.clone();
        async move {
            count(
                &clickhouse,
                "SELECT count() AS n FROM {db}.workflow_job_by_id WHERE id = 289782451",
            )
            .await
                > 0
        }
    })
    .await;
    // A newer version whose document is not a job's row.
    clickhouse
        .execute(&format!(
            "INSERT INTO {}.{} (repository_full_name, id, version, document) VALUES ('Codertocat/Hello-World', 289782451, 18446744073709551615, '{{\"not\": \"a job\"}}')",
            clickhouse.database(),
            clickhouse.insert_target("job_page")
        ))
        .await
        .expect("an unreadable document");
    let (status, mut from_columns) = stack.api(JOB).await;
    assert_eq!(status, 200, "{from_columns}");
    stack.stop().await;
    for job in [&mut from_document, &mut from_columns] {
        if let Some(o) = job.as_object_mut() {
            o.remove("replication");
        }
    }
    assert_eq!(from_columns, from_document);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_bad_requests_and_unknown_jobs_with_json_errors() {
    let stack = Stack::start().await;
    let (status, body) = stack
        .api("/api/jobs/Codertocat/Hello-World/not-a-number")
        .await;
    assert_eq!(status, 400);
    assert!(body["error"]
        .as_str()
        .expect("error text")
        .contains("not a positive integer"));
    let (status, body) = stack.api("/api/jobs/Codertocat/Hello-World/1").await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
    let (status, _) = stack.api("/api/jobs/bad%20owner/x/1").await;
    assert_eq!(status, 400);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stage_reports_its_numbers_on_metrics() {
    let stack = Stack::start().await;
    stack
        .post(&fixture("workflow_job/queued.payload.json"))
        .await;
    stack.wait_for(JOB, |j| j["status"] == "queued").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = stack
            .http
            .get(format!("{}/metrics", stack.gateway_url))
            .send()
            .await
            .expect("answer")
            .text()
            .await
            .expect("text");
        let wanted = [
            "hudstream_gateway_requests_total",
            "hudstream_gateway_append_seconds",
            "hudstream_records_consumed_total{stage=\"process.workflow_job\"}",
            "hudstream_projection_rows_written_total{table=\"workflow_job\"}",
            "hudstream_consumer_lag{stage=\"process.workflow_job\"",
            "hudstream_consumer_committed_offset{stage=\"project.workflow_job\"",
        ];
        if wanted.iter().all(|w| text.contains(w)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "missing metrics: {:?}",
            wanted
                .iter()
                .filter(|w| !text.contains(*w))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    stack.stop().await;
}
