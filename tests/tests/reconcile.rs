//! The reconciler on the real broker and ClickHouse, with a local stand-in for GitHub's REST
//! API: a job whose `completed` webhooks were lost ends completed in the read API after one
//! pass, through the raw topic and the normal pipeline, and a second pass appends nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use hudstream_e2e::{all_fixtures, fixture, test_config, Stack};
use hudstream_runtime::kafka::Appender;
use hudstream_schemas::headers as h;

/// The real job that has queued, in_progress and completed deliveries among the fixtures.
const COMPLETED: &str = "workflow_job/completed.success.with-organization.payload.json";
const COMPLETED_FAILURE: &str = "workflow_job/completed.failure.with-organization.payload.json";

/// GitHub's REST API as far as the reconciler asks it: the jobs it knows, by id; everything
/// else is a 404 (a job or run GitHub has forgotten).
struct GitHubStandIn {
    jobs: BTreeMap<i64, Value>,
    asked: Mutex<Vec<String>>,
}

async fn job(
    State(st): State<Arc<GitHubStandIn>>,
    Path((owner, repo, id)): Path<(String, String, i64)>,
) -> Response {
    st.asked
        .lock()
        .expect("lock")
        .push(format!("{owner}/{repo} job {id}"));
    match st.jobs.get(&id) {
        Some(job) => ([("x-ratelimit-remaining", "4999")], axum::Json(job.clone())).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "Not Found"})),
        )
            .into_response(),
    }
}

async fn not_found(State(st): State<Arc<GitHubStandIn>>, uri: axum::http::Uri) -> Response {
    st.asked.lock().expect("lock").push(uri.path().to_string());
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"message": "Not Found"})),
    )
        .into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_completed_webhook_was_lost_ends_completed_after_one_pass() {
    // GitHub knows the job as completed: the real completed delivery's job object.
    let completed: Value = serde_json::from_slice(&fixture(COMPLETED).body).expect("json");
    let job_id = completed["workflow_job"]["id"].as_i64().expect("id");
    let repository = completed["repository"]["full_name"]
        .as_str()
        .expect("repository")
        .to_string();
    let stand = Arc::new(GitHubStandIn {
        jobs: [(job_id, completed["workflow_job"].clone())].into(),
        asked: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/repos/{owner}/{repo}/actions/jobs/{id}", get(job))
        .fallback(not_found)
        .with_state(stand.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let github_url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut config = test_config();
    config.logs.github_api_url = github_url;
    config.logs.github_token = hudstream_runtime::Secret::new("reconcile-test-token");
    config.logs.fetch_attempts = 1;
    // The fixtures are years old: look back far enough to see them.
    config.reconcile.stale_after_ms = 60_000;
    config.reconcile.lookback_ms = 100 * 365 * 24 * 3600 * 1000;
    let stack = Stack::start_with(config).await;

    // Every real delivery but the job's two `completed` ones: the HUD is left with the job
    // in progress.
    let lost_completed = |d: &&hudstream_ingest::fixtures::Delivery| {
        d.path.ends_with(COMPLETED) || d.path.ends_with(COMPLETED_FAILURE)
    };
    stack
        .post_all(all_fixtures().iter().filter(|d| !lost_completed(d)))
        .await;
    let path = format!("/api/jobs/{repository}/{job_id}");
    stack
        .wait_for(&path, |j| j["status"] == "in_progress")
        .await;

    // One pass: the reconciler asks GitHub and appends the webhook GitHub never delivered.
    let reconciler =
        hudstream::reconciler(&stack.config, tokio_util::sync::CancellationToken::new())
            .expect("reconciler");
    let appender = Appender::new(&stack.config.kafka).expect("appender");
    let clickhouse = stack.clickhouse();
    let (report, records) = reconciler
        .pass(&clickhouse, Some(&appender))
        .await
        .expect("a pass");
    assert!(
        stand
            .asked
            .lock()
            .expect("lock")
            .contains(&format!("{repository} job {job_id}")),
        "{report}"
    );
    assert_eq!(report.appended_total(), 1, "{report}");
    assert_eq!(records[0].topic, "github.workflow_job");
    assert!(
        report.gone > 0,
        "jobs and runs GitHub does not know are left alone: {report}"
    );

    // The normal pipeline repairs the table; the API shows the job completed, as GitHub has it.
    let job = stack.wait_for(&path, |j| j["status"] == "completed").await;
    assert_eq!(job["conclusion"], completed["workflow_job"]["conclusion"]);

    // The record in the raw topic says where it came from.
    let raw = stack
        .read_topic("github.workflow_job", move |rs| {
            rs.iter()
                .any(|r| r.header_str(h::ORIGIN) == Some("reconciler"))
        })
        .await;
    let synthetic: Vec<_> = raw
        .iter()
        .filter(|r| r.header_str(h::ORIGIN) == Some("reconciler"))
        .collect();
    assert_eq!(synthetic.len(), 1);
    assert_eq!(synthetic[0].header_str(h::GITHUB_ACTION), Some("completed"));
    assert!(synthetic[0]
        .header_str(h::GITHUB_DELIVERY)
        .is_some_and(|d| d.starts_with("reconciler-")));

    // A second pass asks again about what is still stale, and appends nothing.
    let (second, records) = reconciler
        .pass(&clickhouse, Some(&appender))
        .await
        .expect("a second pass");
    assert_eq!(second.appended_total(), 0, "{second}");
    assert!(records.is_empty());
    assert!(
        !second.candidates.is_empty(),
        "the jobs GitHub does not know are still candidates: {second}"
    );
    stack.stop().await;
}
