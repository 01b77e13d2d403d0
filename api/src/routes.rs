//! The JSON endpoints. Each handler is one line: the view's `from_request` checks the path and
//! query (a JSON 400 naming what is wrong) and builds the answer — the same function the
//! matching page calls — and `answer` adds `ETag` and `Cache-Control`. Every route here is
//! described in `api/openapi.json`.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use hudstream_runtime::clickhouse::ClickHouse;

use crate::error::ApiError;
use crate::failures::{failures, FailuresQuery};
use crate::hot_window::Served;
use crate::hud::GridAnswer;
use crate::params::{RawPath, RawQuery};
use crate::queued::{queued, QueuedQuery};
use crate::trunk::{self, TrunkQuery};
use crate::ApiState;
use crate::{
    commit, disabled, drci, drci_comment, flaky, hud, jobs, oot, pull, respond, similar,
    test_history, test_results, test_search,
};

/// The OpenAPI document of every endpoint.
pub const OPENAPI: &str = include_str!("../openapi.json");

type Ch = State<ClickHouse>;
type Path3 = RawPath<(String, String, String)>;

fn answer<T: Serialize>(headers: &HeaderMap, result: Result<T, ApiError>) -> Response {
    match result {
        Ok(body) => respond::json(headers, &body),
        Err(e) => e.into_response(),
    }
}

pub async fn openapi() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        OPENAPI,
    )
        .into_response()
}

pub async fn hud_grid(
    State(state): State<ApiState>,
    path: Path3,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    match hud::from_request(&state, path, q, &headers, "json").await {
        Ok(GridAnswer::Memory(Served::NotModified { etag })) => {
            respond::not_modified(&etag, "memory")
        }
        Ok(GridAnswer::Memory(Served::Cached { body, etag })) => {
            respond::bytes_tagged(respond::JSON, body, &etag, "memory")
        }
        Ok(GridAnswer::Memory(Served::Page { grid, etag })) => match serde_json::to_vec(&grid) {
            Ok(body) => {
                let body = bytes::Bytes::from(body);
                if let Some(hot) = &state.hot {
                    hot.remember(&etag, body.clone());
                }
                respond::bytes_tagged(respond::JSON, body, &etag, "memory")
            }
            Err(e) => ApiError::Unavailable(format!("encoding the answer: {e}")).into_response(),
        },
        Ok(GridAnswer::ClickHouse(grid)) => {
            let mut response = respond::json(&headers, &grid);
            response.headers_mut().insert(
                respond::SOURCE,
                axum::http::HeaderValue::from_static("clickhouse"),
            );
            response
        }
        Err(e) => e.into_response(),
    }
}

pub async fn commit_page(State(ch): Ch, path: Path3, headers: HeaderMap, q: RawQuery) -> Response {
    answer(&headers, commit::from_request(&ch, path, q).await)
}

pub async fn pull_page(State(ch): Ch, path: Path3, headers: HeaderMap, q: RawQuery) -> Response {
    answer(&headers, pull::from_request(&ch, path, q).await)
}

pub async fn job(State(ch): Ch, path: Path3, headers: HeaderMap, q: RawQuery) -> Response {
    answer(&headers, jobs::from_request(&ch, path, q).await)
}

pub async fn oot_summary(State(ch): Ch, headers: HeaderMap, q: RawQuery) -> Response {
    answer(&headers, oot::summary_from_request(&ch, q).await)
}

pub async fn oot_backend(
    State(ch): Ch,
    path: RawPath<(String, String)>,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    answer(&headers, oot::matrix_from_request(&ch, path, q).await)
}

pub async fn oot_pr(
    State(ch): Ch,
    path: RawPath<String>,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    answer(&headers, oot::pr_from_request(&ch, path, q).await)
}

pub async fn failures_endpoint(State(ch): Ch, headers: HeaderMap, q: RawQuery) -> Response {
    let result = match FailuresQuery::from_request(q) {
        Ok(request) => failures(&ch, request).await,
        Err(e) => Err(e),
    };
    answer(&headers, result)
}

pub async fn queued_endpoint(State(ch): Ch, headers: HeaderMap, q: RawQuery) -> Response {
    let result = match QueuedQuery::from_request(q) {
        Ok(request) => queued(&ch, request).await,
        Err(e) => Err(e),
    };
    answer(&headers, result)
}

type Path2 = RawPath<(String, String)>;

pub async fn job_tests(State(ch): Ch, path: Path3, headers: HeaderMap, q: RawQuery) -> Response {
    answer(&headers, test_results::from_request(&ch, path, q).await)
}

pub async fn test_history(State(ch): Ch, path: Path2, headers: HeaderMap, q: RawQuery) -> Response {
    answer(&headers, test_history::from_request(&ch, path, q).await)
}

pub async fn flaky_tests(State(ch): Ch, path: Path2, headers: HeaderMap, q: RawQuery) -> Response {
    answer(&headers, flaky::from_request(&ch, path, q).await)
}

pub async fn disabled_tests(
    State(ch): Ch,
    path: Path2,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    answer(&headers, disabled::from_request(&ch, path, q).await)
}

pub async fn slowest_tests(
    State(ch): Ch,
    path: Path2,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    answer(
        &headers,
        test_search::slowest_from_request(&ch, path, q).await,
    )
}

pub async fn search_tests(State(ch): Ch, path: Path2, headers: HeaderMap, q: RawQuery) -> Response {
    answer(
        &headers,
        test_search::search_from_request(&ch, path, q).await,
    )
}

pub async fn drci(State(ch): Ch, path: Path3, headers: HeaderMap, q: RawQuery) -> Response {
    answer(&headers, drci::from_request(&ch, path, q).await)
}

/// The comment as Markdown; links point at the host the request came to.
pub async fn drci_comment(State(ch): Ch, path: Path3, headers: HeaderMap, q: RawQuery) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c))
        })
        .unwrap_or("localhost");
    match drci::from_request(&ch, path, q).await {
        Ok(answer) => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            drci_comment::render(&answer, &format!("http://{host}")),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn similar_failures(
    State(ch): Ch,
    path: Path2,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    answer(&headers, similar::similar_from_request(&ch, path, q).await)
}

pub async fn failure_clusters(
    State(ch): Ch,
    path: Path2,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    answer(&headers, similar::clusters_from_request(&ch, path, q).await)
}

pub async fn trunk_signal(State(ch): Ch, path: Path2, headers: HeaderMap, q: RawQuery) -> Response {
    let result = match TrunkQuery::from_request(path, q) {
        Ok(q) => trunk::signal(&ch, &q).await,
        Err(e) => Err(e),
    };
    answer(&headers, result)
}

pub async fn trunk_red(State(ch): Ch, path: Path2, headers: HeaderMap, q: RawQuery) -> Response {
    let result = match TrunkQuery::from_request(path, q) {
        Ok(q) => trunk::red(&ch, &q).await,
        Err(e) => Err(e),
    };
    answer(&headers, result)
}

pub async fn trunk_queue(State(ch): Ch, path: Path2, headers: HeaderMap, q: RawQuery) -> Response {
    let result = match TrunkQuery::from_request(path, q) {
        Ok(q) => trunk::queue(&ch, &q).await,
        Err(e) => Err(e),
    };
    answer(&headers, result)
}

pub async fn trunk_broken(State(ch): Ch, path: Path2, headers: HeaderMap, q: RawQuery) -> Response {
    let result = match TrunkQuery::from_request(path, q) {
        Ok(q) => trunk::broken(&ch, &q).await,
        Err(e) => Err(e),
    };
    answer(&headers, result)
}

/// Any other `/api/...` path: a JSON 404.
pub fn not_found() -> Response {
    ApiError::NotFound("there is no such endpoint; see /api/openapi.json".into()).into_response()
}
