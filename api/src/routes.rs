//! The JSON endpoints: each checks its path and query parameters (a 400 naming the bad one),
//! calls the function that builds its answer, and answers with `ETag` and `Cache-Control`.
//! Every route here is described in `api/openapi.json`.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use hudstream_runtime::clickhouse::ClickHouse;

use crate::error::ApiError;
use crate::failures::{failures, FailuresQuery};
use crate::params::{self, QueryParams};
use crate::queued::{queued, QueuedQuery};
use crate::{commit, hud, oot, pull, respond};

pub type RawQuery = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The OpenAPI document of every endpoint.
pub const OPENAPI: &str = include_str!("../openapi.json");

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
    State(clickhouse): State<ClickHouse>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    let result = async {
        let Path((owner, repo, branch)) = path.map_err(params::bad_path)?;
        let params = QueryParams::parse(query, hud::PARAMS)?;
        let repository = params::repository(&owner, &repo)?;
        let branch = params::branch(&branch)?;
        hud::grid(&clickhouse, &repository, &branch, hud::paging(&params)?).await
    }
    .await;
    answer(&headers, result)
}

pub async fn commit_page(
    State(clickhouse): State<ClickHouse>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    let result = async {
        let Path((owner, repo, sha)) = path.map_err(params::bad_path)?;
        let params = QueryParams::parse(query, commit::PARAMS)?;
        let repository = params::repository(&owner, &repo)?;
        let sha = params::commit_sha(&sha)?;
        commit::commit_page(&clickhouse, &repository, &sha, commit::paging(&params)?).await
    }
    .await;
    answer(&headers, result)
}

pub async fn pull_page(
    State(clickhouse): State<ClickHouse>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    let result = async {
        let Path((owner, repo, number)) = path.map_err(params::bad_path)?;
        let params = QueryParams::parse(query, pull::PARAMS)?;
        let repository = params::repository(&owner, &repo)?;
        let number = params::positive("the pull request number", &number)?;
        pull::pull_page(&clickhouse, &repository, number, pull::paging(&params)?).await
    }
    .await;
    answer(&headers, result)
}

pub async fn oot_summary(
    State(clickhouse): State<ClickHouse>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    let result = async {
        let params = QueryParams::parse(query, oot::SUMMARY_PARAMS)?;
        oot::summary(&clickhouse, oot::days(&params)?).await
    }
    .await;
    answer(&headers, result)
}

pub async fn oot_backend(
    State(clickhouse): State<ClickHouse>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    let result = async {
        let Path((org, repo)) = path.map_err(params::bad_path)?;
        let params = QueryParams::parse(query, oot::BACKEND_PARAMS)?;
        let repository = params::repository(&org, &repo)?;
        oot::matrix(
            &clickhouse,
            &repository,
            oot::days(&params)?,
            params.paging(50, 200)?,
        )
        .await
    }
    .await;
    answer(&headers, result)
}

pub async fn oot_pr(
    State(clickhouse): State<ClickHouse>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    let result = async {
        let Path(number) = path.map_err(params::bad_path)?;
        let params = QueryParams::parse(query, oot::PR_PARAMS)?;
        let number = params::positive("the pull request number", &number)?;
        // torchci's default upstream repository.
        let upstream =
            params::repository_full_name("repo", params.text("repo").unwrap_or("pytorch/pytorch"))?;
        oot::pr_results(&clickhouse, &upstream, number, params.paging(100, 1000)?).await
    }
    .await;
    answer(&headers, result)
}

pub async fn failures_endpoint(
    State(clickhouse): State<ClickHouse>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    let result = async {
        let params = QueryParams::parse(query, crate::failures::PARAMS)?;
        failures(&clickhouse, FailuresQuery::from_params(&params)?).await
    }
    .await;
    answer(&headers, result)
}

pub async fn queued_endpoint(
    State(clickhouse): State<ClickHouse>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    let result = async {
        let params = QueryParams::parse(query, crate::queued::PARAMS)?;
        queued(&clickhouse, QueuedQuery::from_params(&params)?).await
    }
    .await;
    answer(&headers, result)
}

/// Any other `/api/...` path: a JSON 404.
pub async fn not_found() -> Response {
    ApiError::NotFound("there is no such endpoint; see /api/openapi.json".into()).into_response()
}
