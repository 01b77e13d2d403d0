//! Reading a request body with a size cap and a deadline.
//!
//! A body announced larger than the cap is refused from its `Content-Length` alone, without
//! reading it; one that turns out larger is cut off at the cap. A client that sends its body too
//! slowly gets a 408 and no longer holds a worker; one that hangs up midway gets a 400.
//!
//! A request refused before its body was read has the rest of the body read and thrown away
//! ([`Lingering`], at most [`LINGER_BYTES`] within [`LINGER_TIME`], giving up on a client that
//! pauses for [`LINGER_IDLE`]) before the answer goes out:
//! a server that closes a connection with unread bytes in it makes the kernel send a reset, and
//! a client still sending then sees the reset instead of its 4xx.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
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

/// At most this much of a refused request's unread body is read and thrown away.
pub const LINGER_BYTES: usize = 8 << 20;
/// For at most this long,
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// and no longer than this after the last chunk: a stalled client does not hold its answer.
pub const LINGER_IDLE: Duration = Duration::from_millis(200);

/// A request body the handler reads through while the gateway keeps hold of what it leaves:
/// [`Lingering::wrap`] gives the handler its body and a [`Leftover`] to drain once it answered.
pub struct Lingering {
    slot: Arc<Mutex<Option<Body>>>,
}

/// What a handler left of its request body.
pub struct Leftover {
    slot: Arc<Mutex<Option<Body>>>,
}

fn lock(slot: &Mutex<Option<Body>>) -> MutexGuard<'_, Option<Body>> {
    // A panic while polling leaves a body that is still safe to poll or drop.
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Lingering {
    pub fn wrap(body: Body) -> (Body, Leftover) {
        let slot = Arc::new(Mutex::new(Some(body)));
        (
            Body::new(Lingering { slot: slot.clone() }),
            Leftover { slot },
        )
    }
}

impl http_body::Body for Lingering {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        match lock(&self.slot).as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        lock(&self.slot)
            .as_ref()
            .is_none_or(|body| body.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        lock(&self.slot)
            .as_ref()
            .map(|body| body.size_hint())
            .unwrap_or_else(|| http_body::SizeHint::with_exact(0))
    }
}

impl Leftover {
    /// Reads and discards what is left of the body, within [`LINGER_BYTES`] and [`LINGER_TIME`];
    /// returns how many bytes it threw away.
    pub async fn drain(self) -> usize {
        use futures::StreamExt;
        let Some(body) = lock(&self.slot).take() else {
            return 0;
        };
        // Announced larger than what would be read: the client sees a reset whatever we do.
        if http_body::Body::is_end_stream(&body)
            || http_body::Body::size_hint(&body).lower() > LINGER_BYTES as u64
        {
            return 0;
        }
        let mut chunks = body.into_data_stream();
        let mut drained = 0;
        let _ = tokio::time::timeout(LINGER_TIME, async {
            while let Ok(Some(Ok(chunk))) = tokio::time::timeout(LINGER_IDLE, chunks.next()).await {
                drained += chunk.len();
                if drained > LINGER_BYTES {
                    break;
                }
            }
        })
        .await;
        drained
    }
}

#[cfg(test)]
mod lingering_tests {
    use super::*;

    #[tokio::test]
    async fn what_the_handler_leaves_is_drained_and_what_it_read_is_not_read_twice() {
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"defg")),
        ];
        let (body, leftover) = Lingering::wrap(Body::from_stream(futures::stream::iter(chunks)));
        let mut stream = body.into_data_stream();
        use futures::StreamExt;
        assert_eq!(stream.next().await.unwrap().unwrap(), "abc");
        drop(stream);
        assert_eq!(leftover.drain().await, 4);

        let (body, leftover) = Lingering::wrap(Body::from("all of it"));
        assert_eq!(axum::body::to_bytes(body, 100).await.unwrap(), "all of it");
        assert_eq!(leftover.drain().await, 0);
    }
}
