//! Publishing events from a handler.
//!
//! A published event is buffered by the host and appended to the stream of its type only
//! when [`Handler::handle`](crate::Handler::handle) returns `Ok`, in the same transaction as
//! the acknowledgement of the entry being handled; a failed call publishes nothing. The host
//! assigns the event id and timestamp, and the event inherits the correlation id of the
//! event being handled.
//!
//! - [`publish`] sends one of the typed payloads of [`crate::events`] (or any type that
//!   implements [`Payload`]).
//! - [`publish_raw`] sends a custom event type with JSON given as text or as a
//!   [`serde_json::Value`].
//! - [`Outgoing`] does either with extra metadata.
//!
//! ```no_run
//! use watchtower_guest::publish::{publish_raw, Outgoing};
//! use watchtower_guest::serde_json::json;
//!
//! # fn main() -> Result<(), watchtower_guest::publish::PublishError> {
//! publish_raw("geofence.entered", &json!({ "truck_id": "T-12", "zone": "depot" }))?;
//! publish_raw("geofence.left", r#"{"truck_id":"T-12","zone":"depot"}"#)?;
//! Outgoing::raw("geofence.entered", r#"{"truck_id":"T-7","zone":"port"}"#)
//!     .metadata("source", "geofence")
//!     .send()?;
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;

use watchtower_events::Payload;

use crate::bindings::watchtower::handler::host;
use crate::bindings::watchtower::handler::types::PublishError as WitPublishError;

/// Why an event was not published. Nothing is buffered when this is returned.
///
/// Converts into [`HandleError::Reject`](crate::HandleError::Reject) with `?`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The event type is not a valid type string (`[a-z0-9_]+(.[a-z0-9_]+)+`).
    #[error("cannot publish: invalid event type: {0}")]
    InvalidType(String),
    /// The payload could not be serialized, is not a JSON object, or does not fit the schema
    /// of a known event type.
    #[error("cannot publish: invalid payload: {0}")]
    InvalidData(String),
}

impl From<WitPublishError> for PublishError {
    fn from(err: WitPublishError) -> Self {
        match err {
            WitPublishError::InvalidType(reason) => Self::InvalidType(reason),
            WitPublishError::InvalidData(reason) => Self::InvalidData(reason),
        }
    }
}

/// JSON that [`publish_raw`] and [`Outgoing::raw`] accept: text (`str`, `String`) is sent as
/// it is, a [`serde_json::Value`] or object map is serialized first.
///
/// The host checks that the result is a JSON object.
pub trait RawPayload {
    /// The payload as JSON text.
    fn to_json_text(&self) -> Result<Cow<'_, str>, PublishError>;
}

impl RawPayload for str {
    fn to_json_text(&self) -> Result<Cow<'_, str>, PublishError> {
        Ok(Cow::Borrowed(self))
    }
}

impl RawPayload for String {
    fn to_json_text(&self) -> Result<Cow<'_, str>, PublishError> {
        Ok(Cow::Borrowed(self))
    }
}

impl RawPayload for serde_json::Value {
    fn to_json_text(&self) -> Result<Cow<'_, str>, PublishError> {
        // Serializing a `Value` cannot fail (its keys are strings), but say so if it ever did.
        serde_json::to_string(self)
            .map(Cow::Owned)
            .map_err(|err| PublishError::InvalidData(err.to_string()))
    }
}

impl RawPayload for serde_json::Map<String, serde_json::Value> {
    fn to_json_text(&self) -> Result<Cow<'_, str>, PublishError> {
        serde_json::to_string(self)
            .map(Cow::Owned)
            .map_err(|err| PublishError::InvalidData(err.to_string()))
    }
}

/// Publishes `payload` as an event of its type (`P::EVENT_TYPE`) and returns the new
/// event's id.
pub fn publish<P: Payload>(payload: &P) -> Result<String, PublishError> {
    Outgoing::typed(payload)?.send()
}

/// Publishes `data` as an event of `event_type` and returns the new event's id. For custom
/// event types, or payloads built as JSON.
pub fn publish_raw<D>(event_type: &str, data: &D) -> Result<String, PublishError>
where
    D: RawPayload + ?Sized,
{
    Outgoing::raw(event_type, data).send()
}

/// An event about to be published, for when it needs metadata; [`publish`] and
/// [`publish_raw`] cover the common case.
///
/// Metadata added here joins the metadata the host gives every published event.
#[derive(Debug, Clone)]
#[must_use = "an `Outgoing` does nothing until `send` is called"]
pub struct Outgoing {
    event_type: String,
    data: Result<String, PublishError>,
    metadata: Vec<(String, String)>,
}

impl Outgoing {
    /// An event carrying a typed payload; fails when the payload does not serialize.
    pub fn typed<P: Payload>(payload: &P) -> Result<Self, PublishError> {
        let data = serde_json::to_string(payload).map_err(|err| {
            PublishError::InvalidData(format!("{} payload: {err}", P::EVENT_TYPE))
        })?;
        Ok(Self {
            event_type: P::EVENT_TYPE.to_owned(),
            data: Ok(data),
            metadata: Vec::new(),
        })
    }

    /// An event of `event_type` carrying `data`. A payload that cannot be turned into text
    /// is reported by [`Outgoing::send`], so that this chains without a `?`.
    pub fn raw<D>(event_type: &str, data: &D) -> Self
    where
        D: RawPayload + ?Sized,
    {
        Self {
            event_type: event_type.to_owned(),
            data: data.to_json_text().map(Cow::into_owned),
            metadata: Vec::new(),
        }
    }

    /// Adds the metadata entry `key` = `value`.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// Hands the event to the host and returns its event id.
    pub fn send(self) -> Result<String, PublishError> {
        let data = self.data?;
        host::publish(&self.event_type, &data, &self.metadata).map_err(PublishError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_text_is_sent_unchanged() {
        let out = Outgoing::raw("geofence.entered", r#"{"zone":"depot"}"#).metadata("k", "v");
        assert_eq!(out.event_type, "geofence.entered");
        assert_eq!(out.data.as_deref(), Ok(r#"{"zone":"depot"}"#));
        assert_eq!(out.metadata, vec![("k".to_owned(), "v".to_owned())]);
    }

    #[test]
    fn raw_value_is_serialized() {
        let out = Outgoing::raw("geofence.entered", &serde_json::json!({ "zone": "depot" }));
        assert_eq!(out.data.as_deref(), Ok(r#"{"zone":"depot"}"#));
    }

    #[test]
    fn host_errors_keep_their_kind() {
        let err = PublishError::from(WitPublishError::InvalidData("not an object".into()));
        assert_eq!(err, PublishError::InvalidData("not an object".into()));
    }
}
