//! Unstable jobs, torchci's way: an open issue titled `UNSTABLE <job name>` marks every job
//! whose name matches as unstable — its failures neither block a PR (Dr.CI), nor redden trunk
//! (the red rate), and the grid shows the cell as unstable. A job whose own name contains
//! `unstable` is unstable too.
//!
//! Matching follows torchci's `getOpenUnstableIssues`: the job's full name is first written as
//! `workflow / job (config)` (`transformJobName`: the shard, shard count and runner dropped
//! from the parenthesis), then the issue matches when `UNSTABLE <that name>` contains the
//! issue's title — so an issue naming a prefix (`UNSTABLE trunk / linux-jammy`) covers every
//! configuration under it.

use serde::{Deserialize, Serialize};

use hudstream_runtime::clickhouse::{ClickHouse, Param};

use crate::error::ApiError;
use crate::queries::{fetch, UNSTABLE_ISSUES};

/// An open UNSTABLE issue.
#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize, PartialEq)]
pub struct UnstableIssue {
    pub number: i64,
    pub title: String,
    pub html_url: String,
}

impl UnstableIssue {
    /// The job name the title names: the title without `UNSTABLE `.
    pub fn job(&self) -> &str {
        self.title
            .strip_prefix("UNSTABLE ")
            .unwrap_or(&self.title)
            .trim()
    }
}

/// The open UNSTABLE issues of a repository.
pub async fn open_unstable_issues(
    clickhouse: &ClickHouse,
    repository: &str,
) -> Result<Vec<UnstableIssue>, ApiError> {
    fetch(
        clickhouse,
        &UNSTABLE_ISSUES,
        &[("repo", Param::Str(repository.to_string()))],
    )
    .await
}

/// torchci's `transformJobName`: `pull / linux (default, 1, 2, linux.2xlarge)` →
/// `pull / linux (default)`; other names unchanged.
pub fn transform_job_name(name: &str) -> String {
    // /^(.*) \(([^,]*),.*\)/ — the last " (" whose parenthesis holds a comma.
    let Some(close) = name.rfind(')') else {
        return name.to_string();
    };
    let mut search = &name[..close];
    while let Some(open) = search.rfind(" (") {
        let inside = &name[open + 2..close];
        if let Some(comma) = inside.find(',') {
            return format!("{} ({})", &name[..open], &inside[..comma]);
        }
        search = &name[..open];
    }
    name.to_string()
}

/// The open issue that makes the job `name` (`workflow / job`) unstable, if any.
pub fn unstable_issue<'a>(name: &str, issues: &'a [UnstableIssue]) -> Option<&'a UnstableIssue> {
    let title = format!("UNSTABLE {}", transform_job_name(name));
    issues
        .iter()
        .find(|issue| !issue.job().is_empty() && title.contains(issue.title.trim()))
}

/// Whether the job `name` is unstable: it says so itself, or an open issue says so.
pub fn is_unstable(name: &str, issues: &[UnstableIssue]) -> bool {
    name.to_ascii_lowercase().contains("unstable") || unstable_issue(name, issues).is_some()
}

/// The prefixes SQL filters unstable jobs by (`trunk_red.sql`, `trunk_failing_jobs.sql`): each issue's job name —
/// `UNSTABLE <name>` containing `UNSTABLE <job>` means the name starts with the job.
pub fn sql_prefixes(issues: &[UnstableIssue]) -> Vec<String> {
    issues
        .iter()
        .map(|i| i.job().to_string())
        .filter(|j| !j.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(number: i64, title: &str) -> UnstableIssue {
        UnstableIssue {
            number,
            title: title.into(),
            html_url: format!("https://github.com/o/r/issues/{number}"),
        }
    }

    #[test]
    fn torchcis_job_name_transform() {
        assert_eq!(
            transform_job_name(
                "pull / linux-jammy-py3.9-gcc11 / test (default, 1, 5, linux.2xlarge)"
            ),
            "pull / linux-jammy-py3.9-gcc11 / test (default)"
        );
        assert_eq!(
            transform_job_name("trunk / macos-13-py3-arm64 / build"),
            "trunk / macos-13-py3-arm64 / build"
        );
        assert_eq!(transform_job_name("lint / (no comma)"), "lint / (no comma)");
    }

    #[test]
    fn an_issue_covers_the_jobs_its_title_names() {
        let issues = vec![
            issue(
                45,
                "UNSTABLE pull / linux-jammy-py3.9-gcc11 / test (default)",
            ),
            issue(46, "UNSTABLE trunk / win-vs2019-cpu-py3"),
        ];
        let shard = "pull / linux-jammy-py3.9-gcc11 / test (default, 3, 5, linux.2xlarge)";
        assert_eq!(unstable_issue(shard, &issues).map(|i| i.number), Some(45));
        assert!(is_unstable(
            "trunk / win-vs2019-cpu-py3 / test (default, 1, 3, windows.4xlarge)",
            &issues
        ));
        assert!(!is_unstable(
            "pull / linux-jammy-py3.9-gcc11 / test (crossref, 1, 2, linux.2xlarge)",
            &issues
        ));
        assert!(is_unstable("unstable / linux-focal-rocm / test", &[]));
        assert!(!is_unstable("pull / linux / build", &issues));
    }
}
