//! `github.issues` → `hud.issue.v1` (and `hud.label_event.v1` for labeled/unlabeled), and
//! `github.issue_comment` → `hud.issue_comment.v1`.
//!
//! Versions: a deletion is terminal and leads (1 bit), then `updated_at`, then (issues) closed
//! over open, then a content hash. The HUD reads issues to mark jobs unstable or disabled.

use serde::Deserialize;

use hudstream_schemas::wire::{Outputs, RecordSink};

use hudstream_schemas::issue::{Issue, IssueComment};
use hudstream_schemas::pull_request::LabelEvent;
use hudstream_schemas::topics::{GITHUB_ISSUES, GITHUB_ISSUE_COMMENT};

use crate::raw::{label_event, Label, Login, Named, NoLabel};
use crate::timestamp::{parse_millis, BadTimestamp};
use hudstream_schemas::version::{pack, seconds};

#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("not an {event} delivery: {reason}")]
    Shape { event: &'static str, reason: String },
    #[error("no repository.full_name")]
    NoRepository,
    #[error(transparent)]
    NoLabel(#[from] NoLabel),
    #[error(transparent)]
    Timestamp(#[from] BadTimestamp),
}

#[derive(Deserialize)]
struct RawIssue {
    number: i64,
    id: Option<i64>,
    title: Option<String>,
    body: Option<String>,
    state: Option<String>,
    labels: Option<Vec<Label>>,
    user: Option<Login>,
    author_association: Option<String>,
    pull_request: Option<serde::de::IgnoredAny>,
    created_at: Option<String>,
    updated_at: Option<String>,
    closed_at: Option<String>,
    html_url: Option<String>,
}

#[derive(Deserialize)]
struct IssuesDelivery {
    action: Option<String>,
    issue: RawIssue,
    repository: Option<Named>,
    label: Option<Label>,
}

#[derive(Deserialize)]
struct RawComment {
    id: i64,
    body: Option<String>,
    user: Option<Login>,
    author_association: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    html_url: Option<String>,
    issue_url: Option<String>,
}

#[derive(Deserialize)]
struct CommentDelivery {
    action: Option<String>,
    issue: RawIssue,
    comment: RawComment,
    repository: Option<Named>,
}

fn repo(r: Option<Named>) -> Result<String, NormalizeError> {
    r.and_then(|r| r.full_name)
        .filter(|n| n.contains('/'))
        .ok_or(NormalizeError::NoRepository)
}

/// What one `issues` delivery derives.
#[derive(Debug, Clone, PartialEq)]
pub struct DerivedIssue {
    pub issue: Issue,
    pub label_event: Option<LabelEvent>,
}

/// Normalizes one raw `issues` delivery body. Pure.
pub fn normalize_issue(payload: &[u8]) -> Result<DerivedIssue, NormalizeError> {
    let d: IssuesDelivery = serde_json::from_slice(payload).map_err(|e| NormalizeError::Shape {
        event: "issues",
        reason: e.to_string(),
    })?;
    let raw = d.issue;
    let action = d.action.unwrap_or_default();
    let updated_at = parse_millis("issue.updated_at", raw.updated_at.as_deref())?;
    let mut issue = Issue {
        version: 0,
        repository_full_name: repo(d.repository)?,
        number: raw.number,
        id: raw.id.unwrap_or(0),
        title: raw.title.unwrap_or_default(),
        body: raw.body.unwrap_or_default(),
        state: raw.state.unwrap_or_default(),
        labels: raw
            .labels
            .unwrap_or_default()
            .into_iter()
            .filter_map(|l| l.name)
            .collect(),
        author_login: raw.user.and_then(|u| u.login).unwrap_or_default(),
        author_association: raw.author_association.unwrap_or_default(),
        is_pull_request: raw.pull_request.is_some(),
        deleted: action == "deleted",
        created_at: parse_millis("issue.created_at", raw.created_at.as_deref())?,
        updated_at,
        closed_at: parse_millis("issue.closed_at", raw.closed_at.as_deref())?,
        html_url: raw.html_url.unwrap_or_default(),
    };
    issue.version = pack(
        &[
            (issue.deleted as u64, 1),
            (seconds(updated_at.or(issue.created_at)), 32),
            ((issue.state == "closed") as u64, 1),
        ],
        &issue,
    );
    let label_event = label_event(
        "issue",
        &issue.repository_full_name,
        issue.number,
        action,
        d.label,
        updated_at,
    )?;
    Ok(DerivedIssue { issue, label_event })
}

/// Normalizes one raw `issue_comment` delivery body. Pure.
pub fn normalize_comment(payload: &[u8]) -> Result<IssueComment, NormalizeError> {
    let d: CommentDelivery =
        serde_json::from_slice(payload).map_err(|e| NormalizeError::Shape {
            event: "issue_comment",
            reason: e.to_string(),
        })?;
    let c = d.comment;
    let mut comment = IssueComment {
        version: 0,
        repository_full_name: repo(d.repository)?,
        number: d.issue.number,
        id: c.id,
        body: c.body.unwrap_or_default(),
        author_login: c.user.and_then(|u| u.login).unwrap_or_default(),
        author_association: c.author_association.unwrap_or_default(),
        is_pull_request: d.issue.pull_request.is_some(),
        deleted: d.action.as_deref() == Some("deleted"),
        created_at: parse_millis("comment.created_at", c.created_at.as_deref())?,
        updated_at: parse_millis("comment.updated_at", c.updated_at.as_deref())?,
        html_url: c.html_url.unwrap_or_default(),
        issue_url: c.issue_url.unwrap_or_default(),
    };
    comment.version = pack(
        &[
            (comment.deleted as u64, 1),
            (seconds(comment.updated_at.or(comment.created_at)), 32),
        ],
        &comment,
    );
    Ok(comment)
}

impl Outputs for DerivedIssue {
    fn each<S: RecordSink>(self, sink: &mut S) {
        (self.issue, self.label_event).each(sink);
    }
}

crate::processor! {
    /// The `process.issues` stage.
    pub struct IssuesProcessor {
        stage: "process.issues",
        input: GITHUB_ISSUES,
        derive: normalize_issue,
    }
}

crate::processor! {
    /// The `process.issue_comment` stage.
    pub struct IssueCommentProcessor {
        stage: "process.issue_comment",
        input: GITHUB_ISSUE_COMMENT,
        derive: normalize_comment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hudstream_ingest::fixtures;
    use hudstream_schemas::wire::RecordType;
    use proptest::prelude::*;

    fn of(event: &str) -> Vec<&'static fixtures::Delivery> {
        fixtures::of_event(event)
    }

    #[test]
    fn every_real_issues_and_issue_comment_fixture_normalizes() {
        let issues = of("issues");
        assert_eq!(issues.len(), 46);
        for d in issues {
            let derived =
                normalize_issue(&d.body).unwrap_or_else(|e| panic!("{}: {e}", d.path.display()));
            let body: serde_json::Value = serde_json::from_slice(&d.body).expect("json");
            assert_eq!(
                derived.label_event.is_some(),
                matches!(body["action"].as_str(), Some("labeled" | "unlabeled")),
                "{}",
                d.path.display()
            );
            assert_eq!(derived.issue.deleted, body["action"] == "deleted");
        }
        let comments = of("issue_comment");
        assert!(!comments.is_empty());
        for d in comments {
            let c =
                normalize_comment(&d.body).unwrap_or_else(|e| panic!("{}: {e}", d.path.display()));
            assert!(c.id > 0 && c.version > 0, "{}", d.path.display());
        }
    }

    #[test]
    fn issue_fields_and_labels() {
        let d = of("issues")
            .into_iter()
            .find(|d| d.path.ends_with("issues/labeled.payload.json"))
            .expect("fixture");
        let derived = normalize_issue(&d.body).expect("normalizes");
        assert_eq!(derived.issue.number, 1);
        assert_eq!(derived.issue.labels, vec!["bug"]);
        let event = derived.label_event.expect("label event");
        assert_eq!(
            (event.kind.as_str(), event.label_name.as_str()),
            ("issue", "bug")
        );
        let milestoned_pr = of("issues")
            .into_iter()
            .find(|d| d.path.ends_with("issues/milestoned.payload.json"))
            .expect("fixture");
        assert!(
            normalize_issue(&milestoned_pr.body)
                .expect("normalizes")
                .issue
                .is_pull_request
        );
    }

    #[test]
    fn a_deletion_outranks_any_update() {
        let d = of("issues")
            .into_iter()
            .find(|d| d.path.ends_with("issues/deleted.payload.json"))
            .expect("fixture");
        let deleted = normalize_issue(&d.body).expect("normalizes").issue;
        for other in of("issues") {
            let issue = normalize_issue(&other.body).expect("normalizes").issue;
            if issue.key() == deleted.key() && !issue.deleted {
                assert!(deleted.version > issue.version);
            }
        }
    }

    proptest! {
        #[test]
        fn any_order_with_duplicates_converges_per_issue(seed in any::<u64>(), dups in proptest::collection::vec(0usize..46, 0..8)) {
            use rand::{seq::SliceRandom, SeedableRng};
            use std::collections::BTreeMap;
            let all: Vec<Issue> = of("issues").iter().map(|d| normalize_issue(&d.body).expect("normalizes").issue).collect();
            let mut seq: Vec<&Issue> = all.iter().collect();
            for i in dups { seq.push(&all[i % all.len()]); }
            seq.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            let fold = |items: &[&Issue]| {
                let mut m: BTreeMap<String, Issue> = BTreeMap::new();
                for i in items {
                    if m.get(&i.key()).is_none_or(|w| i.version > w.version) { m.insert(i.key(), (*i).clone()); }
                }
                m
            };
            let in_order: Vec<&Issue> = all.iter().collect();
            prop_assert_eq!(fold(&seq), fold(&in_order));
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = normalize_issue(&bytes);
            let _ = normalize_comment(&bytes);
        }
    }
}
