//! Reading a request body with a size cap and a deadline.
//!
//! A body announced larger than the cap is refused from its `Content-Length` alone, without
//! reading it; one that turns out larger is cut off at the cap. A client that sends its body too
//! slowly gets a 408 and no longer holds a worker; one that hangs up midway gets a 400.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use bytes::Bytes;

use crate::error::GatewayError;

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

pub async fn read(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, GatewayError> {
    if content_length(headers).is_some_and(|len| len > limit as u64) {
        return Err(GatewayError::TooLarge { limit });
    }
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(GatewayError::SlowBody {
            timeout_ms: timeout.as_millis() as u64,
        }),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            let inner = e.into_inner();
            if inner
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(GatewayError::TooLarge { limit })
            } else {
                Err(GatewayError::UnreadableBody(inner.to_string()))
            }
        }
    }
}
