//! `github.workflow_job` / `github.workflow_run` → `hud.replication.v1`: when each job and run
//! was last written by a webhook, and by GitHub's API (a delivery marked `hudstream-origin` by
//! the reconciler or a backfill). Their own stages, beside the job and run processors, so those
//! stay functions of the body alone.
//!
//! A delivery without an id or a repository marks nothing here: its own processor dead-letters
//! it with the reason. One without any receipt time (no `received-at`, no record timestamp)
//! cannot say when, and marks nothing either.

use serde::Deserialize;

use hudstream_schemas::replication::{Replication, VIA_API, VIA_WEBHOOK};
use hudstream_schemas::topics::{GITHUB_WORKFLOW_JOB, GITHUB_WORKFLOW_RUN};

use crate::Receipt;

#[derive(Deserialize)]
struct Id {
    id: Option<i64>,
    url: Option<String>,
}

#[derive(Deserialize)]
struct Repository {
    full_name: Option<String>,
}

#[derive(Deserialize)]
struct Delivery {
    workflow_job: Option<Id>,
    workflow_run: Option<Id>,
    repository: Option<Repository>,
}

/// `owner/name` from an API url `…/repos/OWNER/REPO/…`.
fn repository_of_url(url: &str) -> Option<String> {
    let rest = url.split("/repos/").nth(1)?;
    let mut parts = rest.split('/');
    Some(format!("{}/{}", parts.next()?, parts.next()?))
}

fn mark(
    payload: &[u8],
    receipt: &Receipt,
    kind: &str,
) -> Result<Option<Replication>, std::convert::Infallible> {
    let Ok(d) = serde_json::from_slice::<Delivery>(payload) else {
        return Ok(None);
    };
    let object = if kind == "job" {
        d.workflow_job
    } else {
        d.workflow_run
    };
    let (Some(object), Some(at)) = (object, receipt.received_at_ms) else {
        return Ok(None);
    };
    let repository = d
        .repository
        .and_then(|r| r.full_name)
        .filter(|n| n.contains('/'))
        .or_else(|| object.url.as_deref().and_then(repository_of_url));
    let (Some(id), Some(repository_full_name)) = (object.id, repository) else {
        return Ok(None);
    };
    Ok(Some(Replication {
        version: at.max(0),
        repository_full_name,
        kind: kind.to_string(),
        id,
        via: if receipt.origin.is_some() {
            VIA_API
        } else {
            VIA_WEBHOOK
        }
        .to_string(),
        origin: receipt.origin.clone().unwrap_or_default(),
        at,
    }))
}

/// A job delivery's mark.
pub fn job_mark(
    payload: &[u8],
    receipt: &Receipt,
) -> Result<Option<Replication>, std::convert::Infallible> {
    mark(payload, receipt, "job")
}

/// A run delivery's mark.
pub fn run_mark(
    payload: &[u8],
    receipt: &Receipt,
) -> Result<Option<Replication>, std::convert::Infallible> {
    mark(payload, receipt, "run")
}

crate::receipt_processor! {
    /// The `process.replication.workflow_job` stage.
    pub struct JobReplicationProcessor {
        stage: "process.replication.workflow_job",
        input: GITHUB_WORKFLOW_JOB,
        derive: job_mark,
    }
}

crate::receipt_processor! {
    /// The `process.replication.workflow_run` stage.
    pub struct RunReplicationProcessor {
        stage: "process.replication.workflow_run",
        input: GITHUB_WORKFLOW_RUN,
        derive: run_mark,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_and_a_synthetic_delivery_mark_their_own_kind_of_write() {
        let body = br#"{"workflow_job": {"id": 7, "url": "https://api.github.com/repos/o/r/actions/jobs/7"}}"#;
        let webhook = Receipt {
            origin: None,
            received_at_ms: Some(1_000),
        };
        let m = job_mark(body, &webhook).unwrap().expect("a mark");
        assert_eq!(
            (
                m.repository_full_name.as_str(),
                m.id,
                m.via.as_str(),
                m.at,
                m.version
            ),
            ("o/r", 7, "webhook", 1_000, 1_000)
        );
        let backfill = Receipt {
            origin: Some("backfill".into()),
            received_at_ms: Some(2_000),
        };
        let m = job_mark(body, &backfill).unwrap().expect("a mark");
        assert_eq!((m.via.as_str(), m.origin.as_str()), ("api", "backfill"));
        // A run body marks nothing as a job; no time, no mark; garbage, no mark.
        assert_eq!(
            job_mark(br#"{"workflow_run": {"id": 1}}"#, &webhook).unwrap(),
            None
        );
        assert_eq!(job_mark(body, &Receipt::default()).unwrap(), None);
        assert_eq!(run_mark(b"not json", &webhook).unwrap(), None);
    }
}
