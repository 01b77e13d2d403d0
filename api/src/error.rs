//! The API's error answers: a status and `{"error": "...", "code": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Unavailable(e) => {
                tracing::warn!(error = %e, "query failed");
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
        };
        let message = match &self {
            // Do not echo SQL to callers; the log has the details.
            Self::Unavailable(_) => "the database is unavailable; try again shortly".to_string(),
            other => other.to_string(),
        };
        (status, axum::Json(json!({"error": message, "code": code}))).into_response()
    }
}
