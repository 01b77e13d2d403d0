//! PR triage and trunk health end to end (issue #17), on the real broker and ClickHouse, from
//! deliveries derived from the real fixtures, the real failing logs of the log-classifier
//! reference and a real test report:
//!
//! - Dr.CI: a failure also on the merge base → broken_trunk; a failure whose signature was seen
//!   on another branch → flaky with the evidence; a job that failed then passed on rerun →
//!   flaky; a failure nobody else has → new_failure; an UNSTABLE issue → unstable; a failure
//!   of disabled tests → flaky; a running job → pending; a run waiting for approval →
//!   awaiting_approval — through the API, the PR comment and the PR page in headless Chromium;
//! - similar failures and failure clusters for the flaky one;
//! - the Dr.CI poster against a GitHub stand-in: it creates its comment once, leaves it alone
//!   while no class changes (and after a restart), edits it when one does, and never touches
//!   another tool's comment that carries the same marker;
//! - trunk health on a small history whose figures are computed by hand here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, patch};
use serde_json::{json, Value};

use hudstream_classifier::fixture::{reference_dir, Fixture};
use hudstream_e2e::{check_page, derived, test_config, Stack};
use hudstream_ingest::fixtures::{disabled_test_issue, unstable_job_issue, Delivery};
use hudstream_runtime::Secret;

const REPO: &str = "Codertocat/Hello-World";
const TOKEN: &str = "triage-upload-token";
const PR: i64 = 77;
/// The merge base (main), the PR's head, and a commit of another branch.
const BASE: &str = "b0000000000000000000000000000000000000b1";
const HEAD: &str = "e0000000000000000000000000000000000000e1";
const OTHER: &str = "f0000000000000000000000000000000000000f1";
/// 2021-08-05T10:00:00Z, when main got BASE.
const T0: i64 = 1_628_157_600;

fn iso(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .expect("time")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn push(repo: &str, sha: &str, branch: &str, at: i64) -> Delivery {
    derived(
        "push/with-new-branch.payload.json",
        &format!("push-{repo}-{sha}"),
        |b| {
            b["ref"] = json!(format!("refs/heads/{branch}"));
            b["after"] = json!(sha);
            b["repository"]["full_name"] = json!(repo);
            b["repository"]["pushed_at"] = json!(at);
            for pointer in ["/head_commit", "/commits/0"] {
                if let Some(c) = b.pointer_mut(pointer) {
                    c["id"] = json!(sha);
                    c["timestamp"] = json!(iso(at));
                    c["message"] = json!(format!("Commit {}", &sha[..7]));
                }
            }
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn run(
    repo: &str,
    id: i64,
    sha: &str,
    branch: &str,
    name: &str,
    conclusion: &str,
    pr: Option<i64>,
    at: i64,
) -> Delivery {
    derived(
        "workflow_run/completed.with-pull-requests.payload.json",
        &format!("run-{repo}-{id}"),
        |b| {
            b["repository"]["full_name"] = json!(repo);
            let r = &mut b["workflow_run"];
            r["id"] = json!(id);
            r["head_sha"] = json!(sha);
            r["head_branch"] = json!(branch);
            r["name"] = json!(name);
            r["conclusion"] = json!(conclusion);
            r["created_at"] = json!(iso(at));
            r["updated_at"] = json!(iso(at + 60));
            r["run_started_at"] = json!(iso(at));
            match pr {
                Some(n) => {
                    r["pull_requests"][0]["number"] = json!(n);
                    r["pull_requests"][0]["head"]["sha"] = json!(sha);
                }
                None => r["pull_requests"] = json!([]),
            }
        },
    )
}

/// A job of `run` on `sha`: `conclusion` None means still running.
struct JobSpec<'a> {
    id: i64,
    run: i64,
    attempt: i64,
    sha: &'a str,
    branch: &'a str,
    workflow: &'a str,
    name: &'a str,
    conclusion: Option<&'a str>,
    created: i64,
    started: i64,
    completed: i64,
}

fn job(repo: &str, j: &JobSpec<'_>) -> Delivery {
    derived(
        "workflow_job/completed.failure.with-organization.payload.json",
        &format!("job-{repo}-{}", j.id),
        |b| {
            b["repository"]["full_name"] = json!(repo);
            let w = &mut b["workflow_job"];
            w["id"] = json!(j.id);
            w["run_id"] = json!(j.run);
            w["run_attempt"] = json!(j.attempt);
            w["head_sha"] = json!(j.sha);
            w["head_branch"] = json!(j.branch);
            w["workflow_name"] = json!(j.workflow);
            w["name"] = json!(j.name);
            w["labels"] = json!(["linux.2xlarge"]);
            w["created_at"] = json!(iso(j.created));
            w["started_at"] = json!(iso(j.started));
            w["html_url"] = json!(format!(
                "https://github.com/{repo}/actions/runs/{}/job/{}",
                j.run, j.id
            ));
            match j.conclusion {
                Some(c) => {
                    w["status"] = json!("completed");
                    w["conclusion"] = json!(c);
                    w["completed_at"] = json!(iso(j.completed));
                }
                None => {
                    w["status"] = json!("in_progress");
                    w["conclusion"] = Value::Null;
                    w["completed_at"] = Value::Null;
                }
            }
        },
    )
    .with_action(if j.conclusion.is_some() {
        "completed"
    } else {
        "in_progress"
    })
}

trait WithAction {
    fn with_action(self, action: &str) -> Self;
}

impl WithAction for Delivery {
    fn with_action(mut self, action: &str) -> Self {
        let mut body: Value = serde_json::from_slice(&self.body).expect("json");
        body["action"] = json!(action);
        self.body = serde_json::to_vec(&body).expect("json");
        self.action = Some(action.into());
        self
    }
}

fn pull_request(number: i64, head: &str, base_sha: &str, at: i64) -> Delivery {
    derived(
        "pull_request/opened.payload.json",
        &format!("pr-{number}"),
        |b| {
            b["number"] = json!(number);
            b["repository"]["full_name"] = json!(REPO);
            let p = &mut b["pull_request"];
            p["number"] = json!(number);
            p["title"] = json!("Make the optimizer faster");
            p["head"]["sha"] = json!(head);
            p["base"]["ref"] = json!("main");
            p["base"]["sha"] = json!(base_sha);
            p["created_at"] = json!(iso(at));
            p["updated_at"] = json!(iso(at));
            p["html_url"] = json!(format!("https://github.com/{REPO}/pull/{number}"));
        },
    )
}

/// The log of a log-classifier reference fixture, as a job would upload it.
fn real_log(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(reference_dir().join("fixtures").join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    Fixture::parse(&text).log.into_bytes()
}

/// The PR scenario: (job id, expected class, a piece of the expected reason).
const EXPECTED: &[(i64, &str, &str)] = &[
    (2001, "broken_trunk", "same failure on merge base b000000"),
    (2002, "flaky", "other branch (feature) in the last 7 days"),
    (2004, "flaky", "passed on rerun"),
    (2005, "new_failure", "not seen on the merge base"),
    (2006, "unstable", "issue #45"),
    (2007, "flaky", "is disabled, issue #"),
    (2008, "pending", "not finished"),
    (3002, "awaiting_approval", "approval"),
    (2009, "success", "success"),
    (2011, "flaky", "failed in 1 other job of 1 other commit"),
];

async fn feed_pr_scenario(stack: &Stack) {
    let t_head = T0 + 2 * 3600;
    let linux = |id, name, sha, branch, conclusion, attempt| JobSpec {
        id,
        run: if sha == HEAD {
            3001
        } else if sha == BASE {
            3100
        } else {
            3200
        },
        attempt,
        sha,
        branch,
        workflow: "pull",
        name,
        conclusion,
        created: if sha == HEAD { t_head + 60 } else { T0 + 60 },
        started: if sha == HEAD { t_head + 120 } else { T0 + 120 },
        completed: if sha == HEAD {
            t_head + 1800 + attempt * 600
        } else {
            T0 + 1800
        },
    };
    let mut deliveries = vec![
        push(REPO, BASE, "main", T0),
        push(REPO, OTHER, "feature", T0 - 3600),
        run(REPO, 3100, BASE, "main", "pull", "failure", None, T0 + 30),
        run(
            REPO,
            3200,
            OTHER,
            "feature",
            "pull",
            "failure",
            None,
            T0 - 3500,
        ),
        pull_request(PR, HEAD, BASE, t_head),
        run(
            REPO,
            3001,
            HEAD,
            "gh/dev/77",
            "pull",
            "failure",
            Some(PR),
            t_head,
        ),
        // A run of the PR that waits for a maintainer's approval: no job.
        run(
            REPO,
            3002,
            HEAD,
            "gh/dev/77",
            "Lint (first-time contributor)",
            "action_required",
            Some(PR),
            t_head,
        ),
        unstable_job_issue(
            &hudstream_ingest::fixtures::default_dir(),
            REPO,
            45,
            "pull / rocm / test (default)",
        )
        .expect("unstable issue"),
        disabled_test_issue(
            &hudstream_ingest::fixtures::default_dir(),
            REPO,
            46,
            "test_which_fails",
            "python.test_sample",
            "",
        )
        .expect("disabled issue"),
        disabled_test_issue(
            &hudstream_ingest::fixtures::default_dir(),
            REPO,
            47,
            "test_with_error",
            "python.test_sample",
            "",
        )
        .expect("disabled issue"),
    ];
    let specs = [
        // On the merge base: the failure the PR's shard 2 repeats.
        linux(
            1001,
            "linux-jammy / test (default, 1, 2, linux.2xlarge)",
            BASE,
            "main",
            Some("failure"),
            1,
        ),
        // On main, a job an UNSTABLE issue names: the grid marks its column.
        linux(
            1003,
            "rocm / test (default, 1, 1, linux.rocm.gpu)",
            BASE,
            "main",
            Some("failure"),
            1,
        ),
        // On another branch: the CUDA OOM the PR's distributed shard repeats.
        linux(
            1002,
            "linux-jammy / build",
            OTHER,
            "feature",
            Some("failure"),
            1,
        ),
        linux(
            2001,
            "linux-jammy / test (default, 2, 2, linux.2xlarge)",
            HEAD,
            "gh/dev/77",
            Some("failure"),
            1,
        ),
        linux(
            2002,
            "linux-jammy / test (distributed, 1, 1, linux.2xlarge)",
            HEAD,
            "gh/dev/77",
            Some("failure"),
            1,
        ),
        linux(
            2003,
            "linux-jammy / test (crossref, 1, 1, linux.2xlarge)",
            HEAD,
            "gh/dev/77",
            Some("failure"),
            1,
        ),
        linux(
            2004,
            "linux-jammy / test (crossref, 1, 1, linux.2xlarge)",
            HEAD,
            "gh/dev/77",
            Some("success"),
            2,
        ),
        linux(
            2005,
            "win-vs2022 / test (default, 1, 1, windows.4xlarge)",
            HEAD,
            "gh/dev/77",
            Some("failure"),
            1,
        ),
        linux(
            2006,
            "rocm / test (default, 1, 1, linux.rocm.gpu)",
            HEAD,
            "gh/dev/77",
            Some("failure"),
            1,
        ),
        linux(
            2007,
            "linux-focal / test (slow, 1, 1, linux.2xlarge)",
            HEAD,
            "gh/dev/77",
            Some("failure"),
            1,
        ),
        linux(
            2008,
            "linux-jammy / test (dynamo, 1, 1, linux.2xlarge)",
            HEAD,
            "gh/dev/77",
            None,
            1,
        ),
        linux(
            2009,
            "linux-jammy / test (jit, 1, 1, linux.2xlarge)",
            HEAD,
            "gh/dev/77",
            Some("success"),
            1,
        ),
        // A failure whose log is its own but whose failing test failed on the feature branch.
        linux(
            2011,
            "linux-jammy / test (inductor, 1, 1, linux.2xlarge)",
            HEAD,
            "gh/dev/77",
            Some("failure"),
            1,
        ),
        linux(
            1004,
            "linux-jammy / test (inductor, 1, 1, linux.2xlarge)",
            OTHER,
            "feature",
            Some("failure"),
            1,
        ),
    ];
    deliveries.extend(specs.iter().map(|s| job(REPO, s)));
    stack.post_all(&deliveries).await;
    // The real logs of the failures.
    for (id, sha, log) in [
        (1001, BASE, "pytest_failures_section.txt"),
        (2001, HEAD, "pytest_failures_section.txt"),
        (1002, OTHER, "cuda_oom_class.txt"),
        (2002, HEAD, "cuda_oom_class.txt"),
        (2003, HEAD, "python_runtimeerror.txt"),
        (2005, HEAD, "msvc_compiler_error.txt"),
        (2006, HEAD, "python_runtimeerror.txt"),
        (2007, HEAD, "unittest_failed_consistently.txt"),
        (2011, HEAD, "ninja_build_failed.txt"),
        (1004, OTHER, "test_file_failed_wrapper.txt"),
    ] {
        let (status, answer) = stack
            .put_log(
                &format!("{REPO}/{id}"),
                &format!("?head_sha={sha}"),
                TOKEN,
                real_log(log),
            )
            .await;
        assert!(status < 300, "log of {id}: {status} {answer}");
    }
    // The slow shard's real report: its two failing tests are the disabled ones.
    let report = hudstream_e2e::test_report_fixtures()
        .into_iter()
        .find(|(_, file, _)| file == "python__report.xml")
        .expect("the pytest fixture report");
    let (status, answer) = stack
        .put_report(
            &format!("{REPO}/2007"),
            "?report=test/test-reports/python-pytest/test_sample/test_sample-1.xml",
            TOKEN,
            report.2,
            true,
        )
        .await;
    assert_eq!(status, 201, "report upload: {answer}");
    // The same real report, with other failing tests, for the inductor shard here and on the
    // feature branch.
    let report = hudstream_e2e::test_report_fixtures()
        .into_iter()
        .find(|(_, file, _)| file == "flaky_retries__flaky_all_failures.xml")
        .expect("the all-failures fixture report");
    for (id, sha) in [(1004, OTHER), (2011, HEAD)] {
        let (status, answer) = stack
            .put_report(
                &format!("{REPO}/{id}"),
                &format!("?report=test/test-reports/inductor/test_inductor-1.xml&head_sha={sha}"),
                TOKEN,
                report.2.clone(),
                true,
            )
            .await;
        assert_eq!(status, 201, "report upload: {answer}");
    }
}

fn class_of(drci: &Value, id: i64) -> Option<(String, String)> {
    drci["heads"][0]["jobs"]
        .as_array()?
        .iter()
        .find(|j| j["id"] == id)
        .map(|j| {
            (
                j["class"].as_str().unwrap_or("").to_string(),
                j["reason"].as_str().unwrap_or("").to_string(),
            )
        })
}

async fn check_drci(stack: &Stack) {
    let path = format!("/api/drci/{REPO}/{PR}");
    let drci = stack
        .wait_for(&path, |d| {
            EXPECTED
                .iter()
                .all(|(id, class, _)| class_of(d, *id).is_some_and(|(c, _)| c == *class))
        })
        .await;
    for (id, class, reason) in EXPECTED {
        let (got, why) = class_of(&drci, *id).expect("job listed");
        assert_eq!(&got, class, "job {id}: {why}");
        assert!(why.contains(reason), "job {id}: {why:?} lacks {reason:?}");
    }
    let head = &drci["heads"][0];
    assert_eq!(head["sha"], HEAD);
    assert_eq!(head["merge_base"]["sha"], BASE);
    assert_eq!(head["merge_base"]["chosen_by"], "base_branch_push");
    let broken = drci["heads"][0]["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["id"] == 2001)
        .expect("2001");
    assert_eq!(broken["evidence"]["kind"], "merge_base");
    assert_eq!(broken["evidence"]["job_id"], 1001);
    let similar = head["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["id"] == 2002)
        .expect("2002");
    assert_eq!(similar["evidence"]["kind"], "similar_failures");
    assert_eq!(similar["evidence"]["example_job_ids"], json!([1002]));
    assert_eq!(
        drci["summary"],
        json!({"new_failure": 1, "broken_trunk": 1, "flaky": 4, "unstable": 1,
               "awaiting_approval": 1, "pending": 1, "success": 1}),
        "{drci:#}"
    );

    // The comment torchci would post.
    let comment = reqwest::get(format!("{}{path}/comment.md", stack.api_url))
        .await
        .expect("comment")
        .text()
        .await
        .expect("text");
    for piece in [
        "<!-- drci-comment-start -->",
        "## :x: 1 Awaiting Approval, 1 New Failure, 1 Pending, 6 Unrelated Failures",
        &format!("As of commit {HEAD} with merge base {BASE}:"),
        "<b>NEW FAILURES</b>",
        "<b>BROKEN TRUNK</b>",
        "<b>FLAKY</b>",
        "<b>UNSTABLE</b>",
        "win-vs2022 / test (default, 1, 1, windows.4xlarge)",
        "<!-- drci-comment-end -->",
    ] {
        assert!(
            comment.contains(piece),
            "comment lacks {piece:?}:\n{comment}"
        );
    }

    // The PR page: the summary and a badge per job.
    check_page(
        stack,
        "triage-pr-drci",
        &format!("/{REPO}/pull/{PR}"),
        &[
            "id=\"drci-summary\"",
            "1 new failure, 1 broken trunk, 4 flaky, 1 unstable, 1 awaiting approval, 1 pending",
            "data-job-id=\"2001\" data-class=\"broken_trunk\"",
            "data-job-id=\"2002\" data-class=\"flaky\"",
            "data-job-id=\"2005\" data-class=\"new_failure\"",
            "data-job-id=\"2006\" data-class=\"unstable\"",
            "drci-badge",
        ],
    )
    .await;

    // The grid of main marks the unstable column.
    let (status, grid) = stack.api(&format!("/api/hud/{REPO}/main")).await;
    assert_eq!(status, 200, "{grid}");
    assert_eq!(
        grid["unstable_jobs"],
        json!(["pull / rocm / test (default, 1, 1, linux.rocm.gpu)"]),
        "{grid:#}"
    );
    check_page(
        stack,
        "triage-grid-unstable",
        &format!("/hud/{REPO}/main"),
        &["unstable-cell", "(unstable)"],
    )
    .await;

    // Similar failures of the flaky one, and its cluster.
    let (status, similar) = stack
        .api(&format!("/api/failures/{REPO}/similar?job_id=2002&days=90"))
        .await;
    assert_eq!(status, 200, "{similar}");
    let ids: Vec<i64> = similar["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["id"].as_i64())
        .collect();
    assert_eq!(ids, vec![1002], "{similar:#}");
    assert_eq!(similar["branches"], json!(["feature"]));
    let (status, clusters) = stack
        .api(&format!("/api/failures/{REPO}/clusters?days=7"))
        .await;
    assert_eq!(status, 200, "{clusters}");
    let oom = clusters["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["signature"] == similar["signature"])
        .expect("the OOM cluster");
    assert_eq!(oom["jobs"], 2);
    check_page(
        stack,
        "triage-failure-clusters",
        &format!("/failures/{REPO}?days=7"),
        &["id=\"clusters\"", "class=\"cluster\""],
    )
    .await;
    // Bad requests are answered precisely.
    for (path, code) in [
        (format!("/api/failures/{REPO}/similar"), 400),
        (format!("/api/failures/{REPO}/similar?job_id=abc"), 400),
        (format!("/api/failures/{REPO}/similar?job_id=999999"), 404),
        (format!("/api/drci/{REPO}/0"), 400),
        (format!("/api/drci/{REPO}/999999"), 404),
        (format!("/api/trunk/{REPO}/red?branch=a..b"), 400),
        (format!("/api/trunk/{REPO}/red?days=0"), 400),
    ] {
        let (status, body) = stack.api(&path).await;
        assert_eq!(status, code, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
}

/// GitHub's issue-comment endpoints for one repository, in memory.
#[derive(Default)]
struct Comments {
    /// (id, PR number, login, body)
    all: Mutex<Vec<(i64, i64, String, String)>>,
    /// Every write: `POST {number}` or `PATCH {id}`.
    writes: Mutex<Vec<String>>,
}

const BOT: &str = "hudstream-bot";

fn comment_json(c: &(i64, i64, String, String)) -> Value {
    json!({"id": c.0, "body": c.3, "user": {"login": c.2}})
}

async fn list_comments(
    State(st): State<Arc<Comments>>,
    Path((_, _, number)): Path<(String, String, i64)>,
) -> axum::Json<Value> {
    let all = st.all.lock().expect("lock");
    axum::Json(Value::Array(
        all.iter()
            .filter(|c| c.1 == number)
            .map(comment_json)
            .collect(),
    ))
}

async fn create_comment(
    State(st): State<Arc<Comments>>,
    Path((_, _, number)): Path<(String, String, i64)>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    let mut all = st.all.lock().expect("lock");
    let c = (
        1000 + all.len() as i64,
        number,
        BOT.to_string(),
        body["body"].as_str().unwrap_or("").to_string(),
    );
    all.push(c.clone());
    st.writes
        .lock()
        .expect("lock")
        .push(format!("POST {number}"));
    axum::Json(comment_json(&c))
}

async fn edit_comment(
    State(st): State<Arc<Comments>>,
    Path((_, _, id)): Path<(String, String, i64)>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    let mut all = st.all.lock().expect("lock");
    let c = all
        .iter_mut()
        .find(|c| c.0 == id)
        .expect("an existing comment");
    c.3 = body["body"].as_str().unwrap_or("").to_string();
    st.writes.lock().expect("lock").push(format!("PATCH {id}"));
    axum::Json(comment_json(c))
}

async fn check_poster(stack: &Stack) {
    let comments = Arc::new(Comments::default());
    // Another tool's comment that happens to start with the marker.
    comments.all.lock().expect("lock").push((
        1,
        PR,
        "other-bot".into(),
        "<!-- drci-comment-start -->\nnot ours".into(),
    ));
    let app = axum::Router::new()
        .route(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            get(list_comments).post(create_comment),
        )
        .route(
            "/repos/{owner}/{repo}/issues/comments/{id}",
            patch(edit_comment),
        )
        .with_state(comments.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config = stack.config.clone();
    config.logs.github_api_url = url;
    config.logs.github_token = Secret::new("drci-test-token");
    config.drci.enabled = true;
    config.drci.repositories = vec![REPO.to_string()];
    config.drci.hud_url = stack.api_url.clone();
    config.drci.bot_login = BOT.into();
    let shutdown = hudstream_runtime::shutdown::CancellationToken::new();
    let writes = || comments.writes.lock().expect("lock").clone();
    let ours = || {
        comments
            .all
            .lock()
            .expect("lock")
            .iter()
            .find(|c| c.2 == BOT)
            .map(|c| (c.0, c.3.clone()))
    };

    let mut poster = hudstream::drci_poster(&config, shutdown.clone()).expect("poster");
    // A dry run reads GitHub and writes nothing.
    let report = poster.pass(true).await.expect("dry pass");
    assert_eq!((report.pull_requests, report.created), (1, 1), "{report:?}");
    assert!(writes().is_empty(), "{:?}", writes());
    let report = poster.pass(false).await.expect("pass");
    assert_eq!((report.created, report.failed), (1, 0), "{report:?}");
    assert_eq!(writes(), vec![format!("POST {PR}")]);
    let (id, body) = ours().expect("our comment");
    assert!(
        body.contains("1 New Failure") && body.contains("<b>NEW FAILURES</b>"),
        "{body}"
    );
    assert!(
        body.contains(&format!("{}/{REPO}/job/2005", stack.api_url)),
        "{body}"
    );
    // Nothing changed: GitHub is not asked to write.
    let report = poster.pass(false).await.expect("pass");
    assert_eq!((report.unchanged, report.created, report.edited), (1, 0, 0));
    assert_eq!(writes().len(), 1);

    // The new failure passes on a rerun: its class changes, the comment is edited in place.
    stack
        .post_all([&job(
            REPO,
            &JobSpec {
                id: 2010,
                run: 3001,
                attempt: 2,
                sha: HEAD,
                branch: "gh/dev/77",
                workflow: "pull",
                name: "win-vs2022 / test (default, 1, 1, windows.4xlarge)",
                conclusion: Some("success"),
                created: T0 + 9000,
                started: T0 + 9060,
                completed: T0 + 9600,
            },
        )])
        .await;
    stack
        .wait_for(&format!("/api/drci/{REPO}/{PR}"), |d| {
            class_of(d, 2010).is_some_and(|(c, _)| c == "flaky")
        })
        .await;
    let report = poster.pass(false).await.expect("pass");
    assert_eq!(report.edited, 1, "{report:?}");
    assert_eq!(writes(), vec![format!("POST {PR}"), format!("PATCH {id}")]);
    let (_, body) = ours().expect("our comment");
    assert!(!body.contains("NEW FAILURES"), "{body}");
    assert!(body.contains("7 Unrelated Failures"), "{body}");
    // Another tool's comment is untouched; ours is the only one we wrote.
    assert_eq!(
        comments.all.lock().expect("lock")[0].3,
        "<!-- drci-comment-start -->\nnot ours"
    );

    // A restarted poster finds its comment, sees the same text and writes nothing.
    let mut restarted = hudstream::drci_poster(&config, shutdown).expect("poster");
    let report = restarted.pass(false).await.expect("pass");
    assert_eq!(
        (report.unchanged, report.edited, report.created),
        (1, 0, 0),
        "{report:?}"
    );
    assert_eq!(writes().len(), 2);
}

/// A small history of main, its figures computed by hand: five commits ten minutes apart;
/// `build` passes everywhere (done 20 min after the push); `test` fails on commits 1–3 (done
/// 30 min after), passes on 0 and 4; `lint` fails then passes on rerun on commit 4 (done 40
/// min after); an unstable `rocm` job fails on commit 0 (done 31 min 40 s after); every job
/// queues 60 s, `test` 300 s.
async fn check_trunk(stack: &Stack) {
    const TRUNK: &str = "hudstream/trunk-demo";
    let now = chrono::Utc::now().timestamp();
    let start = now - 5 * 3600;
    let sha = |i: i64| format!("{:040x}", 0xc0ffee000 + i);
    let mut deliveries = Vec::new();
    let mut id = 5000;
    for i in 0..5 {
        let at = start + i * 600;
        let s = sha(i);
        deliveries.push(push(TRUNK, &s, "main", at));
        deliveries.push(run(
            TRUNK,
            6000 + i,
            &s,
            "main",
            "pull",
            "success",
            None,
            at,
        ));
        let mut add = |name: &str, conclusion: &str, attempt: i64, queue: i64, done: i64| {
            id += 1;
            deliveries.push(job(
                TRUNK,
                &JobSpec {
                    id,
                    run: 6000 + i,
                    attempt,
                    sha: &s,
                    branch: "main",
                    workflow: "pull",
                    name,
                    conclusion: Some(conclusion),
                    created: at + 60,
                    started: at + 60 + queue,
                    completed: at + done,
                },
            ));
        };
        add("build", "success", 1, 60, 1200);
        if i == 0 {
            // A failure of a job an UNSTABLE issue names: commit 0 stays green.
            add(
                "rocm / test (default, 1, 1, linux.rocm)",
                "failure",
                1,
                60,
                1900,
            );
        }
        let test = if (1..=3).contains(&i) {
            "failure"
        } else {
            "success"
        };
        add("test (default, 1, 1, linux.2xlarge)", test, 1, 300, 1800);
        if i == 4 {
            add("lint", "failure", 1, 60, 1500);
            add("lint", "success", 2, 60, 2400);
        }
    }
    deliveries.push(
        unstable_job_issue(
            &hudstream_ingest::fixtures::default_dir(),
            TRUNK,
            9,
            "pull / rocm / test (default)",
        )
        .expect("unstable issue"),
    );
    stack.post_all(&deliveries).await;
    let red = stack
        .wait_for(&format!("/api/trunk/{TRUNK}/red?branch=main&days=1"), |r| {
            r["commits"] == 5 && r["red"] == 3 && r["flaky"] == 1
        })
        .await;
    assert_eq!(
        (red["red_rate"].as_f64(), red["flaky_rate"].as_f64()),
        (Some(0.6), Some(0.2))
    );
    let (_, signal) = stack
        .api(&format!("/api/trunk/{TRUNK}/signal?branch=main&days=1"))
        .await;
    // Push → last job done: 1900 s for commit 0 (rocm), 1800 s for commits 1–3, 2400 s for
    // commit 4; push → first failure: 1900 s on commit 0 (an unstable job still fails first),
    // 1800 s on commits 1–3, 1500 s on commit 4 (lint's first attempt).
    let tts: Vec<i64> = signal["commits"]
        .as_array()
        .expect("commits")
        .iter()
        .map(|c| c["time_to_signal_s"].as_i64().expect("tts"))
        .collect();
    assert_eq!(tts, vec![2400, 1800, 1800, 1800, 1900], "{signal:#}");
    assert_eq!(signal["time_to_signal"]["p50"], 1800);
    assert_eq!(signal["time_to_signal"]["p90"], 2400);
    assert_eq!(signal["time_to_red"]["count"], 5);
    assert_eq!(signal["time_to_red"]["p50"], 1800);
    // The workflow runs say which commits ran the job; they are projected apart from the jobs,
    // so wait for the fifth commit's run to count (until then its passing `test` is unseen).
    let broken = stack
        .wait_for(
            &format!("/api/trunk/{TRUNK}/broken?branch=main&days=1"),
            |b| b["broken_now"] == false && b["runs"].as_array().is_some_and(|r| r.len() == 1),
        )
        .await;
    assert_eq!(broken["broken_now"], false, "{broken:#}");
    let runs = broken["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{broken:#}");
    assert_eq!(runs[0]["job"], "pull / test (default)");
    assert_eq!(runs[0]["commits"], 3);
    assert_eq!(runs[0]["first_sha"], sha(1));
    assert_eq!(runs[0]["last_sha"], sha(3));
    let (_, queue) = stack.api(&format!("/api/trunk/{TRUNK}/queue?days=1")).await;
    let label = &queue["labels"][0];
    assert_eq!(label["label"], "linux.2xlarge");
    // 13 jobs: 8 queued 60 s (build, lint, rocm), 5 queued 300 s (test).
    assert_eq!(label["jobs"], 13, "{queue:#}");
    let day = &label["per_day"][0];
    assert_eq!(
        (day["p50_s"].as_f64(), day["max_s"].as_f64()),
        (Some(60.0), Some(300.0))
    );
    // The home page leads to both repositories' branches.
    check_page(
        stack,
        "triage-home",
        "/",
        &[
            "data-repository=\"hudstream/trunk-demo\" data-branch=\"main\"",
            "data-repository=\"Codertocat/Hello-World\" data-branch=\"main\"",
            "href=\"/hud/hudstream/trunk-demo/main\"",
            "href=\"/trunk/hudstream/trunk-demo?branch=main\"",
            "class=\"chip failure\"",
        ],
    )
    .await;
    check_page(
        stack,
        "triage-trunk-health",
        &format!("/trunk/{TRUNK}?branch=main&days=1"),
        &[
            "id=\"broken-runs\"",
            "pull / test (default)",
            "3 of 5 commits red, 1 flaky only",
            "<svg id=\"red-rate-chart\"",
            "<svg id=\"tts-chart\"",
            "queue-linux.2xlarge",
        ],
    )
    .await;
}

/// `hudstream_trunk_broken_jobs`, which the `HudstreamTrunkBroken` alert reads, says how many
/// jobs of a watched branch are broken now: none on the trunk demo, whose run of failures
/// ended on its newest commit.
async fn check_broken_trunk_gauge(stack: &Stack) {
    let want = r#"hudstream_trunk_broken_jobs{repository="hudstream/trunk-demo",branch="main"} 0"#;
    let url = format!("{}/metrics", stack.api_url);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let text = reqwest::get(&url)
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if text.lines().any(|l| l == want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {want:?} in /metrics:\n{}",
            text.lines()
                .filter(|l| l.contains("trunk"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dr_ci_classes_similar_failures_and_trunk_health_from_real_deliveries_and_logs() {
    hudstream_e2e::init_logs();
    let mut config = test_config();
    let store = hudstream_e2e::tempdir("triage-logs");
    config.logs.enabled = true;
    config.logs.fetch_from_github = false;
    config.logs.store = store.display().to_string();
    config.logs.ruleset = reference_dir().join("ruleset.toml");
    config.logs.upload_tokens = vec![Secret::new(TOKEN)];
    hudstream_e2e::with_test_reports(&mut config, TOKEN);
    // The API keeps the trunk-demo branch's broken-trunk gauge current (the alert reads it).
    config.api.watch_trunks = vec!["hudstream/trunk-demo:main".into()];
    config.api.trunk_check_interval_s = 1;
    let stack = Stack::start_with(config).await;
    feed_pr_scenario(&stack).await;
    check_drci(&stack).await;
    check_poster(&stack).await;
    check_trunk(&stack).await;
    check_broken_trunk_gauge(&stack).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&store);
}
