//! The gateway's refusals: each one a status code and a JSON body `{"error": "...", "code": "..."}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("{0}")]
    BadSignature(#[from] crate::signature::SignatureError),
    #[error("unsupported content type {0:?}: send application/json or application/x-www-form-urlencoded")]
    UnsupportedContentType(String),
    #[error("body is larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("cannot read the request body: {0}")]
    UnreadableBody(String),
    #[error("form body has no 'payload' field")]
    MissingFormPayload,
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("body must be a JSON object, found {0}")]
    NotAnObject(&'static str),
    #[error("the broker did not acknowledge the append in time; nothing was stored, retry later")]
    Unavailable,
    #[error("the broker refused the append: {0}")]
    BrokerRefused(String),
}

impl GatewayError {
    fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MissingHeader(_) | Self::UnreadableBody(_) | Self::MissingFormPayload | Self::InvalidJson(_) | Self::NotAnObject(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::BadSignature(_) => StatusCode::UNAUTHORIZED,
            Self::UnsupportedContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::BrokerRefused(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::BadSignature(_) => "bad_signature",
            Self::UnsupportedContentType(_) => "unsupported_content_type",
            Self::TooLarge { .. } => "too_large",
            Self::UnreadableBody(_) => "unreadable_body",
            Self::MissingFormPayload => "missing_form_payload",
            Self::InvalidJson(_) => "invalid_json",
            Self::NotAnObject(_) => "not_an_object",
            Self::Unavailable => "broker_unavailable",
            Self::BrokerRefused(_) => "broker_refused",
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        metrics::counter!("hudstream_gateway_refused_total", "code" => self.code()).increment(1);
        let status = self.status();
        let mut response = (status, axum::Json(json!({"error": self.to_string(), "code": self.code()}))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}
