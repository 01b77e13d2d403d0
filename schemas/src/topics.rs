//! The topic catalogue: every topic hudstream reads or writes, with its key and value.
//!
//! Raw topics hold GitHub's bytes exactly as delivered (`github.<event>`); derived topics hold
//! Avro records in single-object encoding (`hud.<entity>.v<major>`); one dead-letter topic holds
//! the records a stage could not handle, unchanged, with the reason in a header. A deployment
//! may put a prefix in front of every name (`kafka.topic_prefix`) to share a cluster.

/// What a topic holds; decides how `hudstream topics` describes it and what retention suits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// GitHub's raw webhook bodies: the immutable log everything else is derived from.
    Raw,
    /// Avro records derived from the raw log; rebuildable by replay.
    Derived,
    /// Records a stage set aside, with the reason.
    DeadLetter,
}

/// One topic of the catalogue.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub kind: TopicKind,
    /// What the record key is; every event of one entity has the same key, so it stays in order
    /// within one partition.
    pub key: &'static str,
    pub value: &'static str,
}

/// Raw `workflow_job` deliveries.
pub const GITHUB_WORKFLOW_JOB: &str = "github.workflow_job";
/// Raw deliveries of event types the gateway does not route anywhere more specific.
pub const GITHUB_OTHER: &str = "github.other";
/// Raw out-of-tree CI results (`POST /oot/results`), the torchci `{trusted, untrusted}` body.
pub const OOT_RESULTS: &str = "oot.results";
/// Raw CircleCI webhooks (`POST /circleci/webhook`).
pub const CIRCLECI_WEBHOOK: &str = "circleci.webhook";
/// Normalized, versioned jobs (`hudstream.WorkflowJob`).
pub const HUD_WORKFLOW_JOB_V1: &str = "hud.workflow_job.v1";
/// Normalized, versioned workflow runs (`hudstream.WorkflowRun`).
pub const HUD_WORKFLOW_RUN_V1: &str = "hud.workflow_run.v1";
/// Normalized, versioned pull requests (`hudstream.PullRequest`).
pub const HUD_PULL_REQUEST_V1: &str = "hud.pull_request.v1";
/// Label added/removed on a PR or issue (`hudstream.LabelEvent`).
pub const HUD_LABEL_EVENT_V1: &str = "hud.label_event.v1";
/// Commits as pushed to a ref (`hudstream.Commit`).
pub const HUD_COMMIT_V1: &str = "hud.commit.v1";
/// Ref moves, creations and deletions (`hudstream.RefUpdate`).
pub const HUD_REF_UPDATE_V1: &str = "hud.ref_update.v1";
/// Out-of-tree CI callbacks, flattened (`hudstream.OotResult`).
pub const HUD_OOT_RESULT_V1: &str = "hud.oot_result.v1";
/// Issues (`hudstream.Issue`).
pub const HUD_ISSUE_V1: &str = "hud.issue.v1";
/// Issue and PR comments (`hudstream.IssueComment`).
pub const HUD_ISSUE_COMMENT_V1: &str = "hud.issue_comment.v1";
/// Check runs (`hudstream.CheckRun`).
pub const HUD_CHECK_RUN_V1: &str = "hud.check_run.v1";
/// Jobs' logs as stored by the log fetcher or an upload (`hudstream.JobLog`).
pub const HUD_JOB_LOG_V1: &str = "hud.job_log.v1";
/// The rule engine's verdicts on jobs' logs (`hudstream.JobClassification`).
pub const HUD_JOB_CLASSIFICATION_V1: &str = "hud.job_classification.v1";
/// Raw `issues` deliveries.
pub const GITHUB_ISSUES: &str = "github.issues";
/// Raw `issue_comment` deliveries.
pub const GITHUB_ISSUE_COMMENT: &str = "github.issue_comment";
/// Raw `check_run` deliveries.
pub const GITHUB_CHECK_RUN: &str = "github.check_run";
/// Raw `push` deliveries.
pub const GITHUB_PUSH: &str = "github.push";
/// Raw `workflow_run` deliveries.
pub const GITHUB_WORKFLOW_RUN: &str = "github.workflow_run";
/// Raw `pull_request` deliveries.
pub const GITHUB_PULL_REQUEST: &str = "github.pull_request";
/// Dead letters of every stage.
pub const DEAD_LETTERS: &str = "hud.dead_letters.v1";

/// GitHub event types that have a raw topic of their own (`github.<event>`). Anything else goes
/// to [`GITHUB_OTHER`]; no event is dropped.
pub const ROUTED_GITHUB_EVENTS: &[&str] = &[
    "workflow_job",
    "workflow_run",
    "check_run",
    "check_suite",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "push",
    "issues",
    "issue_comment",
    "status",
    "create",
    "delete",
    "release",
    "installation",
    "ping",
];

/// The raw topic a GitHub event type is appended to.
pub fn raw_topic_for_event(event: &str) -> String {
    if ROUTED_GITHUB_EVENTS.contains(&event) {
        format!("github.{event}")
    } else {
        GITHUB_OTHER.to_string()
    }
}

/// Every topic hudstream creates, in catalogue order.
pub fn catalogue() -> Vec<TopicSpec> {
    let mut topics: Vec<TopicSpec> = ROUTED_GITHUB_EVENTS
        .iter()
        .map(|event| TopicSpec {
            name: format!("github.{event}"),
            kind: TopicKind::Raw,
            key: "{owner}/{repo}/{entity id} (see README, topics)",
            value: "GitHub webhook body, byte for byte as delivered",
        })
        .collect();
    topics.push(TopicSpec {
        name: GITHUB_OTHER.to_string(),
        kind: TopicKind::Raw,
        key: "{owner}/{repo} or the delivery id",
        value: "GitHub webhook body of any other event type, byte for byte",
    });
    topics.push(TopicSpec {
        name: OOT_RESULTS.to_string(),
        kind: TopicKind::Raw,
        key: "{verified_repo}/{delivery_id}/{workflow name}/{job_name}/{check_run_id} (torchci's dynamoKey)",
        value: "the OOT result body {trusted, untrusted}, byte for byte",
    });
    topics.push(TopicSpec {
        name: CIRCLECI_WEBHOOK.to_string(),
        kind: TopicKind::Raw,
        key: "{project slug}/{workflow id}, else the event id",
        value: "CircleCI webhook body, byte for byte",
    });
    topics.push(TopicSpec {
        name: HUD_WORKFLOW_JOB_V1.to_string(),
        kind: TopicKind::Derived,
        key: "{owner}/{repo}/{job id}",
        value: "hudstream.WorkflowJob (Avro single-object encoding)",
    });
    topics.push(TopicSpec {
        name: HUD_WORKFLOW_RUN_V1.to_string(),
        kind: TopicKind::Derived,
        key: "{owner}/{repo}/{run id}",
        value: "hudstream.WorkflowRun (Avro single-object encoding)",
    });
    topics.push(TopicSpec {
        name: HUD_PULL_REQUEST_V1.to_string(),
        kind: TopicKind::Derived,
        key: "{owner}/{repo}/{number}",
        value: "hudstream.PullRequest (Avro single-object encoding)",
    });
    topics.push(TopicSpec {
        name: HUD_LABEL_EVENT_V1.to_string(),
        kind: TopicKind::Derived,
        key: "{owner}/{repo}/{number}/{label}",
        value: "hudstream.LabelEvent (Avro single-object encoding)",
    });
    topics.push(TopicSpec {
        name: HUD_COMMIT_V1.to_string(),
        kind: TopicKind::Derived,
        key: "{owner}/{repo}/{ref}/{sha}",
        value: "hudstream.Commit (Avro single-object encoding)",
    });
    topics.push(TopicSpec {
        name: HUD_REF_UPDATE_V1.to_string(),
        kind: TopicKind::Derived,
        key: "{owner}/{repo}/{ref}",
        value: "hudstream.RefUpdate (Avro single-object encoding)",
    });
    topics.push(TopicSpec {
        name: HUD_OOT_RESULT_V1.to_string(),
        kind: TopicKind::Derived,
        key: "{verified_repo}/{delivery_id}/{workflow_name}/{job_name}/{check_run_id} (dynamoKey)",
        value: "hudstream.OotResult (Avro single-object encoding); merge callbacks field by field",
    });
    for (name, key, value) in [
        (
            HUD_ISSUE_V1,
            "{owner}/{repo}/{number}",
            "hudstream.Issue (Avro single-object encoding)",
        ),
        (
            HUD_ISSUE_COMMENT_V1,
            "{owner}/{repo}/{number}/{comment id}",
            "hudstream.IssueComment (Avro single-object encoding)",
        ),
        (
            HUD_CHECK_RUN_V1,
            "{owner}/{repo}/{check run id}",
            "hudstream.CheckRun (Avro single-object encoding)",
        ),
        (
            HUD_JOB_LOG_V1,
            "{owner}/{repo}/{job id}",
            "hudstream.JobLog (Avro single-object encoding)",
        ),
        (
            HUD_JOB_CLASSIFICATION_V1,
            "{owner}/{repo}/{job id}",
            "hudstream.JobClassification (Avro single-object encoding)",
        ),
    ] {
        topics.push(TopicSpec {
            name: name.to_string(),
            kind: TopicKind::Derived,
            key,
            value,
        });
    }
    topics.push(TopicSpec {
        name: DEAD_LETTERS.to_string(),
        kind: TopicKind::DeadLetter,
        key: "the failed record's key",
        value: "the failed record's value, unchanged; reason in headers",
    });
    topics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_routed_event_has_its_own_topic_and_unknown_events_go_to_the_catch_all() {
        assert_eq!(raw_topic_for_event("workflow_job"), GITHUB_WORKFLOW_JOB);
        assert_eq!(raw_topic_for_event("pull_request"), "github.pull_request");
        assert_eq!(raw_topic_for_event("marketplace_purchase"), GITHUB_OTHER);
        let names: Vec<String> = catalogue().into_iter().map(|t| t.name).collect();
        for event in ROUTED_GITHUB_EVENTS {
            assert!(names.contains(&raw_topic_for_event(event)));
        }
        assert!(names.contains(&GITHUB_OTHER.to_string()));
    }

    #[test]
    fn topic_names_are_unique() {
        let mut names: Vec<String> = catalogue().into_iter().map(|t| t.name).collect();
        let before = names.len();
        names.sort();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
