//! `POST /webhooks/{source}`: any request a third party sends becomes a `webhook.received`
//! event with the source, a few of its headers, its body and when it arrived.
//!
//! A source with a `[webhooks.SOURCE]` secret must sign the raw body (HMAC-SHA256); the
//! signature is checked before anything else is done with the body, and a missing or wrong
//! one is a 401 that publishes nothing. A source without a table is refused (404) unless
//! `[ingest] allow_unsigned_webhooks` is on.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_TYPE, USER_AGENT};
use axum::http::{HeaderMap, HeaderName};
use serde_json::{Map, Value};
use watchtower_events::{WEBHOOK_RECEIVED, WebhookReceived, now_rfc3339};

use super::signature;
use super::{Accepted, IngestError, IngestState, options_from};
use crate::config::{WebhookSource, is_source_name};

/// Publishes the request as a `webhook.received` event of `source`.
pub async fn receive(
    State(state): State<Arc<IngestState>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Accepted, IngestError> {
    let config = &state.config;
    let hook = config.webhooks.get(&source);
    if hook.is_none() && !(config.allow_unsigned_webhooks && is_source_name(&source)) {
        return Err(IngestError::UnknownSource(source));
    }
    let body =
        body.map_err(|rejection| IngestError::from_body(&rejection, config.max_body_bytes))?;
    if let Some(WebhookSource {
        secret: Some(secret),
        signature_header,
        ..
    }) = hook
    {
        signature::verify(
            secret.expose().as_bytes(),
            &body,
            &headers,
            signature_header,
        )?;
    }
    let forwarded = hook.map_or(&[][..], |hook| &hook.forward_headers);
    let payload = WebhookReceived {
        source,
        headers: selected_headers(&headers, forwarded),
        body: body_value(&body),
        received_at: now_rfc3339(),
    };
    let data = serde_json::to_string(&payload)
        .map_err(|error| IngestError::BadBody(format!("cannot encode the event: {error}")))?;
    let options = options_from(&headers)?;
    state.publish(WEBHOOK_RECEIVED, &data, options).await
}

/// `content-type`, `user-agent` and the source's `forward_headers` that the request has,
/// by lowercase name; repeated headers are joined with `, ` as HTTP allows.
fn selected_headers(headers: &HeaderMap, forwarded: &[HeaderName]) -> Map<String, Value> {
    let mut selected = Map::new();
    for name in [&CONTENT_TYPE, &USER_AGENT].into_iter().chain(forwarded) {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect();
        if !values.is_empty() {
            selected.insert(name.as_str().to_owned(), Value::String(values.join(", ")));
        }
    }
    selected
}

/// The body as JSON when it parses as JSON, else as one JSON string (invalid UTF-8
/// replaced), so form posts and plain text arrive too.
fn body_value(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde_json::json;

    use super::*;

    #[test]
    fn json_bodies_stay_json_and_others_become_strings() {
        assert_eq!(body_value(br#"{"a":[1,2]}"#), json!({"a": [1, 2]}));
        assert_eq!(body_value(b"a=1&b=2"), json!("a=1&b=2"));
        assert_eq!(body_value(b""), json!(""));
    }

    #[test]
    fn only_selected_headers_are_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("x-github-event", HeaderValue::from_static("push"));
        headers.insert("authorization", HeaderValue::from_static("Bearer nope"));
        headers.append("x-tag", HeaderValue::from_static("a"));
        headers.append("x-tag", HeaderValue::from_static("b"));
        let forwarded = [
            HeaderName::from_static("x-github-event"),
            HeaderName::from_static("x-tag"),
        ];
        let selected = Value::Object(selected_headers(&headers, &forwarded));
        assert_eq!(
            selected,
            json!({
                "content-type": "application/json",
                "x-github-event": "push",
                "x-tag": "a, b",
            })
        );
    }
}
