//! The HUD grid page: its cells as the template writes them, and the handler that serves the
//! page from the hot window's page cache or from ClickHouse.

use super::*;

#[derive(Template)]
#[template(path = "grid.html")]
struct GridPage {
    grid: Grid,
}

/// Presentation helpers the templates call.
impl Cell {
    /// The HUD's symbol for a cell: O success, X failure, F flaky, ? pending, Q queued,
    /// C cancelled, S skipped, T timed out, N neutral.
    pub fn symbol(&self) -> &'static str {
        match self.conclusion.as_str() {
            "success" if self.flaky => "F",
            "success" => "O",
            "failure" => "X",
            "timed_out" => "T",
            "queued" => "Q",
            "pending" => "?",
            "cancelled" => "C",
            "skipped" => "S",
            "neutral" => "N",
            _ => "·",
        }
    }
}

impl Cell {
    /// Nothing to say beyond its conclusion and link (not flaky, no failure line, no failed
    /// test): the grid page writes such a cell without hover text or data attributes.
    pub fn is_plain(&self) -> bool {
        !self.flaky && self.failure.is_none() && self.failed_test.is_none()
    }

    pub fn href(&self) -> &str {
        safe_href(&self.html_url)
    }

    /// `failed test Class::test (and 3 more)`, for a failed cell whose job reported tests.
    pub fn failed_test_text(&self) -> String {
        let Some(test) = &self.failed_test else {
            return String::new();
        };
        match self.failed_tests.unwrap_or(1) {
            0 | 1 => format!("failed test {test}"),
            n => format!("failed test {test} (and {} more)", n - 1),
        }
    }
}

impl GridRow {
    pub fn short_sha(&self) -> &str {
        short(&self.sha)
    }
}

pub async fn grid_page(
    State(state): State<crate::ApiState>,
    path: Path3,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    use crate::hot_window::Served;
    use crate::hud::GridAnswer;
    match hud::from_request(&state, path, q, &headers, "html").await {
        Ok(GridAnswer::Memory(Served::NotModified { etag })) => {
            respond::not_modified(&etag, "memory")
        }
        Ok(GridAnswer::Memory(Served::Cached { body, etag })) => {
            respond::bytes_tagged(respond::HTML, body, &etag, "memory")
        }
        Ok(GridAnswer::Memory(Served::Page { grid, etag })) => match (GridPage { grid }).render() {
            Ok(html) => {
                let body = bytes::Bytes::from(html);
                if let Some(hot) = &state.hot {
                    hot.remember(&etag, body.clone());
                }
                respond::bytes_tagged(respond::HTML, body, &etag, "memory")
            }
            Err(e) => error_page(ApiError::Unavailable(format!("rendering a page: {e}"))),
        },
        Ok(GridAnswer::ClickHouse(grid)) => {
            let mut response = render(&headers, Ok(GridPage { grid }));
            response.headers_mut().insert(
                respond::SOURCE,
                axum::http::HeaderValue::from_static("clickhouse"),
            );
            response
        }
        Err(e) => render(&headers, Err::<GridPage, _>(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    fn cell(conclusion: &str, flaky: bool, failure: Option<&str>) -> Option<Arc<Cell>> {
        Some(Arc::new(Cell {
            conclusion: conclusion.into(),
            id: 7,
            html_url: "https://github.com/o/r/actions/runs/1/job/7".into(),
            run_attempt: 1,
            duration_s: None,
            flaky,
            runs: 1,
            failure: failure.map(|line| crate::job_rows::Failure {
                rule: "pytest failure".into(),
                line: line.into(),
                line_number: 3,
                captures: vec![],
            }),
            failed_test: None,
            failed_tests: None,
        }))
    }

    /// A plain cell is its conclusion and link only (the page's bulk); a cell with something
    /// to say (flaky, a failure line, an unstable column) keeps its hover text and data.
    #[test]
    fn the_grid_page_writes_plain_cells_short() {
        let grid = Grid {
            repository: "o/r".into(),
            branch: "main".into(),
            page: 1,
            per_page: 50,
            has_more: false,
            job_names: vec![
                "a / build".into(),
                "a / lint".into(),
                "a / test".into(),
                "b / rocm".into(),
            ],
            unstable_jobs: vec!["b / rocm".into()],
            commits: vec![crate::hud::GridRow {
                sha: "abcdef0123".into(),
                title: "Fix".into(),
                author: "x".into(),
                author_username: None,
                timestamp: None,
                url: String::new(),
                pr_number: None,
                jobs: vec![
                    cell("success", false, None),
                    cell("failure", false, Some("E   AssertionError")),
                    cell("success", true, None),
                    cell("success", false, None),
                ],
            }],
        };
        let html = GridPage { grid }.render().expect("renders");
        assert!(
            html.contains(r#"<td class="cell success"><a href="https://github.com/o/r/actions/runs/1/job/7">O</a></td>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-job="a / lint" data-conclusion="failure""#),
            "{html}"
        );
        assert!(
            html.contains(r#"title="a / lint: failure — E   AssertionError""#),
            "{html}"
        );
        assert!(
            html.contains(r#"title="a / test: success (flaky)""#),
            "{html}"
        );
        assert!(
            html.contains(r#"title="b / rocm: success (unstable)""#),
            "{html}"
        );
        // The plain cell's hover text comes from its column's header.
        assert!(
            html.contains(r#"<th class="job" title="a / build">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"grid.addEventListener("mouseover""#),
            "{html}"
        );
        assert_eq!(html.matches("data-job=").count(), 3, "{html}");
    }
}
