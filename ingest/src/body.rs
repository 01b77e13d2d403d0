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

/// A body too large to hold in memory (a log upload), as a stream of chunks. An announced
/// `Content-Length` over `limit` is refused at once; each chunk must arrive within
/// `chunk_timeout` (a stalled client yields a `TimedOut` error, see [`stream_error`]); the
/// consumer enforces `limit` on what actually arrives.
pub fn stream(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
    chunk_timeout: Duration,
) -> Result<impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Unpin, GatewayError> {
    if content_length(headers).is_some_and(|len| len > limit) {
        return Err(GatewayError::TooLarge {
            limit: limit as usize,
        });
    }
    let chunks = body.into_data_stream();
    Ok(Box::pin(futures::stream::unfold(
        chunks,
        move |mut chunks| async move {
            use futures::StreamExt;
            match tokio::time::timeout(chunk_timeout, chunks.next()).await {
                Err(_) => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no part of the body arrived in time",
                    )),
                    chunks,
                )),
                Ok(None) => None,
                Ok(Some(chunk)) => Some((chunk.map_err(std::io::Error::other), chunks)),
            }
        },
    )))
}

/// The gateway's answer to a streamed body that failed: 408 for a stalled client, 400 else.
pub fn stream_error(error: &std::io::Error, chunk_timeout: Duration) -> GatewayError {
    if error.kind() == std::io::ErrorKind::TimedOut {
        GatewayError::SlowBody {
            timeout_ms: chunk_timeout.as_millis() as u64,
        }
    } else {
        GatewayError::UnreadableBody(error.to_string())
    }
}
