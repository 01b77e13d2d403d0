//! The test pages: a job with its failed and flaky tests, a test's history, the flaky and
//! disabled tests of a repository.

use super::*;

#[derive(Template)]
#[template(path = "job.html")]
struct JobTemplate {
    repository: String,
    job_id: i64,
    job: Option<Job>,
    summary: StatusCounts,
    reports: Vec<JobReport>,
    /// The failed and flaky tests (all tests are in the JSON endpoint).
    tests: Vec<JobTest>,
}

#[derive(Template)]
#[template(path = "test_history.html")]
struct TestHistoryPage {
    history: TestHistory,
}

#[derive(Template)]
#[template(path = "flaky.html")]
struct FlakyPage {
    flaky: FlakyTests,
}

#[derive(Template)]
#[template(path = "disabled.html")]
struct DisabledPage {
    disabled: DisabledTests,
}

impl Job {
    pub fn href(&self) -> &str {
        safe_href(&self.html_url)
    }
    pub fn short_sha(&self) -> &str {
        short(&self.head_sha)
    }
    pub fn display_conclusion(&self) -> String {
        crate::job_rows::display_conclusion(&self.status, self.conclusion.as_deref().unwrap_or(""))
    }
}

impl JobTest {
    pub fn status_class(&self) -> &'static str {
        status_class(&self.status)
    }
    pub fn history_href(&self, repository: &str) -> String {
        history_href(repository, &self.name, &self.classname, &self.file)
    }
}

impl crate::test_results::TestFailure {
    /// The message's first line (the traceback holds the rest).
    pub fn headline(&self) -> String {
        crate::test_results::first_line(&self.message)
    }
}

impl JobReport {
    pub fn state_class(&self) -> &'static str {
        match self.state.as_str() {
            "parsed" => "success",
            "refused" => "failure",
            _ => "skipped",
        }
    }
}

impl TestHistory {
    pub fn fail_rate_text(&self) -> String {
        format!("{:.1}%", self.fail_rate * 100.0)
    }
    pub fn flaky_rate_text(&self) -> String {
        format!("{:.1}%", self.flaky_rate * 100.0)
    }
}

impl TestRun {
    pub fn status_class(&self) -> &'static str {
        status_class(&self.status)
    }
    pub fn short_sha(&self) -> &str {
        self.sha.as_deref().map(short).unwrap_or("")
    }
    pub fn duration_text(&self) -> String {
        seconds_text(Some(self.duration_s))
    }
}

impl FlakyTest {
    pub fn history_href(&self, repository: &str) -> String {
        history_href(repository, &self.name, &self.classname, &self.file)
    }
}

impl DisablingIssue {
    pub fn href(&self) -> &str {
        safe_href(&self.url)
    }
}

/// `/{owner}/{repo}/job/{job_id}`: a job with its failed and flaky tests and its reports.
pub async fn job_page(State(ch): Ch, path: Path3, headers: HeaderMap, q: RawQuery) -> Response {
    let page = async {
        let (owner, repo, job_id) = params::path(path)?;
        QueryParams::parse(q, &[])?;
        let repository = params::repository(&owner, &repo)?;
        let job_id = params::positive("the job id", &job_id)?;
        let (job, tests) = tokio::join!(
            jobs::job(&ch, &repository, job_id),
            test_results::job_tests(&ch, &repository, job_id)
        );
        let (job, (summary, tests, reports)) = (job?, tests?);
        if job.is_none() && reports.is_empty() {
            return Err(ApiError::NotFound(format!(
                "nothing is known of job {job_id} in {repository}"
            )));
        }
        let tests = tests
            .into_iter()
            .filter(|t| t.status == "failed" || t.status == "flaky")
            .collect();
        Ok(JobTemplate {
            repository,
            job_id,
            job,
            summary,
            reports,
            tests,
        })
    }
    .await;
    render(&headers, page)
}

pub async fn test_history_page(
    State(ch): Ch,
    path: Path2,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    let history = test_history::from_request(&ch, path, q).await;
    render(&headers, history.map(|history| TestHistoryPage { history }))
}

pub async fn flaky_page(State(ch): Ch, path: Path2, headers: HeaderMap, q: RawQuery) -> Response {
    let flaky = flaky::from_request(&ch, path, q).await;
    render(&headers, flaky.map(|flaky| FlakyPage { flaky }))
}

pub async fn disabled_page(
    State(ch): Ch,
    path: Path2,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    let disabled = disabled::from_request(&ch, path, q).await;
    render(&headers, disabled.map(|disabled| DisabledPage { disabled }))
}
