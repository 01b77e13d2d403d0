//! Answers with caching headers: every successful answer has a strong `ETag` (a hash of its
//! body) and torchci's `Cache-Control` (a CDN may serve it for a minute and stale for four
//! more; a browser revalidates, and an unchanged answer is a bodiless 304).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// What the API's answers allow caches to do.
pub const CACHE_CONTROL: &str = "public, max-age=0, s-maxage=60, stale-while-revalidate=240";

/// A JSON answer with `ETag` and `Cache-Control`, or 304 if the client has it already.
pub fn json<T: Serialize>(request: &HeaderMap, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => cached(request, "application/json", bytes),
        Err(e) => ApiError::Unavailable(format!("encoding the answer: {e}")).into_response(),
    }
}

/// An HTML page with `ETag` and `Cache-Control`, or 304 if the client has it already.
pub fn html(request: &HeaderMap, page: String) -> Response {
    cached(request, "text/html; charset=utf-8", page.into_bytes())
}

/// Whether an `If-None-Match` header names `etag`.
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// The client's `If-None-Match`, if any.
pub fn if_none_match(request: &HeaderMap) -> Option<&str> {
    request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
}

/// Where an answer came from, in `X-Hud-Source`: `memory` (the hot window) or `clickhouse`.
pub const SOURCE: &str = "x-hud-source";

/// A request that asks for ClickHouse's answer even where memory has one (`X-Hud-Source:
/// clickhouse`): how the tests and the benchmark compare the two.
pub fn wants_clickhouse(request: &HeaderMap) -> bool {
    request
        .get(SOURCE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("clickhouse"))
}

/// A request that says `Cache-Control: no-cache`: an answer made now, not one kept.
pub fn wants_fresh(request: &HeaderMap) -> bool {
    request
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("no-cache"))
        })
}

/// An answer already made (a page from the hot window's cache), with its `ETag`.
pub fn bytes_tagged(
    content_type: &'static str,
    body: bytes::Bytes,
    etag: &str,
    source: &'static str,
) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    set_caching(response.headers_mut(), etag);
    response
        .headers_mut()
        .insert(SOURCE, HeaderValue::from_static(source));
    response
}

/// A 304 for an answer whose `ETag` is known without making it.
pub fn not_modified(etag: &str, source: &'static str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    set_caching(response.headers_mut(), etag);
    response
        .headers_mut()
        .insert(SOURCE, HeaderValue::from_static(source));
    response
}

/// The content types of the answers.
pub const JSON: &str = "application/json";
pub const HTML: &str = "text/html; charset=utf-8";

fn set_caching(headers: &mut HeaderMap, etag: &str) {
    if let Ok(v) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
}

fn cached(request: &HeaderMap, content_type: &'static str, body: Vec<u8>) -> Response {
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]);
    let matches = if_none_match(request).is_some_and(|v| etag_matches(v, &etag));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    set_caching(response.headers_mut(), &etag);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_answer_is_a_304_with_the_same_etag() {
        let first = json(&HeaderMap::new(), &serde_json::json!({"a": 1}));
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        assert_eq!(first.headers()[header::CACHE_CONTROL], CACHE_CONTROL);
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag.clone());
        let second = json(&again, &serde_json::json!({"a": 1}));
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(second.headers()[header::ETAG], etag);
        let changed = json(&again, &serde_json::json!({"a": 2}));
        assert_eq!(changed.status(), StatusCode::OK);
    }
}
