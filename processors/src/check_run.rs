//! `github.check_run` → `hud.check_run.v1`: one normalized [`CheckRun`] per delivery.
//!
//! Version: status rank (queued 1 < in_progress 2 < completed 3), then the latest timestamp
//! (started or completed), then a content hash.

use serde::Deserialize;

use hudstream_schemas::issue::CheckRun;
use hudstream_schemas::topics::GITHUB_CHECK_RUN;

use crate::raw::Named;
use crate::timestamp::{parse_millis, BadTimestamp};
use hudstream_schemas::version::{pack, seconds};

#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("not a check_run delivery: {0}")]
    Shape(String),
    #[error("no repository.full_name")]
    NoRepository,
    #[error(transparent)]
    Timestamp(#[from] BadTimestamp),
}

#[derive(Deserialize)]
struct Id {
    id: Option<i64>,
}

#[derive(Deserialize)]
struct Slug {
    slug: Option<String>,
}

#[derive(Deserialize)]
struct Number {
    number: Option<i64>,
}

#[derive(Deserialize)]
struct RawCheck {
    id: i64,
    name: Option<String>,
    head_sha: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    started_at: Option<String>,
    completed_at: Option<String>,
    check_suite: Option<Id>,
    app: Option<Slug>,
    external_id: Option<String>,
    pull_requests: Option<Vec<Number>>,
    html_url: Option<String>,
    details_url: Option<String>,
}

#[derive(Deserialize)]
struct Delivery {
    check_run: RawCheck,
    repository: Option<Named>,
}

/// The rank of a check run status in its lifecycle.
pub fn status_rank(status: &str) -> u64 {
    match status {
        "queued" | "requested" | "waiting" | "pending" => 1,
        "in_progress" => 2,
        "completed" => 3,
        _ => 0,
    }
}

/// Normalizes one raw `check_run` delivery body. Pure.
pub fn normalize(payload: &[u8]) -> Result<CheckRun, NormalizeError> {
    let d: Delivery =
        serde_json::from_slice(payload).map_err(|e| NormalizeError::Shape(e.to_string()))?;
    let c = d.check_run;
    let mut check = CheckRun {
        version: 0,
        repository_full_name: d
            .repository
            .and_then(|r| r.full_name)
            .filter(|n| n.contains('/'))
            .ok_or(NormalizeError::NoRepository)?,
        id: c.id,
        name: c.name.unwrap_or_default(),
        head_sha: c.head_sha.unwrap_or_default(),
        status: c.status.unwrap_or_default(),
        conclusion: c.conclusion.unwrap_or_default(),
        started_at: parse_millis("check_run.started_at", c.started_at.as_deref())?,
        completed_at: parse_millis("check_run.completed_at", c.completed_at.as_deref())?,
        check_suite_id: c.check_suite.and_then(|s| s.id).unwrap_or(0),
        app_slug: c.app.and_then(|a| a.slug).unwrap_or_default(),
        external_id: c.external_id.unwrap_or_default(),
        pull_request_numbers: c
            .pull_requests
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| p.number)
            .collect(),
        html_url: c.html_url.unwrap_or_default(),
        details_url: c.details_url.unwrap_or_default(),
    };
    let latest = check.completed_at.max(check.started_at);
    check.version = pack(
        &[(status_rank(&check.status), 3), (seconds(latest), 32)],
        &check,
    );
    Ok(check)
}

crate::processor! {
    /// The `process.check_run` stage.
    pub struct CheckRunProcessor {
        stage: "process.check_run",
        input: GITHUB_CHECK_RUN,
        derive: normalize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hudstream_ingest::fixtures;
    use hudstream_schemas::wire::RecordType;
    use proptest::prelude::*;

    #[test]
    fn every_real_check_run_fixture_normalizes_and_completed_outranks_created() {
        let all = fixtures::of_event("check_run");
        assert_eq!(all.len(), 16);
        let checks: Vec<CheckRun> = all
            .iter()
            .map(|d| normalize(&d.body).unwrap_or_else(|e| panic!("{}: {e}", d.path.display())))
            .collect();
        for c in &checks {
            assert!(c.id > 0 && !c.head_sha.is_empty());
        }
        for a in &checks {
            for b in &checks {
                if a.key() == b.key() && status_rank(&a.status) > status_rank(&b.status) {
                    assert!(
                        a.version > b.version,
                        "{} {} vs {}",
                        a.key(),
                        a.status,
                        b.status
                    );
                }
            }
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = normalize(&bytes);
        }
    }
}
