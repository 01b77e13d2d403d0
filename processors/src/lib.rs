//! Stateless derivations from the raw GitHub log to normalized, versioned records.
//!
//! Each processor is a pure function from one raw record's bytes to the records it derives
//! (or the reason it cannot), declared with [`processor!`]; the runtime publishes what comes
//! out — each record on its type's topic, under its key — and dead-letters what does not.
//! Kafka is none of their business. Because the output depends only on the input's bytes,
//! replaying a topic yields the same derived records, byte for byte.

pub mod check_run;
pub mod issues;
pub mod oot;
pub mod pull_request;
pub mod push;
mod raw;
pub mod replication;

pub use raw::NoLabel;
pub mod timestamp;
pub mod workflow_job;
pub mod workflow_run;

use hudstream_runtime::worker::DynProcessor;

/// Declares a processor: the stage `stage` reads `input` (a raw topic) and runs each record's
/// value through `derive`, a pure `fn(&[u8]) -> Result<impl Outputs, impl Display>`.
#[macro_export]
macro_rules! processor {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            stage: $stage:literal,
            input: $input:expr,
            derive: $derive:path $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name;

        impl hudstream_runtime::worker::Processor for $name {
            fn stage(&self) -> &'static str {
                $stage
            }

            fn input_topic(&self) -> &'static str {
                $input
            }

            fn process(
                &self,
                record: &hudstream_runtime::worker::InRecord,
            ) -> Vec<hudstream_runtime::worker::Action> {
                hudstream_runtime::worker::derive_and_publish(record, $derive)
            }
        }
    };
}

/// What the gateway (or the reconciler, or a backfill) wrote on a raw record besides its body:
/// part of the record, so a derivation from it is as pure as one from the body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Receipt {
    /// `hudstream-origin`: `reconciler`, `backfill`; `None` for what GitHub sent.
    pub origin: Option<String>,
    /// `received-at` (epoch ms), else the record's own timestamp.
    pub received_at_ms: Option<i64>,
}

impl Receipt {
    pub fn of(record: &hudstream_runtime::worker::InRecord) -> Receipt {
        use hudstream_schemas::headers as h;
        Receipt {
            origin: record
                .header_str(h::ORIGIN)
                .filter(|o| !o.is_empty())
                .map(str::to_string),
            received_at_ms: record
                .header_str(h::RECEIVED_AT)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis())
                .or(record.timestamp_ms),
        }
    }
}

/// A processor whose derivation also reads the record's [`Receipt`]: `derive` is a pure
/// `fn(&[u8], &Receipt) -> Result<impl Outputs, impl Display>`.
#[macro_export]
macro_rules! receipt_processor {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            stage: $stage:literal,
            input: $input:expr,
            derive: $derive:path $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name;

        impl hudstream_runtime::worker::Processor for $name {
            fn stage(&self) -> &'static str {
                $stage
            }

            fn input_topic(&self) -> &'static str {
                $input
            }

            fn process(
                &self,
                record: &hudstream_runtime::worker::InRecord,
            ) -> Vec<hudstream_runtime::worker::Action> {
                let receipt = $crate::Receipt::of(record);
                hudstream_runtime::worker::derive_and_publish(record, |payload| $derive(payload, &receipt))
            }
        }
    };
}

/// Every processor, in the order they are started. A new processor is one more line.
pub fn all() -> Vec<DynProcessor> {
    vec![
        DynProcessor(Box::new(workflow_job::WorkflowJobProcessor)),
        DynProcessor(Box::new(workflow_run::WorkflowRunProcessor)),
        DynProcessor(Box::new(pull_request::PullRequestProcessor)),
        DynProcessor(Box::new(push::PushProcessor)),
        DynProcessor(Box::new(oot::OotProcessor)),
        DynProcessor(Box::new(issues::IssuesProcessor)),
        DynProcessor(Box::new(issues::IssueCommentProcessor)),
        DynProcessor(Box::new(check_run::CheckRunProcessor)),
        DynProcessor(Box::new(replication::JobReplicationProcessor)),
        DynProcessor(Box::new(replication::RunReplicationProcessor)),
    ]
}
