//! Test reports: fetch, keep, parse.
//!
//! ```text
//! PUT /tests/{owner}/{repo}/{job_id}?report= (gateway) ──► test-report store ──► tests.reports
//! hud.workflow_run.v1 (completed) ──[test-fetch]──► GitHub artifacts ──► store ──► tests.reports
//! tests.reports ──[test-parse]──► the stored report, streamed ──► hud.test_cases.v1 (pages)
//!                                                            └──► hud.test_report.v1 (summary)
//! ```
//!
//! The store keeps every report whole, content-addressed
//! (`hudstream_schemas::test_report::report_store_key`); the raw topic holds pointers, so
//! replaying it re-parses the same bytes. Both stages do I/O, so they are batch handlers: a
//! batch that cannot be finished (GitHub or the store unreachable) is retried whole, never
//! skipped; final answers — a report that is not one, an artifact that expired — are records.

pub mod fetch;
pub mod parse;

pub use fetch::ArtifactFetchStage;
pub use parse::ParseStage;
