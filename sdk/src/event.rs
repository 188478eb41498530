//! [`Event`]: the stream entry a handler is called with, and typed access to its payload.
//!
//! The host has already checked the wire format (required fields present, `data` a JSON
//! object) before calling the handler; what is left for the handler is to read the payload
//! as the type it expects. A payload that does not fit that type is the publisher's mistake
//! and will not improve on retry, so [`Event::data`] reports it as a
//! [`HandleError::Reject`] whose reason names the event and the field.

use serde::de::DeserializeOwned;
use watchtower_events::Payload;

use crate::HandleError;
use crate::bindings;

/// One event, as delivered to [`Handler::handle`](crate::Handler::handle).
///
/// The same entry can be delivered more than once (after a retry, a trap, or a host that died
/// before committing); [`Event::event_id`] stays the same across deliveries and
/// [`Event::attempt`] counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    id: String,
    event_id: String,
    event_type: String,
    timestamp: String,
    version: String,
    correlation_id: Option<String>,
    metadata: Vec<(String, String)>,
    data: String,
    attempt: u32,
}

impl Event {
    /// An event of `event_type` whose payload is the JSON text `data`, with placeholder
    /// values for the rest (entry id `0-0`, event id `test-event`, version `1`, attempt 1).
    ///
    /// The host builds the events a handler receives; this is for unit-testing the parts of
    /// a handler that read events, natively, without a host.
    pub fn new(event_type: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            id: "0-0".to_owned(),
            event_id: "test-event".to_owned(),
            event_type: event_type.into(),
            timestamp: "1970-01-01T00:00:00Z".to_owned(),
            version: "1".to_owned(),
            correlation_id: None,
            metadata: Vec::new(),
            data: data.into(),
            attempt: 1,
        }
    }

    /// Replaces the event id (see [`Event::new`]).
    #[must_use]
    pub fn with_event_id(mut self, event_id: impl Into<String>) -> Self {
        self.event_id = event_id.into();
        self
    }

    /// Replaces the correlation id (see [`Event::new`]).
    #[must_use]
    pub fn with_correlation_id(mut self, correlation_id: impl Into<String>) -> Self {
        self.correlation_id = Some(correlation_id.into());
        self
    }

    /// Adds a metadata entry (see [`Event::new`]).
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// Replaces the delivery count (see [`Event::new`]).
    #[must_use]
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    pub(crate) fn from_wit(event: bindings::Event) -> Self {
        Self {
            id: event.id,
            event_id: event.event_id,
            event_type: event.event_type,
            timestamp: event.timestamp,
            version: event.version,
            correlation_id: event.correlation_id,
            metadata: event.metadata,
            data: event.data,
            attempt: event.attempt,
        }
    }

    /// The stream entry id Redis assigned (`1733325000000-0`); unique within the stream.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The event's own id, unique across streams and stable across re-deliveries: the key
    /// to recognise an event seen before, or to derive ids of events published for it.
    pub fn event_id(&self) -> &str {
        &self.event_id
    }

    /// The event type, e.g. `position.updated`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// When the event happened, RFC 3339 UTC (`2026-12-04T15:09:01.123Z`).
    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    /// The payload schema version (`1` when the publisher did not say).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The id that ties related events together, if the publisher set one. Events this
    /// handler publishes inherit it without the handler doing anything.
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// All metadata entries, in the order the host passed them.
    pub fn metadata(&self) -> &[(String, String)] {
        &self.metadata
    }

    /// The metadata value for `key`, if there is one.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Which delivery of this entry this is, starting at 1. More than 1 means an earlier
    /// attempt failed, trapped, timed out, or its host died before committing.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The payload exactly as published: a JSON object, as text.
    pub fn raw_data(&self) -> &str {
        &self.data
    }

    /// The payload deserialized as `T`, usually one of the typed payloads in
    /// [`crate::events`]; an error is a [`HandleError::Reject`] naming the event type, the
    /// event id and what did not fit. The event type is not checked: see [`Event::payload`].
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, HandleError> {
        serde_json::from_str(&self.data).map_err(|err| {
            HandleError::reject(format!(
                "invalid {} payload in event {}: {err}",
                self.event_type, self.event_id
            ))
        })
    }

    /// Whether this event is of `P`'s type (`P::EVENT_TYPE`).
    pub fn is<P: Payload>(&self) -> bool {
        self.event_type == P::EVENT_TYPE
    }

    /// The payload as `P` when this event is of `P`'s type, `Ok(None)` when it is of another
    /// type, and a rejection (as for [`Event::data`]) when the type matches but the payload
    /// does not fit. Suits handlers subscribed to several types:
    ///
    /// ```
    /// use watchtower_guest::events::{PositionUpdated, TripCreated};
    /// use watchtower_guest::{Event, HandleError};
    ///
    /// fn route(event: &Event) -> Result<&'static str, HandleError> {
    ///     if let Some(_position) = event.payload::<PositionUpdated>()? {
    ///         return Ok("position");
    ///     }
    ///     if let Some(_trip) = event.payload::<TripCreated>()? {
    ///         return Ok("trip");
    ///     }
    ///     Ok("ignored")
    /// }
    ///
    /// let event = Event::new("sync.completed", "{}");
    /// assert_eq!(route(&event), Ok("ignored"));
    /// ```
    pub fn payload<P: Payload>(&self) -> Result<Option<P>, HandleError> {
        if self.is::<P>() {
            self.data().map(Some)
        } else {
            Ok(None)
        }
    }

    /// The payload as an untyped JSON value, for handlers of custom event types; an error is a
    /// rejection, as for [`Event::data`].
    pub fn json(&self) -> Result<serde_json::Value, HandleError> {
        self.data()
    }
}

#[cfg(test)]
mod tests {
    use watchtower_events::PositionUpdated;

    use super::*;

    const POSITION: &str =
        r#"{"truck_id":"truck-7","truck_number":"T-12","lat":52.1,"lng":4.3,"speed":104.0}"#;

    #[test]
    fn data_reads_a_typed_payload() {
        let event = Event::new("position.updated", POSITION);
        let position: PositionUpdated = event.data().unwrap();
        assert_eq!(position.truck_number, "T-12");
        assert_eq!(position.speed, 104.0);
        assert_eq!(position.heading, None);
    }

    #[test]
    fn data_rejects_a_payload_that_does_not_fit_naming_the_event() {
        let event =
            Event::new("position.updated", r#"{"truck_id":"truck-7"}"#).with_event_id("evt-1");
        let err = event.data::<PositionUpdated>().unwrap_err();
        assert!(!err.is_retry());
        assert!(err.reason().contains("position.updated"), "{err}");
        assert!(err.reason().contains("evt-1"), "{err}");
        assert!(err.reason().contains("truck_number"), "{err}");
    }

    #[test]
    fn payload_skips_other_types() {
        let event = Event::new("trip.created", "{}");
        assert_eq!(event.payload::<PositionUpdated>(), Ok(None));
        assert!(!event.is::<PositionUpdated>());
    }

    #[test]
    fn metadata_value_finds_the_entry() {
        let event = Event::new("x.y", "{}").with_metadata("source", "gps");
        assert_eq!(event.metadata_value("source"), Some("gps"));
        assert_eq!(event.metadata_value("other"), None);
    }

    #[test]
    fn json_rejects_text_that_is_not_json() {
        let err = Event::new("x.y", "not json").json().unwrap_err();
        assert!(!err.is_retry());
    }
}
