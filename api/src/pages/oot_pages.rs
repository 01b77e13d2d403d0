//! The OOT pages: the summary of every backend, and one backend's matrix.

use super::*;

#[derive(Template)]
#[template(path = "oot_summary.html")]
struct OotSummaryPage {
    summary: Summary,
}

#[derive(Template)]
#[template(path = "oot_backend.html")]
struct OotBackendPage {
    matrix: Matrix,
}

impl MatrixRow {
    pub fn short_sha(&self) -> &str {
        short(&self.sha)
    }
}

impl OotJob {
    pub fn run_href(&self) -> &str {
        safe_href(&self.workflow_run_url)
    }
    pub fn duration_text(&self) -> String {
        seconds_text(self.duration_s.or(self.execution_time_s))
    }
    pub fn tests_text(&self) -> String {
        match (self.passed_tests, self.failed_tests, self.total_tests) {
            (None, None, None) => String::new(),
            (p, f, t) => format!(
                "{} passed, {} failed of {}",
                p.unwrap_or(0),
                f.unwrap_or(0),
                t.unwrap_or(0)
            ),
        }
    }
}

impl BackendSummary {
    pub fn pass_rate_text(&self) -> String {
        format!("{:.1}%", self.pass_rate * 100.0)
    }
    pub fn duration_text(&self) -> String {
        seconds_text(Some(self.avg_duration_s))
    }
}

pub async fn oot_summary_page(State(ch): Ch, headers: HeaderMap, q: RawQuery) -> Response {
    let summary = oot::summary_from_request(&ch, q).await;
    render(&headers, summary.map(|summary| OotSummaryPage { summary }))
}

pub async fn oot_backend_page(
    State(ch): Ch,
    path: RawPath<(String, String)>,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    let matrix = oot::matrix_from_request(&ch, path, q).await;
    render(&headers, matrix.map(|matrix| OotBackendPage { matrix }))
}
