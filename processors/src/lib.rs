//! Stateless derivations from the raw GitHub log to normalized, versioned records.
//!
//! Each processor is a pure function from one raw record to [`Action`]s: publish the derived
//! record, or dead-letter the input with the reason. Kafka is none of their business; the
//! runtime's consumer loop carries the actions out. Because the output depends only on the
//! input's bytes, replaying a topic yields the same derived records, byte for byte.
//!
//! [`Action`]: hudstream_runtime::worker::Action

pub mod check_run;
pub mod issues;
pub mod oot;
pub mod output;
pub mod pull_request;
pub mod push;
pub mod timestamp;
pub mod version;
pub mod workflow_job;
pub mod workflow_run;

use hudstream_runtime::worker::DynProcessor;

/// Every processor, in the order they are started. A new processor is one more line.
pub fn all() -> anyhow::Result<Vec<DynProcessor>> {
    Ok(vec![
        DynProcessor(Box::new(workflow_job::WorkflowJobProcessor::new()?)),
        DynProcessor(Box::new(workflow_run::WorkflowRunProcessor::new()?)),
        DynProcessor(Box::new(pull_request::PullRequestProcessor::new()?)),
        DynProcessor(Box::new(push::PushProcessor::new()?)),
        DynProcessor(Box::new(oot::OotProcessor::new()?)),
        DynProcessor(Box::new(issues::IssuesProcessor::new()?)),
        DynProcessor(Box::new(issues::IssueCommentProcessor::new()?)),
        DynProcessor(Box::new(check_run::CheckRunProcessor::new()?)),
    ])
}
