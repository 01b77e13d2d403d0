//! The topic catalogue: every topic hudstream reads or writes, with its key and value.
//!
//! Raw topics hold GitHub's bytes exactly as delivered (`github.<event>`); derived topics hold
//! Avro records in single-object encoding (`hud.<entity>.v<major>`); one dead-letter topic holds
//! the records a stage could not handle, unchanged, with the reason in a header. A deployment
//! may put a prefix in front of every name (`kafka.topic_prefix`) to share a cluster.
//! The derived topics come from the record types ([`crate::derived_topics`]): a new stream is a
//! new record type, and its topic is in the catalogue.

use crate::wire::RecordType;

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
    pub value: String,
}

/// The catalogue entry of a derived record type's topic.
pub fn derived<T: RecordType>() -> TopicSpec {
    TopicSpec {
        name: T::TOPIC.to_string(),
        kind: TopicKind::Derived,
        key: T::KEY,
        value: format!("{} (Avro single-object encoding)", T::NAME),
    }
}

/// Raw `workflow_job` deliveries.
pub const GITHUB_WORKFLOW_JOB: &str = "github.workflow_job";
/// Raw deliveries of event types the gateway does not route anywhere more specific.
pub const GITHUB_OTHER: &str = "github.other";
/// Raw out-of-tree CI results (`POST /oot/results`), the torchci `{trusted, untrusted}` body.
pub const OOT_RESULTS: &str = "oot.results";
/// Stored test reports (`PUT /tests/…`, or fetched from a run's artifacts): JSON pointers
/// into the test-report store (`hudstream_schemas::test_report::TestReportUpload`).
pub const TESTS_REPORTS: &str = "tests.reports";
/// Raw CircleCI webhooks (`POST /circleci/webhook`).
pub const CIRCLECI_WEBHOOK: &str = "circleci.webhook";
/// Normalized, versioned jobs (`hudstream.WorkflowJob`).
pub const HUD_WORKFLOW_JOB_V1: &str = <crate::workflow_job::WorkflowJob as RecordType>::TOPIC;
/// Normalized, versioned workflow runs (`hudstream.WorkflowRun`).
pub const HUD_WORKFLOW_RUN_V1: &str = <crate::workflow_run::WorkflowRun as RecordType>::TOPIC;
/// Normalized, versioned pull requests (`hudstream.PullRequest`).
pub const HUD_PULL_REQUEST_V1: &str = <crate::pull_request::PullRequest as RecordType>::TOPIC;
/// Label added/removed on a PR or issue (`hudstream.LabelEvent`).
pub const HUD_LABEL_EVENT_V1: &str = <crate::pull_request::LabelEvent as RecordType>::TOPIC;
/// Commits as pushed to a ref (`hudstream.Commit`).
pub const HUD_COMMIT_V1: &str = <crate::push::Commit as RecordType>::TOPIC;
/// Ref moves, creations and deletions (`hudstream.RefUpdate`).
pub const HUD_REF_UPDATE_V1: &str = <crate::push::RefUpdate as RecordType>::TOPIC;
/// Out-of-tree CI callbacks, flattened (`hudstream.OotResult`).
pub const HUD_OOT_RESULT_V1: &str = <crate::oot::OotResult as RecordType>::TOPIC;
/// Pages of test reports' cases (`hudstream.TestCases`).
pub const HUD_TEST_CASES_V1: &str = <crate::test_report::TestCases as RecordType>::TOPIC;
/// What became of each test report (`hudstream.TestReport`).
pub const HUD_TEST_REPORT_V1: &str = <crate::test_report::TestReport as RecordType>::TOPIC;
/// Issues (`hudstream.Issue`).
pub const HUD_ISSUE_V1: &str = <crate::issue::Issue as RecordType>::TOPIC;
/// Issue and PR comments (`hudstream.IssueComment`).
pub const HUD_ISSUE_COMMENT_V1: &str = <crate::issue::IssueComment as RecordType>::TOPIC;
/// Check runs (`hudstream.CheckRun`).
pub const HUD_CHECK_RUN_V1: &str = <crate::issue::CheckRun as RecordType>::TOPIC;
/// When each job and run was last written by a webhook and by GitHub's API (`hudstream.Replication`).
pub const HUD_REPLICATION_V1: &str = <crate::replication::Replication as RecordType>::TOPIC;
/// Jobs' logs as stored by the log fetcher or an upload (`hudstream.JobLog`).
pub const HUD_JOB_LOG_V1: &str = <crate::job_log::JobLog as RecordType>::TOPIC;
/// The rule engine's verdicts on jobs' logs (`hudstream.JobClassification`).
pub const HUD_JOB_CLASSIFICATION_V1: &str =
    <crate::job_log::JobClassification as RecordType>::TOPIC;
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
            value: "GitHub webhook body, byte for byte as delivered".into(),
        })
        .collect();
    topics.push(TopicSpec {
        name: GITHUB_OTHER.to_string(),
        kind: TopicKind::Raw,
        key: "{owner}/{repo} or the delivery id",
        value: "GitHub webhook body of any other event type, byte for byte".into(),
    });
    topics.push(TopicSpec {
        name: OOT_RESULTS.to_string(),
        kind: TopicKind::Raw,
        key: "{verified_repo}/{delivery_id}/{workflow name}/{job_name}/{check_run_id} (torchci's dynamoKey)",
        value: "the OOT result body {trusted, untrusted}, byte for byte".into(),
    });
    topics.push(TopicSpec {
        name: CIRCLECI_WEBHOOK.to_string(),
        kind: TopicKind::Raw,
        key: "{project slug}/{workflow id}, else the event id",
        value: "CircleCI webhook body, byte for byte".into(),
    });
    topics.push(TopicSpec {
        name: TESTS_REPORTS.to_string(),
        kind: TopicKind::Raw,
        key: "{owner}/{repo}/{job id}/{report}",
        value: "a stored test report: where it is in the test-report store, its size and SHA-256 (JSON)".into(),
    });
    topics.extend(crate::derived_topics());
    topics.push(TopicSpec {
        name: DEAD_LETTERS.to_string(),
        kind: TopicKind::DeadLetter,
        key: "the failed record's key",
        value: "the failed record's value, unchanged; reason in headers".into(),
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
