//! Names of the Kafka record headers hudstream writes.
//!
//! Raw records carry the facts of their delivery (who sent it, when we received it) so that a
//! replay years later still knows them; derived records name their schema and the raw record
//! they came from; dead letters say why they were set aside. All names are lower case.

/// `X-GitHub-Delivery`: GitHub's GUID for the delivery (kept on redelivery).
pub const GITHUB_DELIVERY: &str = "github-delivery";
/// `X-GitHub-Event`: the event name, e.g. `workflow_job`.
pub const GITHUB_EVENT: &str = "github-event";
/// The body's top-level `action`, when it has one (`queued`, `completed`, …).
pub const GITHUB_ACTION: &str = "github-action";
/// `X-GitHub-Hook-ID`.
pub const GITHUB_HOOK_ID: &str = "github-hook-id";
/// `X-GitHub-Hook-Installation-Target-Type` (an open set: repository, organization, integration…).
pub const GITHUB_TARGET_TYPE: &str = "github-hook-installation-target-type";
/// `X-GitHub-Hook-Installation-Target-ID`.
pub const GITHUB_TARGET_ID: &str = "github-hook-installation-target-id";
/// The `Content-Type` the body arrived with.
pub const CONTENT_TYPE: &str = "content-type";
/// When the gateway received the request, RFC 3339 UTC with milliseconds.
pub const RECEIVED_AT: &str = "received-at";
/// The gateway build that appended the record (`hudstream/<version>`).
pub const GATEWAY_VERSION: &str = "hudstream-gateway";

/// Who appended a raw record that is not a delivery received by the gateway: `reconciler` for
/// the webhooks the reconciler rebuilt from GitHub's REST API. Absent on the gateway's records.
pub const ORIGIN: &str = "hudstream-origin";

/// Status of an OOT result (`in_progress`, `completed`), from the body.
pub const OOT_STATUS: &str = "oot-status";
/// CircleCI's event type (`workflow-completed`, `job-completed`).
pub const CIRCLECI_EVENT: &str = "circleci-event";
/// CircleCI's event id.
pub const CIRCLECI_EVENT_ID: &str = "circleci-event-id";

/// Full name and version of the Avro schema of a derived record, e.g. `hudstream.WorkflowJob/1`.
pub const SCHEMA: &str = "hudstream-schema";
/// Where a derived record or dead letter came from: `topic/partition/offset`.
pub const SOURCE: &str = "hudstream-source";

/// Why a record was dead-lettered, written for a person.
pub const DLQ_REASON: &str = "hudstream-dlq-reason";
/// Which stage dead-lettered it (`process.workflow_job`, `project.workflow_job`, …).
pub const DLQ_STAGE: &str = "hudstream-dlq-stage";
