//! The bearer token of the admin listener: with `[admin] token` set, every request that
//! changes something (any method but GET, HEAD and OPTIONS) must carry
//! `Authorization: Bearer <token>`, else it is answered 401 and never reaches its handler.
//! Reading stays open, so probes (`/healthz`, `/readyz`) and scrapers (`/metrics`) need no
//! secret.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AdminState;

/// Lets the request through when no token is configured, when it only reads, or when it
/// carries the token.
pub async fn require_token(
    State(state): State<Arc<AdminState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.token else {
        return next.run(request).await;
    };
    if reads_only(request.method()) {
        return next.run(request).await;
    }
    match bearer(request.headers()) {
        Some(given) if same_secret(given, token.expose()) => next.run(request).await,
        Some(_) => refuse("the bearer token is not the admin token"),
        None => refuse("this request needs `Authorization: Bearer <token>` ([admin] token is set)"),
    }
}

fn reads_only(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// Compares digests rather than the tokens themselves, in constant time, so neither the
/// position of the first wrong byte nor the token's length shows in the response time.
fn same_secret(given: &str, expected: &str) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    given.as_slice().ct_eq(expected.as_slice()).into()
}

fn refuse(reason: &str) -> Response {
    tracing::info!("admin request refused: {reason}");
    let mut response = (StatusCode::UNAUTHORIZED, Json(json!({ "error": reason }))).into_response();
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"watchtower-admin\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_authorization(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn the_token_is_read_from_a_bearer_header() {
        assert_eq!(bearer(&with_authorization("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&with_authorization("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&with_authorization("Basic YWJj")), None);
        assert_eq!(bearer(&with_authorization("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn only_the_same_token_matches() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cre", "s3cret"));
        assert!(!same_secret("s3cret!", "s3cret"));
        assert!(!same_secret("", "s3cret"));
    }

    #[test]
    fn reading_needs_no_token() {
        assert!(reads_only(&Method::GET));
        assert!(reads_only(&Method::HEAD));
        assert!(!reads_only(&Method::POST));
        assert!(!reads_only(&Method::PUT));
        assert!(!reads_only(&Method::DELETE));
        assert!(!reads_only(&Method::PATCH));
    }
}
