//! `github.pull_request` → `hud.pull_request.v1` (the PR's state) and, for `labeled` and
//! `unlabeled`, `hud.label_event.v1` (torchci's `pull_label_event`).
//!
//! GitHub's `updated_at` moves with every change, so it leads the version:
//!
//! ```text
//! bits 31-62  updated_at, Unix seconds
//! bits 29-30  open 0 < closed 1 < merged 2 (two deliveries in one second: the later state wins)
//! bits 0-28   content hash
//! ```
//!
//! Limit (documented, not hidden): `updated_at` has one-second resolution, so a PR reopened in
//! the same second it was closed converges on "closed" until its next update.

use serde::Deserialize;

use hudstream_schemas::wire::{Outputs, RecordSink};

use hudstream_schemas::pull_request::{LabelEvent, PullRequest};
use hudstream_schemas::topics::GITHUB_PULL_REQUEST;

use crate::raw::{label_event, Label, Login, Named, NoLabel};
use crate::timestamp::{parse_millis, BadTimestamp};
use hudstream_schemas::version::{pack, seconds};

#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("not a pull_request delivery: {0}")]
    Shape(String),
    #[error("no repository: neither repository.full_name nor pull_request.base.repo.full_name")]
    NoRepository,
    #[error("pull_request has no created_at")]
    NoCreatedAt,
    #[error(transparent)]
    NoLabel(#[from] NoLabel),
    #[error(transparent)]
    Timestamp(#[from] BadTimestamp),
}

#[derive(Deserialize)]
struct Delivery {
    action: Option<String>,
    pull_request: RawPr,
    repository: Option<Named>,
    label: Option<Label>,
}

#[derive(Deserialize, Default)]
struct GitRef {
    sha: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    repo: Option<Named>,
}

#[derive(Deserialize)]
struct RawPr {
    number: i64,
    id: Option<i64>,
    node_id: Option<String>,
    state: Option<String>,
    draft: Option<bool>,
    merged: Option<bool>,
    locked: Option<bool>,
    title: Option<String>,
    body: Option<String>,
    user: Option<Login>,
    author_association: Option<String>,
    labels: Option<Vec<Label>>,
    head: Option<GitRef>,
    base: Option<GitRef>,
    merge_commit_sha: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    closed_at: Option<String>,
    merged_at: Option<String>,
    html_url: Option<String>,
}

/// What one delivery derives: the PR's state, and a label event for (un)labeling.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    pub pull_request: PullRequest,
    pub label_event: Option<LabelEvent>,
}

/// Normalizes one raw `pull_request` delivery body. Pure: same bytes, same records.
pub fn normalize(payload: &[u8]) -> Result<Derived, NormalizeError> {
    let delivery: Delivery =
        serde_json::from_slice(payload).map_err(|e| NormalizeError::Shape(e.to_string()))?;
    let raw = delivery.pull_request;
    let base = raw.base.unwrap_or_default();
    let head = raw.head.unwrap_or_default();
    let repository_full_name = delivery
        .repository
        .and_then(|r| r.full_name)
        .or_else(|| base.repo.as_ref().and_then(|r| r.full_name.clone()))
        .filter(|n| n.contains('/'))
        .ok_or(NormalizeError::NoRepository)?;
    let updated_at = parse_millis("pull_request.updated_at", raw.updated_at.as_deref())?;
    let mut pr = PullRequest {
        version: 0,
        repository_full_name,
        number: raw.number,
        id: raw.id.unwrap_or(0),
        node_id: raw.node_id.unwrap_or_default(),
        state: raw.state.unwrap_or_default(),
        draft: raw.draft.unwrap_or(false),
        merged: raw.merged.unwrap_or(false),
        locked: raw.locked.unwrap_or(false),
        title: raw.title.unwrap_or_default(),
        body: raw.body.unwrap_or_default(),
        author_login: raw.user.and_then(|u| u.login).unwrap_or_default(),
        author_association: raw.author_association.unwrap_or_default(),
        labels: raw
            .labels
            .unwrap_or_default()
            .into_iter()
            .filter_map(|l| l.name)
            .collect(),
        head_sha: head.sha.unwrap_or_default(),
        head_ref: head.git_ref.unwrap_or_default(),
        head_repository_full_name: head.repo.and_then(|r| r.full_name).unwrap_or_default(),
        base_sha: base.sha.unwrap_or_default(),
        base_ref: base.git_ref.unwrap_or_default(),
        merge_commit_sha: raw.merge_commit_sha.unwrap_or_default(),
        created_at: parse_millis("pull_request.created_at", raw.created_at.as_deref())?
            .ok_or(NormalizeError::NoCreatedAt)?,
        updated_at,
        closed_at: parse_millis("pull_request.closed_at", raw.closed_at.as_deref())?,
        merged_at: parse_millis("pull_request.merged_at", raw.merged_at.as_deref())?,
        html_url: raw.html_url.unwrap_or_default(),
    };
    pr.version = version(&pr);
    let action = delivery.action.unwrap_or_default();
    let label_event = label_event(
        "pull_request",
        &pr.repository_full_name,
        pr.number,
        action,
        delivery.label,
        updated_at,
    )?;
    Ok(Derived {
        pull_request: pr,
        label_event,
    })
}

/// The content-derived version of a PR (see the module docs for the layout).
pub fn version(pr: &PullRequest) -> i64 {
    let closure = if pr.merged || pr.merged_at.is_some() {
        2
    } else if pr.state == "closed" {
        1
    } else {
        0
    };
    let mut unversioned = pr.clone();
    unversioned.version = 0;
    pack(
        &[
            (seconds(pr.updated_at.or(Some(pr.created_at))), 32),
            (closure, 2),
        ],
        &unversioned,
    )
}

impl Outputs for Derived {
    fn each<S: RecordSink>(self, sink: &mut S) {
        (self.pull_request, self.label_event).each(sink);
    }
}

crate::processor! {
    /// The `process.pull_request` stage.
    pub struct PullRequestProcessor {
        stage: "process.pull_request",
        input: GITHUB_PULL_REQUEST,
        derive: normalize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hudstream_ingest::fixtures;
    use hudstream_schemas::wire::RecordType;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    // Loaded once: property tests run their bodies hundreds of times.
    static DERIVED: std::sync::LazyLock<Vec<Derived>> = std::sync::LazyLock::new(|| {
        deliveries()
            .iter()
            .map(|d| normalize(&d.body).expect("normalizes"))
            .collect()
    });

    fn deliveries() -> Vec<&'static fixtures::Delivery> {
        fixtures::of_event("pull_request")
    }

    fn by_name(name: &str) -> Derived {
        normalize(&fixtures::named(name).body).expect("normalizes")
    }

    #[test]
    fn every_real_pull_request_fixture_normalizes_including_ghes_and_github_ae() {
        let all = deliveries();
        assert!(all.len() >= 50, "{}", all.len());
        assert!(all
            .iter()
            .any(|d| d.path.to_string_lossy().contains("ghes-35")));
        assert!(all
            .iter()
            .any(|d| d.path.to_string_lossy().contains("github.ae")));
        for d in all {
            let derived =
                normalize(&d.body).unwrap_or_else(|e| panic!("{}: {e}", d.path.display()));
            assert!(derived.pull_request.version > 0, "{}", d.path.display());
            let body: serde_json::Value = serde_json::from_slice(&d.body).expect("json");
            let labeling = matches!(body["action"].as_str(), Some("labeled" | "unlabeled"));
            assert_eq!(
                derived.label_event.is_some(),
                labeling,
                "{}",
                d.path.display()
            );
        }
    }

    #[test]
    fn reads_state_refs_author_and_labels() {
        let d = by_name("pull_request/pytorch-test-infra/pull_request.labeled.json");
        let pr = &d.pull_request;
        assert_eq!(pr.number, 20);
        assert_eq!(pr.state, "open");
        assert!(!pr.head_sha.is_empty() && !pr.base_ref.is_empty() && !pr.author_login.is_empty());
        assert!(pr.labels.contains(&"ci/windows".to_string()));
        let event = d.label_event.expect("label event");
        assert_eq!(
            (
                event.label_name.as_str(),
                event.action.as_str(),
                event.kind.as_str()
            ),
            ("ci/windows", "labeled", "pull_request")
        );
        assert_eq!(
            event.key(),
            format!("{}/20/ci/windows", pr.repository_full_name)
        );
    }

    #[test]
    fn a_null_body_is_an_empty_string_and_merged_prs_say_so() {
        assert_eq!(
            by_name("pull_request/opened.with-null-body.json")
                .pull_request
                .body,
            ""
        );
        let merged = by_name("pull_request/cogni-git-review/pull_request.closed.json").pull_request;
        assert!(merged.merged && merged.merged_at.is_some() && merged.state == "closed");
    }

    #[test]
    fn the_closing_delivery_outranks_the_opening_one() {
        let opened = by_name("pull_request/cogni-git-review/pull_request.opened.json").pull_request;
        let synced =
            by_name("pull_request/cogni-git-review/pull_request.synchronize.json").pull_request;
        let closed = by_name("pull_request/cogni-git-review/pull_request.closed.json").pull_request;
        assert!(opened.version < synced.version && synced.version < closed.version);
    }

    proptest! {
        #[test]
        fn any_order_with_duplicates_converges_per_pr_and_per_label(seed in any::<u64>(), dups in proptest::collection::vec(0usize..60, 0..10)) {
            use rand::{seq::SliceRandom, SeedableRng};
            let all: &[Derived] = &DERIVED;
            let mut seq: Vec<&Derived> = all.iter().collect();
            for i in dups { seq.push(&all[i % all.len()]); }
            seq.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            let fold = |items: &[&Derived]| {
                let mut prs: BTreeMap<String, PullRequest> = BTreeMap::new();
                let mut labels: BTreeMap<String, LabelEvent> = BTreeMap::new();
                for d in items {
                    let p = &d.pull_request;
                    if prs.get(&p.key()).is_none_or(|w| p.version > w.version) { prs.insert(p.key(), p.clone()); }
                    if let Some(l) = &d.label_event {
                        if labels.get(&l.key()).is_none_or(|w| l.version > w.version) { labels.insert(l.key(), l.clone()); }
                    }
                }
                (prs, labels)
            };
            let in_order: Vec<&Derived> = all.iter().collect();
            prop_assert_eq!(fold(&seq), fold(&in_order));
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = normalize(&bytes);
        }
    }
}
