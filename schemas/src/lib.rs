//! The contracts between hudstream's stages.
//!
//! Everything another stage — or another team's consumer — relies on lives here and nowhere
//! else: the topic catalogue (which topics exist, what their keys and values are), the record
//! headers, the Avro schemas of derived records with their wire format, and the ClickHouse
//! migrations, and the rule every derived record's content-derived version is packed by
//! ([`version`]). Stages depend on this crate; this crate depends on no stage.
//!
//! A new derived stream is an Avro schema (`avro/<entity>.v1.avsc`), a record type declared
//! with [`record_type!`] in a file of its own, and its line in [`derived_topics`].

pub mod headers;
pub mod issue;
pub mod job_log;
pub mod migrations;
pub mod names;
pub mod oot;
pub mod pull_request;
pub mod push;
pub mod replication;
pub mod signature;
pub mod test_report;
pub mod topics;
pub mod version;
pub mod wire;
pub mod workflow_job;
pub mod workflow_run;

pub use wire::{DecodeError, EncodeError, RecordType};

/// Every derived record type, each one topic of the catalogue ([`topics::catalogue`]), in
/// catalogue order.
pub fn derived_topics() -> Vec<topics::TopicSpec> {
    use topics::derived;
    vec![
        derived::<workflow_job::WorkflowJob>(),
        derived::<workflow_run::WorkflowRun>(),
        derived::<pull_request::PullRequest>(),
        derived::<pull_request::LabelEvent>(),
        derived::<push::Commit>(),
        derived::<push::RefUpdate>(),
        derived::<oot::OotResult>(),
        derived::<issue::Issue>(),
        derived::<issue::IssueComment>(),
        derived::<issue::CheckRun>(),
        derived::<job_log::JobLog>(),
        derived::<job_log::JobClassification>(),
        derived::<test_report::TestCases>(),
        derived::<test_report::TestReport>(),
        derived::<replication::Replication>(),
    ]
}
