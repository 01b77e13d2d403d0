//! `oot.results` → `hud.oot_result.v1`: out-of-tree CI callbacks, flattened by torchci's rules
//! (reference/torchci.md §7.4), and the order-independent merge of one job's callbacks.
//!
//! Flattening, rule by rule:
//! - always: `dynamoKey`, status, downstream_repo (= `trusted.verified_repo`), upstream_repo
//!   (payload `repository.full_name`, default `pytorch/pytorch`), pr_number (default 0),
//!   pytorch_head_sha (payload PR head sha, else `payload.head_sha`, else the delivery id),
//!   delivery_id, workflow_run_url, workflow_name, job_name, check_run_id (numbers as text),
//!   run_id, run_attempt (`Number(x ?? 1) || 1`), event_type (default `pull_request`);
//! - only if truthy: downstream_repo_level (from `trusted` only — `untrusted` can never set it,
//!   nor the repository), started_at, artifact_url;
//! - only if not null: queue_time, execution_time (from `trusted.ci_metrics`), so the
//!   `completed` callback's `queue_time: null` does not clobber the `in_progress` value;
//! - only when status is `completed`: conclusion (null → unset), completed_at (if truthy), and
//!   with `test_results`: passed/failed/skipped when numeric, total_tests = `total` if numeric,
//!   else passed + failed + skipped (missing → 0).
//!
//! torchci merges callbacks with DynamoDB `SET` in arrival order. Here [`merge_all`] gives
//! every field the value of the highest-version callback that set it (version: status rank,
//! then a content hash), so any order of callbacks, with duplicates, ends in the same row.

use serde_json::Value;

use hudstream_schemas::oot::OotResult;
use hudstream_schemas::topics::OOT_RESULTS;

use crate::timestamp::{parse_millis, BadTimestamp};
use hudstream_schemas::version::pack;

#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("not a JSON object: {0}")]
    Json(String),
    #[error("missing {0}")]
    Missing(&'static str),
    #[error(transparent)]
    Timestamp(#[from] BadTimestamp),
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |cur, p| cur.get(p))
        .filter(|v| !v.is_null())
}

/// JavaScript truthiness, for torchci's "stored if truthy".
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn number(v: Option<&Value>) -> Option<f64> {
    v?.as_f64()
}

/// torchci's `Number(x ?? 1) || 1`, kept to a positive integer.
fn run_attempt(v: Option<&Value>) -> i64 {
    let n = match v {
        None => 1.0,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) if s.trim().is_empty() => 0.0,
        Some(Value::String(s)) => s.trim().parse::<f64>().unwrap_or(f64::NAN),
        Some(Value::Bool(b)) => f64::from(u8::from(*b)),
        Some(_) => f64::NAN,
    };
    if n.is_nan() || n == 0.0 {
        1
    } else {
        (n.trunc() as i64).max(1)
    }
}

/// The rank of a callback's status; later lifecycle states win a field.
pub fn status_rank(status: &str) -> u64 {
    match status {
        "in_progress" => 1,
        "completed" => 2,
        _ => 0,
    }
}

/// Flattens one callback body. Pure: same bytes, same record.
pub fn normalize(payload: &[u8]) -> Result<OotResult, NormalizeError> {
    let body: Value =
        serde_json::from_slice(payload).map_err(|e| NormalizeError::Json(e.to_string()))?;
    if !body.is_object() {
        return Err(NormalizeError::Json("the body is not an object".into()));
    }
    let trusted = at(&body, &["trusted"]).ok_or(NormalizeError::Missing("trusted"))?;
    let callback = at(&body, &["untrusted", "callback_payload"])
        .ok_or(NormalizeError::Missing("untrusted.callback_payload"))?;
    let workflow = at(callback, &["workflow"]).ok_or(NormalizeError::Missing(
        "untrusted.callback_payload.workflow",
    ))?;
    let downstream_repo = text(at(trusted, &["verified_repo"]))
        .filter(|s| !s.is_empty())
        .ok_or(NormalizeError::Missing("trusted.verified_repo"))?;
    let delivery_id = text(at(callback, &["delivery_id"])).ok_or(NormalizeError::Missing(
        "untrusted.callback_payload.delivery_id",
    ))?;
    let workflow_name =
        text(at(workflow, &["name"])).ok_or(NormalizeError::Missing("workflow.name"))?;
    let job_name = text(at(workflow, &["job_name"]))
        .filter(|s| !s.is_empty())
        .ok_or(NormalizeError::Missing("workflow.job_name"))?;
    let check_run_id = text(at(workflow, &["check_run_id"]))
        .ok_or(NormalizeError::Missing("workflow.check_run_id"))?;
    let status =
        text(at(workflow, &["status"])).ok_or(NormalizeError::Missing("workflow.status"))?;
    let payload = at(callback, &["payload"]);
    let from_payload = |path: &[&str]| payload.and_then(|p| at(p, path));
    let completed = status == "completed";

    let mut result = OotResult {
        version: 0,
        dynamo_key: format!(
            "{downstream_repo}/{delivery_id}/{workflow_name}/{job_name}/{check_run_id}"
        ),
        upstream_repo: text(from_payload(&["repository", "full_name"]))
            .unwrap_or_else(|| "pytorch/pytorch".into()),
        pr_number: number(from_payload(&["pull_request", "number"]))
            .map(|n| n as i64)
            .unwrap_or(0),
        pytorch_head_sha: text(from_payload(&["pull_request", "head", "sha"]))
            .or_else(|| text(from_payload(&["head_sha"])))
            .unwrap_or_else(|| delivery_id.clone()),
        workflow_run_url: text(at(workflow, &["url"])).unwrap_or_default(),
        run_id: text(at(workflow, &["run_id"])).unwrap_or_default(),
        run_attempt: run_attempt(workflow.get("run_attempt").filter(|v| !v.is_null())),
        event_type: text(at(callback, &["event_type"])).unwrap_or_else(|| "pull_request".into()),
        // Only `trusted` decides these: a downstream repository cannot promote itself.
        downstream_repo_level: truthy(at(trusted, &["downstream_repo_level"]))
            .then(|| text(at(trusted, &["downstream_repo_level"])))
            .flatten(),
        queue_time: number(at(trusted, &["ci_metrics", "queue_time"])),
        execution_time: number(at(trusted, &["ci_metrics", "execution_time"])),
        started_at: if truthy(at(workflow, &["started_at"])) {
            parse_millis(
                "workflow.started_at",
                text(at(workflow, &["started_at"])).as_deref(),
            )?
        } else {
            None
        },
        completed_at: if completed && truthy(at(workflow, &["completed_at"])) {
            parse_millis(
                "workflow.completed_at",
                text(at(workflow, &["completed_at"])).as_deref(),
            )?
        } else {
            None
        },
        conclusion: if completed {
            text(at(workflow, &["conclusion"]))
        } else {
            None
        },
        passed_tests: None,
        failed_tests: None,
        skipped_tests: None,
        total_tests: None,
        artifact_url: truthy(at(workflow, &["artifact_url"]))
            .then(|| text(at(workflow, &["artifact_url"])))
            .flatten(),
        status,
        downstream_repo,
        delivery_id,
        workflow_name,
        job_name,
        check_run_id,
    };
    if completed {
        if let Some(tests) = at(workflow, &["test_results"]).filter(|t| t.is_object()) {
            let count = |name: &str| tests.get(name).and_then(Value::as_f64).map(|f| f as i64);
            result.passed_tests = count("passed");
            result.failed_tests = count("failed");
            result.skipped_tests = count("skipped");
            result.total_tests = Some(count("total").unwrap_or_else(|| {
                result.passed_tests.unwrap_or(0)
                    + result.failed_tests.unwrap_or(0)
                    + result.skipped_tests.unwrap_or(0)
            }));
        }
    }
    result.version = pack(&[(status_rank(&result.status), 2)], &result);
    Ok(result)
}

/// The row of one job from all its callbacks: every field takes the value of the
/// highest-version callback that set it. Defined over the set of callbacks — sorting by
/// version first — so any order, with duplicates, gives the same row. (A pairwise merge of
/// already-merged rows would not be associative: a merged row no longer says which callback
/// set which field.) In SQL, on both ClickHouse versions, the same rule is
/// `argMaxIf(field, version, isNotNull(field))` over the stored callbacks. `None` for none.
pub fn merge_all(callbacks: &[OotResult]) -> Option<OotResult> {
    let mut sorted: Vec<&OotResult> = callbacks.iter().collect();
    // Highest version first; the content decides between equal versions (a hash collision).
    sorted.sort_by(|a, b| {
        b.version.cmp(&a.version).then_with(|| {
            serde_json::to_vec(b)
                .unwrap_or_default()
                .cmp(&serde_json::to_vec(a).unwrap_or_default())
        })
    });
    let (first, rest) = sorted.split_first()?;
    let mut out = (*first).clone();
    for lo in rest {
        macro_rules! fill {
            ($($field:ident),*) => { $( if out.$field.is_none() { out.$field = lo.$field.clone(); } )* };
        }
        fill!(
            downstream_repo_level,
            queue_time,
            execution_time,
            started_at,
            completed_at,
            conclusion,
            passed_tests,
            failed_tests,
            skipped_tests,
            total_tests,
            artifact_url
        );
    }
    Some(out)
}

crate::processor! {
    /// The `process.oot` stage.
    pub struct OotProcessor {
        stage: "process.oot",
        input: OOT_RESULTS,
        derive: normalize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn callback(status: &str, workflow: Value, trusted: Value) -> Vec<u8> {
        let mut wf = json!({"schema_version": "1", "status": status, "name": "xpu-ci", "url": "https://ci/run/9", "job_name": "test (1, 2)", "check_run_id": 777, "run_id": "9"});
        for (k, v) in workflow.as_object().expect("object") {
            wf[k] = v.clone();
        }
        serde_json::to_vec(&json!({
            "trusted": trusted,
            "untrusted": {"callback_payload": {
                "event_type": "pull_request",
                "delivery_id": "d-1",
                "payload": {"pull_request": {"number": 12345, "head": {"sha": "abc123"}}, "repository": {"full_name": "pytorch/pytorch"}},
                "workflow": wf
            }}
        }))
        .expect("json")
    }

    fn trusted(queue: Value, exec: Value) -> Value {
        json!({"verified_repo": "intel/torch-xpu-ops", "downstream_repo_level": "L2", "ci_metrics": {"queue_time": queue, "execution_time": exec}})
    }

    fn in_progress() -> OotResult {
        normalize(&callback(
            "in_progress",
            json!({"started_at": "2026-05-01T10:00:00Z", "run_attempt": "2"}),
            trusted(json!(12.5), Value::Null),
        ))
        .expect("ok")
    }

    fn completed() -> OotResult {
        normalize(&callback(
            "completed",
            json!({"started_at": null, "completed_at": "2026-05-01T10:30:00Z", "conclusion": "failure", "run_attempt": "2",
                   "test_results": {"passed": 90, "failed": 3, "skipped": 7}, "artifact_url": "https://ci/artifacts"}),
            trusted(Value::Null, json!(1800.0)),
        ))
        .expect("ok")
    }

    #[test]
    fn the_key_and_the_always_fields() {
        let r = in_progress();
        assert_eq!(
            r.dynamo_key,
            "intel/torch-xpu-ops/d-1/xpu-ci/test (1, 2)/777"
        );
        assert_eq!(
            (
                r.downstream_repo.as_str(),
                r.upstream_repo.as_str(),
                r.pr_number
            ),
            ("intel/torch-xpu-ops", "pytorch/pytorch", 12345)
        );
        assert_eq!(
            (
                r.pytorch_head_sha.as_str(),
                r.workflow_run_url.as_str(),
                r.run_id.as_str()
            ),
            ("abc123", "https://ci/run/9", "9")
        );
        assert_eq!(
            (r.check_run_id.as_str(), r.event_type.as_str()),
            ("777", "pull_request")
        );
    }

    #[test]
    fn the_key_matches_the_gateways() {
        let body = callback("in_progress", json!({}), trusted(Value::Null, Value::Null));
        let gateway =
            hudstream_ingest::oot::identify(&serde_json::from_slice(&body).expect("json"))
                .expect("valid");
        assert_eq!(gateway.key, normalize(&body).expect("ok").dynamo_key);
    }

    #[test]
    fn run_attempt_is_coerced_like_torchci() {
        for (given, want) in [
            (json!("2"), 2),
            (json!(3), 3),
            (json!("junk"), 1),
            (json!(0), 1),
            (json!(""), 1),
            (Value::Null, 1),
        ] {
            let body = callback(
                "in_progress",
                json!({"run_attempt": given.clone()}),
                trusted(Value::Null, Value::Null),
            );
            assert_eq!(normalize(&body).expect("ok").run_attempt, want, "{given}");
        }
    }

    #[test]
    fn conditional_fields_follow_torchcis_rules() {
        let r = in_progress();
        assert_eq!(r.queue_time, Some(12.5));
        assert_eq!(r.execution_time, None, "null metrics are not set");
        assert_eq!(r.started_at, Some(1_777_629_600_000));
        assert_eq!(
            (r.conclusion.clone(), r.completed_at, r.total_tests),
            (None, None, None),
            "only a completed callback sets these"
        );
        let c = completed();
        assert_eq!(c.started_at, None, "a null started_at is not set");
        assert_eq!(c.queue_time, None);
        assert_eq!(c.conclusion.as_deref(), Some("failure"));
        assert_eq!(
            (
                c.passed_tests,
                c.failed_tests,
                c.skipped_tests,
                c.total_tests
            ),
            (Some(90), Some(3), Some(7), Some(100))
        );
        assert_eq!(c.artifact_url.as_deref(), Some("https://ci/artifacts"));
        // An empty test_results object totals 0; an explicit total wins.
        let empty = normalize(&callback(
            "completed",
            json!({"test_results": {}}),
            trusted(Value::Null, Value::Null),
        ))
        .expect("ok");
        assert_eq!((empty.passed_tests, empty.total_tests), (None, Some(0)));
        let total = normalize(&callback(
            "completed",
            json!({"test_results": {"passed": 1, "total": 50}}),
            trusted(Value::Null, Value::Null),
        ))
        .expect("ok");
        assert_eq!(total.total_tests, Some(50));
        // A completed callback's null conclusion is not set.
        let no_conclusion = normalize(&callback(
            "completed",
            json!({"conclusion": null}),
            trusted(Value::Null, Value::Null),
        ))
        .expect("ok");
        assert_eq!(no_conclusion.conclusion, None);
    }

    #[test]
    fn untrusted_cannot_set_the_repository_or_its_level() {
        let mut body: Value = serde_json::from_slice(&callback(
            "in_progress",
            json!({}),
            json!({"verified_repo": "real/repo"}),
        ))
        .expect("json");
        body["untrusted"]["verified_repo"] = json!("evil/repo");
        body["untrusted"]["downstream_repo_level"] = json!("L4");
        body["untrusted"]["callback_payload"]["downstream_repo_level"] = json!("L4");
        body["untrusted"]["callback_payload"]["workflow"]["downstream_repo_level"] = json!("L4");
        let r = normalize(&serde_json::to_vec(&body).expect("json")).expect("ok");
        assert_eq!(r.downstream_repo, "real/repo");
        assert!(r.dynamo_key.starts_with("real/repo/"));
        assert_eq!(
            r.downstream_repo_level, None,
            "trusted had no level, so none is set"
        );
    }

    #[test]
    fn completed_before_in_progress_ends_in_the_same_row() {
        let (p, c) = (in_progress(), completed());
        let row = merge_all(&[p.clone(), c.clone()]).expect("row");
        assert_eq!(row, merge_all(&[c.clone(), p.clone()]).expect("row"));
        assert_eq!(row.status, "completed");
        assert_eq!(
            row.queue_time,
            Some(12.5),
            "in_progress's queue time survives the completed callback"
        );
        assert_eq!(row.started_at, p.started_at, "and so does its started_at");
        assert_eq!(row.execution_time, Some(1800.0));
        assert_eq!(row.conclusion.as_deref(), Some("failure"));
        assert_eq!(merge_all(&[]), None);
    }

    #[test]
    fn broken_callbacks_are_refused_with_the_reason() {
        assert!(normalize(b"[]").is_err());
        let e = normalize(br#"{"trusted": {"verified_repo": "a/b"}, "untrusted": {"callback_payload": {"delivery_id": "d", "workflow": {"name": "w", "check_run_id": 1, "status": "completed"}}}}"#).unwrap_err();
        assert_eq!(e.to_string(), "missing workflow.job_name");
    }

    fn variants() -> Vec<OotResult> {
        vec![
            in_progress(),
            completed(),
            normalize(&callback(
                "completed",
                json!({"conclusion": "success"}),
                trusted(json!(3.0), Value::Null),
            ))
            .expect("ok"),
            normalize(&callback(
                "in_progress",
                json!({"artifact_url": "https://x"}),
                trusted(Value::Null, json!(5.0)),
            ))
            .expect("ok"),
        ]
    }

    proptest! {
        #[test]
        fn any_order_of_callbacks_with_duplicates_gives_the_same_row(
            picks in proptest::collection::vec(0usize..4, 1..8), seed in any::<u64>()
        ) {
            use rand::{seq::SliceRandom, SeedableRng};
            let all = variants();
            let chosen: Vec<OotResult> = picks.iter().map(|&i| all[i].clone()).collect();
            let mut shuffled = chosen.clone();
            shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            // Duplicates change nothing either.
            let mut deduped = chosen.clone();
            deduped.sort_by_key(|r| r.version);
            deduped.dedup();
            prop_assert_eq!(merge_all(&shuffled), merge_all(&chosen));
            prop_assert_eq!(merge_all(&deduped), merge_all(&chosen));
            // Each field comes from the highest-version callback that set it.
            let row = merge_all(&chosen).expect("row");
            let best_queue = chosen.iter().filter(|r| r.queue_time.is_some()).max_by_key(|r| r.version).and_then(|r| r.queue_time);
            prop_assert_eq!(row.queue_time, best_queue);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = normalize(&bytes);
        }
    }
}
