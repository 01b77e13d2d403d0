//! A workflow run's artifacts: `GET /repos/{repository}/actions/runs/{run_id}/artifacts`
//! (every page) and `GET /repos/{repository}/actions/artifacts/{id}/zip` (answered with a
//! redirect to short-lived storage, followed without the `Authorization` header).

use serde::Deserialize;

use crate::client::{Answer, GitHub, GitHubError, JsonAnswer};

/// One artifact of a run, as GitHub lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Artifact {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub size_in_bytes: u64,
    /// Expired artifacts are listed but cannot be downloaded.
    #[serde(default)]
    pub expired: bool,
}

/// What GitHub said about a run's artifacts.
#[derive(Debug)]
pub enum RunArtifacts {
    Found(Vec<Artifact>),
    /// 404 or 410: the run is gone.
    Gone {
        status: u16,
    },
    /// A 4xx that will not change by asking again.
    Refused {
        status: u16,
        message: String,
    },
}

/// Artifacts per page GitHub returns at most.
const PER_PAGE: usize = 100;

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    total_count: usize,
    #[serde(default)]
    artifacts: Vec<Artifact>,
}

impl GitHub {
    /// Every artifact of run `run_id`, all pages read.
    pub async fn run_artifacts(
        &self,
        repository: &str,
        run_id: i64,
    ) -> Result<RunArtifacts, GitHubError> {
        let mut all = Vec::new();
        for page in 1.. {
            let path = format!("actions/runs/{run_id}/artifacts?per_page={PER_PAGE}&page={page}");
            let document = match self.repository_json(repository, &path).await? {
                JsonAnswer::Found(document) => document,
                JsonAnswer::Gone { status } => return Ok(RunArtifacts::Gone { status }),
                JsonAnswer::Refused { status, message } => {
                    return Ok(RunArtifacts::Refused { status, message })
                }
            };
            let page: Page = serde_json::from_value(document).map_err(|e| GitHubError::Status {
                url: format!("{}/repos/{repository}/{path}", self.api),
                status: reqwest::StatusCode::OK,
                message: format!("not a list of artifacts: {e}"),
            })?;
            let got = page.artifacts.len();
            all.extend(page.artifacts);
            if got < PER_PAGE || all.len() >= page.total_count {
                break;
            }
        }
        Ok(RunArtifacts::Found(all))
    }

    /// An artifact's zip, to be streamed.
    pub async fn artifact_zip(
        &self,
        repository: &str,
        artifact_id: i64,
    ) -> Result<Answer, GitHubError> {
        let url = format!(
            "{}/repos/{repository}/actions/artifacts/{artifact_id}/zip",
            self.api
        );
        self.get(repository, &url).await
    }
}
