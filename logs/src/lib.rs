//! Job logs: fetch, keep, classify.
//!
//! Two stages and a store:
//!
//! ```text
//! hud.workflow_job.v1 ──[log-fetch]──► GitHub logs API ──► log store ──► hud.job_log.v1
//! PUT /logs/{owner}/{repo}/{job_id} (gateway) ──────────► log store ──► hud.job_log.v1
//! hud.job_log.v1 ──[log-classify]──► rule engine over the stored log ──► hud.job_classification.v1
//! ```
//!
//! Unlike the processors these stages do I/O, so they are [`BatchHandler`]s: a batch that
//! cannot be finished (GitHub or the store unreachable) is an error and the runtime retries it;
//! nothing is skipped. Final answers — a log GitHub no longer has, a log that matches no rule —
//! are records too, so every completed job ends with a verdict.
//!
//! [`BatchHandler`]: hudstream_runtime::worker::BatchHandler

//!
//! The log store is the shared object store (`hudstream_runtime::store`), at
//! `hudstream_schemas::job_log::log_path`; GitHub is the shared client (`hudstream_github`).

pub mod classify;
pub mod fetch;

pub use classify::ClassifyStage;
pub use fetch::LogFetchStage;
