//! Real GitHub deliveries from `shared/fixtures/github`, ready to send to the gateway.
//!
//! The folder's `manifest.json` lists 236 files in three formats: a bare webhook body
//! (`payload`), a Probot event `{id, name, payload}`, and a delivery captured off the wire
//! (`captured-delivery`, body base64-encoded with GitHub's own headers). `hudstream feed`, the
//! local stack and the end-to-end tests all load them through here, so they send the same bytes.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// One delivery to replay: what GitHub would send, minus the signature (added by the sender
/// with its own secret).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: PathBuf,
    pub event: String,
    pub action: Option<String>,
    pub delivery_id: String,
    pub body: Vec<u8>,
    /// Further GitHub headers of a captured delivery (hook id, installation target).
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid: {reason}")]
    Invalid { path: String, reason: String },
}

#[derive(Deserialize)]
struct Manifest {
    files: Vec<ManifestFile>,
}

#[derive(Deserialize)]
struct ManifestFile {
    path: String,
    format: String,
    x_github_event: String,
    action: Option<String>,
    x_github_delivery: Option<String>,
}

fn read(path: &Path) -> Result<Vec<u8>, FixtureError> {
    std::fs::read(path).map_err(|source| FixtureError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn invalid(path: &Path, reason: impl std::fmt::Display) -> FixtureError {
    FixtureError::Invalid {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// A stable delivery id for a fixture that has none, so feeding twice is a redelivery.
fn stable_delivery_id(relative: &str) -> String {
    let d = Sha256::digest(relative.as_bytes());
    let h = hex::encode(&d[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Loads every delivery listed in `dir/manifest.json`, in manifest order.
pub fn load(dir: &Path) -> Result<Vec<Delivery>, FixtureError> {
    let manifest_path = dir.join("manifest.json");
    let manifest: Manifest =
        serde_json::from_slice(&read(&manifest_path)?).map_err(|e| invalid(&manifest_path, e))?;
    manifest.files.iter().map(|f| load_one(dir, f)).collect()
}

fn load_one(dir: &Path, file: &ManifestFile) -> Result<Delivery, FixtureError> {
    let path = dir.join(&file.path);
    let bytes = read(&path)?;
    let mut delivery = Delivery {
        path: path.clone(),
        event: file.x_github_event.clone(),
        action: file.action.clone(),
        delivery_id: file
            .x_github_delivery
            .clone()
            .unwrap_or_else(|| stable_delivery_id(&file.path)),
        body: Vec::new(),
        headers: Vec::new(),
    };
    match file.format.as_str() {
        "payload" => delivery.body = bytes,
        "probot-event" => {
            let value: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| invalid(&path, e))?;
            let payload = value
                .get("payload")
                .ok_or_else(|| invalid(&path, "no 'payload' key"))?;
            delivery.body = serde_json::to_vec(payload).map_err(|e| invalid(&path, e))?;
        }
        "captured-delivery" => {
            #[derive(Deserialize)]
            struct Captured {
                headers: std::collections::BTreeMap<String, String>,
                body_raw_base64: String,
            }
            let captured: Captured =
                serde_json::from_slice(&bytes).map_err(|e| invalid(&path, e))?;
            delivery.body = base64::engine::general_purpose::STANDARD
                .decode(captured.body_raw_base64.trim())
                .map_err(|e| invalid(&path, e))?;
            for name in [
                "x-github-hook-id",
                "x-github-hook-installation-target-type",
                "x-github-hook-installation-target-id",
            ] {
                if let Some(v) = captured.headers.get(name) {
                    delivery.headers.push((name.to_string(), v.clone()));
                }
            }
        }
        other => return Err(invalid(&path, format!("unknown fixture format {other:?}"))),
    }
    Ok(delivery)
}

/// Synthetic load shaped like the real thing: the real `workflow_job` deliveries, cycled and
/// each given its own job id (from `first_id` up), padded with trailing whitespace to at least
/// `min_bytes`. Returns `(partition key, body)` pairs.
pub fn rekeyed_workflow_jobs(
    dir: &Path,
    count: usize,
    first_id: u64,
    min_bytes: usize,
) -> Result<Vec<(String, Vec<u8>)>, FixtureError> {
    let mut templates = Vec::new();
    for d in load(dir)?.into_iter().filter(|d| d.event == "workflow_job") {
        let value: serde_json::Value =
            serde_json::from_slice(&d.body).map_err(|e| invalid(&d.path, e))?;
        templates.push((d.path, value));
    }
    if templates.is_empty() {
        return Err(invalid(dir, "no workflow_job fixtures"));
    }
    (0..count)
        .map(|i| {
            let (path, template) = &templates[i % templates.len()];
            let mut v = template.clone();
            let id = first_id + i as u64;
            v["workflow_job"]["id"] = serde_json::json!(id);
            let repo = v["repository"]["full_name"]
                .as_str()
                .unwrap_or("unknown/unknown")
                .to_string();
            let mut body = serde_json::to_vec_pretty(&v).map_err(|e| invalid(path, e))?;
            if body.len() < min_bytes {
                body.resize(min_bytes, b' ');
            }
            Ok((format!("{repo}/{id}"), body))
        })
        .collect()
}

/// The fixtures folder next to this repository (`../shared/fixtures/github`), unless
/// `HUDSTREAM_FIXTURES` names another.
pub fn default_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("HUDSTREAM_FIXTURES") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/github")
}

/// Every fixture of [`default_dir`], loaded once per process (tests read them many times).
/// Panics if they cannot be loaded: for tests and benchmarks, whose input they are.
pub fn cached() -> &'static [Delivery] {
    static ALL: std::sync::LazyLock<Vec<Delivery>> = std::sync::LazyLock::new(|| {
        load(&default_dir()).unwrap_or_else(|e| panic!("loading the real fixtures: {e}"))
    });
    &ALL
}

/// The cached fixtures of one event type.
pub fn of_event(event: &str) -> Vec<&'static Delivery> {
    cached().iter().filter(|d| d.event == event).collect()
}

/// The cached fixture whose path ends with `name` (e.g. `workflow_run/completed.json`).
pub fn named(name: &str) -> &'static Delivery {
    cached()
        .iter()
        .find(|d| d.path.ends_with(name))
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

/// The deliveries derived from real ones that the golden rows (`projections/testdata/`) and the
/// fill-and-replay suite add to the fixtures: torchci's disabled-test issue for a test that is
/// flaky in the fixture reports, an `UNSTABLE` issue for one of the fixtures' jobs, and the real
/// push of 6113728f to master as a push of the CodeQL jobs' commit to main with a completed
/// CodeQL run of it (so the trunk-health queries find a branch commit with jobs and runs).
pub fn derived_deliveries(dir: &Path) -> Result<Vec<Delivery>, FixtureError> {
    let mut out = vec![
        disabled_test_issue(
            dir,
            "Codertocat/Hello-World",
            5,
            "test_foo",
            "__main__.TestFoo",
            "linux, rocm",
        )?,
        unstable_job_issue(dir, "Codertocat/Hello-World", 6, "CodeQL / linters")?,
    ];
    let path = dir.join("push/with-new-branch.payload.json");
    let mut body: serde_json::Value =
        serde_json::from_slice(&read(&path)?).map_err(|e| invalid(&path, e))?;
    let sha = "3484a3fb816e0859fd6e1cea078d76385ff50625";
    body["ref"] = "refs/heads/main".into();
    body["after"] = sha.into();
    body["head_commit"]["id"] = sha.into();
    body["head_commit"]["timestamp"] = "2021-08-05T10:30:00Z".into();
    body["commits"][0]["id"] = sha.into();
    body["commits"][0]["timestamp"] = "2021-08-05T10:30:00Z".into();
    out.push(Delivery {
        body: serde_json::to_vec(&body).map_err(|e| invalid(&path, e))?,
        path,
        event: "push".into(),
        action: None,
        delivery_id: "derived-push-main".into(),
        headers: Vec::new(),
    });
    // A real completed workflow run of that commit, as a run of Hello-World's main.
    let path = dir.join("workflow_run/completed.with-pull-requests.payload.json");
    let mut body: serde_json::Value =
        serde_json::from_slice(&read(&path)?).map_err(|e| invalid(&path, e))?;
    body["repository"]["full_name"] = "Codertocat/Hello-World".into();
    body["repository"]["name"] = "Hello-World".into();
    body["repository"]["owner"]["login"] = "Codertocat".into();
    body["workflow_run"]["id"] = 2202229078_i64.into();
    body["workflow_run"]["head_sha"] = sha.into();
    body["workflow_run"]["head_branch"] = "main".into();
    body["workflow_run"]["name"] = "CodeQL".into();
    out.push(Delivery {
        body: serde_json::to_vec(&body).map_err(|e| invalid(&path, e))?,
        path,
        event: "workflow_run".into(),
        action: Some("completed".into()),
        delivery_id: "derived-run-main".into(),
        headers: Vec::new(),
    });
    Ok(out)
}

/// torchci's disabled-test issue, as its flaky-test bot files one (title `DISABLED test
/// (suite)`, a `Platforms:` line, labels `skipped` and `module: flaky-tests`): the real
/// `issues/pytorch-test-infra/issues.opened.json` delivery of `dir` with that title, body and
/// labels, for issue `number` of `repository`. There is no real one among the fixtures; the
/// local stack and the tests of the disabled-tests view use this.
pub fn disabled_test_issue(
    dir: &Path,
    repository: &str,
    number: i64,
    test: &str,
    suite: &str,
    platforms: &str,
) -> Result<Delivery, FixtureError> {
    titled_issue(
        dir,
        repository,
        number,
        &format!("DISABLED {test} ({suite})"),
        &format!(
            "Platforms: {platforms}\n\nThis test was disabled because it is failing in CI. See [recent examples](https://hud.pytorch.org/flakytest?name={test}&suite={suite}) and the most recent trunk workflow logs."
        ),
        &["skipped", "module: flaky-tests"],
        "disabled-test",
    )
}

/// torchci's unstable-job issue, `UNSTABLE <job name>`, opened on `repository`: the same real
/// `issues.opened` delivery with its title, body and labels replaced.
pub fn unstable_job_issue(
    dir: &Path,
    repository: &str,
    number: i64,
    job: &str,
) -> Result<Delivery, FixtureError> {
    titled_issue(
        dir,
        repository,
        number,
        &format!("UNSTABLE {job}"),
        "The job is unstable: its failures do not block pull requests nor count against trunk.",
        &["unstable", "module: ci"],
        "unstable-job",
    )
}

/// The real `issues.opened` delivery of pytorch/test-infra, as issue `number` of `repository`
/// with `title`, `body` and `labels`.
fn titled_issue(
    dir: &Path,
    repository: &str,
    number: i64,
    title: &str,
    body: &str,
    labels: &[&str],
    kind: &str,
) -> Result<Delivery, FixtureError> {
    let path = dir.join("issues/pytorch-test-infra/issues.opened.json");
    let mut delivery: serde_json::Value =
        serde_json::from_slice(&read(&path)?).map_err(|e| invalid(&path, e))?;
    let Some(issue) = delivery.get_mut("issue").filter(|i| i.is_object()) else {
        return Err(invalid(&path, "no issue object"));
    };
    issue["number"] = number.into();
    issue["title"] = title.into();
    issue["body"] = body.into();
    issue["labels"] = labels
        .iter()
        .enumerate()
        .map(|(i, name)| serde_json::json!({"id": i + 1, "name": name, "color": "ededed", "default": false}))
        .collect();
    issue["html_url"] = format!("https://github.com/{repository}/issues/{number}").into();
    delivery["repository"]["full_name"] = repository.into();
    let body = serde_json::to_vec(&delivery).map_err(|e| invalid(&path, e))?;
    Ok(Delivery {
        path,
        event: "issues".into(),
        action: Some("opened".into()),
        delivery_id: format!("{kind}-{}-{number}", repository.replace('/', "-")),
        body,
        headers: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_all_236_real_deliveries() {
        let deliveries = load(&default_dir()).expect("fixtures load");
        assert_eq!(deliveries.len(), 236);
        let captured = deliveries.iter().filter(|d| !d.headers.is_empty()).count();
        assert_eq!(captured, 16);
        for d in &deliveries {
            let v: serde_json::Value = serde_json::from_slice(&d.body)
                .unwrap_or_else(|e| panic!("{}: {e}", d.path.display()));
            assert!(v.is_object(), "{}", d.path.display());
        }
        let mut ids: Vec<_> = deliveries.iter().map(|d| d.delivery_id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 236, "delivery ids are unique");
    }
}
