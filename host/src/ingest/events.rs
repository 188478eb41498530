//! `POST /events/{type}`: the body is the event's payload, a JSON object.
//!
//! Checked in the order a sender can act on: the type (404 when this listener does not take
//! it), the body (400 with the parser's reason when it is not JSON), then the payload against
//! the type's schema (422 naming the field). Only then is it published; the answer is 202
//! with `event_id`, `entry_id` and `stream`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::Value;
use watchtower_events::{EventType, validate_event_type};

use super::{Accepted, IngestError, IngestState, options_from};

/// Publishes the body as an event of the type in the path.
pub async fn publish_event(
    State(state): State<Arc<IngestState>>,
    Path(event_type): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Accepted, IngestError> {
    accepts(&event_type, state.config.strict)?;
    let body =
        body.map_err(|rejection| IngestError::from_body(&rejection, state.config.max_body_bytes))?;
    let data = json_object(&body)?;
    let options = options_from(&headers)?;
    state.publish(&event_type, data, options).await
}

/// Whether this listener takes events of `event_type`: a valid type string, and in strict
/// mode one of the eight built-in types.
fn accepts(event_type: &str, strict: bool) -> Result<(), IngestError> {
    validate_event_type(event_type)
        .map_err(|error| IngestError::UnknownEventType(error.to_string()))?;
    if strict && EventType::parse(event_type).is_none() {
        let known: Vec<&str> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
        return Err(IngestError::UnknownEventType(format!(
            "unknown event type `{event_type}`: this listener is strict and takes only {} \
             ([ingest] strict = false takes custom types too)",
            known.join(", ")
        )));
    }
    Ok(())
}

/// The body as text, once it is known to be one JSON object.
fn json_object(body: &[u8]) -> Result<&str, IngestError> {
    let text = std::str::from_utf8(body)
        .map_err(|error| IngestError::BadBody(format!("body is not UTF-8: {error}")))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(_)) => Ok(text.trim()),
        Ok(other) => Err(IngestError::InvalidPayload(format!(
            "the payload must be a JSON object, not {}",
            kind_of(&other)
        ))),
        Err(error) => Err(IngestError::BadBody(format!(
            "body is not valid JSON: {error}"
        ))),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_mode_takes_only_built_in_types() {
        assert!(accepts("position.updated", true).is_ok());
        let error = accepts("billing.invoice_paid", true).unwrap_err();
        assert_eq!(error.status().as_u16(), 404);
        assert!(error.to_string().contains("strict"), "{error}");
        assert!(accepts("billing.invoice_paid", false).is_ok());
    }

    #[test]
    fn an_invalid_type_string_is_refused_in_either_mode() {
        for strict in [true, false] {
            let error = accepts("Position", strict).unwrap_err();
            assert_eq!(error.status().as_u16(), 404, "{error}");
        }
    }

    #[test]
    fn bad_json_is_a_400_with_the_parser_reason() {
        let error = json_object(br#"{"truck_id": "#).unwrap_err();
        assert_eq!(error.status().as_u16(), 400);
        assert!(error.to_string().contains("EOF"), "{error}");
    }

    #[test]
    fn json_that_is_not_an_object_is_a_422() {
        let error = json_object(b"[1, 2]").unwrap_err();
        assert_eq!(error.status().as_u16(), 422);
        assert!(error.to_string().contains("an array"), "{error}");
    }

    #[test]
    fn an_object_is_passed_on_as_sent() {
        assert_eq!(json_object(b" {\"a\": 1}\n").unwrap(), "{\"a\": 1}");
    }
}
