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

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::NotFound(_) => "not_found",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// What a caller is told. A database failure is logged with its details here and
    /// answered without them: SQL and server messages are not for callers.
    pub fn public_message(&self) -> String {
        match self {
            Self::Unavailable(e) => {
                tracing::warn!(error = %e, "query failed");
                "the database is unavailable; try again shortly".to_string()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.public_message();
        (
            self.status(),
            // A 404 for a commit not ingested yet must not be cached by a CDN.
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            axum::Json(json!({"error": message, "code": self.code()})),
        )
            .into_response()
    }
}
