//! hudstream's one GitHub REST client, for every stage that asks GitHub: the log fetcher
//! (`GET /repos/{owner}/{repo}/actions/jobs/{id}/logs`), the reconciler (jobs and runs as JSON,
//! [`GitHub::repository_json`]), the test-report fetcher (a run's artifacts, [`artifacts`]),
//! and whatever else reads the API.
//!
//! What an answer means, rate limits, retries and shutdown are decided here once
//! ([`client`]); authentication — a token, or a GitHub App's installation tokens — in
//! [`auth`]. Credentials are the `[logs]` `github_*` settings.

pub mod artifacts;
mod auth;
pub mod client;

pub use artifacts::{Artifact, RunArtifacts};
pub use client::{Answer, GitHub, GitHubError, JsonAnswer};
pub use reqwest::Method;
