//! The gateway's refusals: each one a status code and a JSON body `{"error": "...", "code": "..."}`.
//! The OOT endpoint keeps torchci's error texts (`Unauthorized`, `Payload exceeds 2MB limit`,
//! `Missing required field: workflow.job_name`, …) so existing relays see the same answers.

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
    #[error("unsupported Content-Encoding {encoding:?}: send {accepted}")]
    UnsupportedEncoding {
        encoding: String,
        accepted: &'static str,
    },
    #[error("body is larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("the body did not arrive within {timeout_ms} ms")]
    SlowBody { timeout_ms: u64 },
    #[error("cannot read the request body: {0}")]
    UnreadableBody(String),
    #[error("the body is empty")]
    EmptyBody,
    #[error("form body has no 'payload' field")]
    MissingFormPayload,
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("body must be a JSON object, found {0}")]
    NotAnObject(&'static str),
    #[error("Method not allowed")]
    MethodNotAllowed,
    #[error("too many requests in flight; retry shortly")]
    Overloaded,
    #[error("the broker did not acknowledge the append in time; nothing was stored, retry later")]
    Unavailable,
    #[error("the broker refused the append: {0}")]
    BrokerRefused(String),
    // OOT results (torchci's texts).
    #[error("Unauthorized")]
    Unauthorized,
    #[error("Payload exceeds 2MB limit")]
    OotTooLarge,
    #[error("Server misconfigured")]
    Misconfigured(&'static str),
    #[error("Missing required field: {0}")]
    MissingField(&'static str),
    #[error("Malformed OOT result: {0}")]
    MalformedOot(String),
    #[error(
        "no CircleCI secret is configured (gateway.circleci_secrets); the endpoint is disabled"
    )]
    CircleCiDisabled,
    #[error("{0} uploads are disabled: no logs.upload_tokens is configured")]
    UploadsDisabled(&'static str),
    #[error("bad {what} upload: {reason}")]
    BadUpload { what: &'static str, reason: String },
    #[error("the body is not XML: {0}")]
    NotXml(String),
    #[error("the body is not valid gzip (Content-Encoding: gzip): {0}")]
    BadGzip(String),
    #[error("the {0} store is unavailable; nothing was stored, retry later")]
    StoreUnavailable(&'static str),
    #[error("the admin endpoints are disabled: no gateway.admin_tokens is configured")]
    AdminDisabled,
    #[error("bad backfill request: {0}")]
    BadBackfill(String),
    #[error("{0}")]
    BackfillBusy(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingHeader(_)
            | Self::UnreadableBody(_)
            | Self::EmptyBody
            | Self::MissingFormPayload
            | Self::InvalidJson(_)
            | Self::NotAnObject(_)
            | Self::MissingField(_)
            | Self::MalformedOot(_)
            | Self::BadUpload { .. }
            | Self::NotXml(_)
            | Self::BadGzip(_)
            | Self::BadBackfill(_) => StatusCode::BAD_REQUEST,
            Self::BackfillBusy(_) => StatusCode::CONFLICT,
            Self::BadSignature(_) | Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::UnsupportedContentType(_) | Self::UnsupportedEncoding { .. } => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::TooLarge { .. } | Self::OotTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::SlowBody { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::CircleCiDisabled | Self::UploadsDisabled(_) | Self::AdminDisabled => {
                StatusCode::NOT_FOUND
            }
            Self::Overloaded | Self::Unavailable | Self::StoreUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::BrokerRefused(_) => StatusCode::BAD_GATEWAY,
            Self::Misconfigured(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::BadSignature(_) => "bad_signature",
            Self::UnsupportedContentType(_) => "unsupported_content_type",
            Self::UnsupportedEncoding { .. } => "unsupported_encoding",
            Self::TooLarge { .. } | Self::OotTooLarge => "too_large",
            Self::SlowBody { .. } => "slow_body",
            Self::UnreadableBody(_) => "unreadable_body",
            Self::EmptyBody => "empty_body",
            Self::MissingFormPayload => "missing_form_payload",
            Self::InvalidJson(_) => "invalid_json",
            Self::NotAnObject(_) => "not_an_object",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Overloaded => "overloaded",
            Self::Unavailable => "broker_unavailable",
            Self::BrokerRefused(_) => "broker_refused",
            Self::Unauthorized => "unauthorized",
            Self::Misconfigured(_) => "misconfigured",
            Self::MissingField(_) => "missing_field",
            Self::MalformedOot(_) => "malformed",
            Self::CircleCiDisabled | Self::UploadsDisabled(_) | Self::AdminDisabled => "disabled",
            Self::BadBackfill(_) => "bad_request",
            Self::BackfillBusy(_) => "busy",
            Self::BadUpload { .. } => "bad_upload",
            Self::NotXml(_) => "not_xml",
            Self::BadGzip(_) => "bad_gzip",
            Self::StoreUnavailable(_) => "store_unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        metrics::counter!("hudstream_gateway_refused_total", "code" => self.code()).increment(1);
        if let Self::Misconfigured(why) = &self {
            tracing::error!(why, "refusing request: server misconfigured");
        }
        let status = self.status();
        let mut response = (
            status,
            axum::Json(json!({"error": self.to_string(), "code": self.code()})),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}
