//! The envelope: one event with everything around its payload.
//!
//! An [`Envelope`] is what one stream entry means once decoded (see [`crate::wire`]). The
//! payload stays JSON text in [`Envelope::data`]: the host hands it to the guest unchanged, so
//! it is parsed only by whoever needs its fields ([`Envelope::data_as`]).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use time::OffsetDateTime;

/// The payload schema version written when the publisher gives none.
pub const DEFAULT_VERSION: &str = "1";

/// One event: identity, type, time, tracing context and the JSON payload.
///
/// Decoded envelopes hold what the wire held: `timestamp` is the publisher's text (checked to
/// be RFC 3339, not rewritten) and `data` is the publisher's JSON text (checked to be an
/// object, not re-serialized).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The event's unique id (a UUID v7 when Watchtower publishes). Stays the same across
    /// re-deliveries, so consumers can use it to drop duplicates.
    pub event_id: String,
    /// The event type, e.g. `position.updated`; matches the stream the event is on.
    pub event_type: String,
    /// When the event happened, RFC 3339 (UTC with `Z` when Watchtower publishes).
    pub timestamp: String,
    /// The payload schema version; [`DEFAULT_VERSION`] unless the publisher said otherwise.
    pub version: String,
    /// Traces related events; events a handler publishes inherit it.
    pub correlation_id: Option<String>,
    /// Free-form string metadata from the publisher.
    pub metadata: BTreeMap<String, String>,
    /// The payload: the text of a JSON object.
    pub data: String,
}

impl Envelope {
    /// An envelope stamped now ([`now_rfc3339`]), with version [`DEFAULT_VERSION`], no
    /// correlation id and no metadata.
    ///
    /// `data` is taken as given; [`crate::kinds::validate_payload`] checks it against a type.
    pub fn new(
        event_id: impl Into<String>,
        event_type: impl Into<String>,
        data: impl Into<String>,
    ) -> Self {
        Self {
            event_id: event_id.into(),
            event_type: event_type.into(),
            timestamp: now_rfc3339(),
            version: DEFAULT_VERSION.to_owned(),
            correlation_id: None,
            metadata: BTreeMap::new(),
            data: data.into(),
        }
    }

    /// This envelope with its correlation id set.
    #[must_use]
    pub fn with_correlation_id(mut self, correlation_id: impl Into<String>) -> Self {
        self.correlation_id = Some(correlation_id.into());
        self
    }

    /// This envelope with one metadata entry added (replacing an earlier value of `key`).
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Parses the payload into `T`, typically one of the structs of [`crate::kinds`].
    ///
    /// ```
    /// use watchtower_events::{Envelope, PositionUpdated};
    /// let envelope = Envelope::new(
    ///     "1",
    ///     "position.updated",
    ///     r#"{"truck_id":"t1","truck_number":"NL-01","lat":52.1,"lng":5.1,"speed":88.0}"#,
    /// );
    /// let position: PositionUpdated = envelope.data_as()?;
    /// assert_eq!(position.speed, 88.0);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.data)
    }
}

/// The current time as RFC 3339 UTC with millisecond precision, e.g.
/// `2026-12-04T15:09:01.123Z`.
///
/// The fixed width (always three fractional digits) makes timestamps of one publisher sort as
/// text in time order.
pub fn now_rfc3339() -> String {
    format_rfc3339_millis(OffsetDateTime::now_utc())
}

/// Formats `at` (taken as UTC) as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
///
/// Written by hand rather than through a `time` format description because it cannot fail,
/// so `now_rfc3339` needs no error path.
fn format_rfc3339_millis(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond(),
    )
}

#[cfg(test)]
mod tests {
    use time::format_description::well_known::Rfc3339;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn new_fills_the_defaults() {
        let envelope = Envelope::new("id-1", "trip.created", "{}");
        assert_eq!(envelope.event_id, "id-1");
        assert_eq!(envelope.event_type, "trip.created");
        assert_eq!(envelope.version, DEFAULT_VERSION);
        assert_eq!(envelope.correlation_id, None);
        assert!(envelope.metadata.is_empty());
        assert_eq!(envelope.data, "{}");
        assert!(OffsetDateTime::parse(&envelope.timestamp, &Rfc3339).is_ok());
    }

    #[test]
    fn builders_set_correlation_and_metadata() {
        let envelope = Envelope::new("id", "a.b", "{}")
            .with_correlation_id("corr")
            .with_metadata("k", "v1")
            .with_metadata("k", "v2");
        assert_eq!(envelope.correlation_id.as_deref(), Some("corr"));
        assert_eq!(envelope.metadata.get("k").map(String::as_str), Some("v2"));
    }

    #[test]
    fn timestamps_have_millisecond_precision_and_z() {
        let formatted = format_rfc3339_millis(datetime!(2026-12-04 15:09:01.123456 UTC));
        assert_eq!(formatted, "2026-12-04T15:09:01.123Z");
        let formatted = format_rfc3339_millis(datetime!(2026-01-02 03:04:05 +02:00));
        assert_eq!(formatted, "2026-01-02T01:04:05.000Z");
    }

    #[test]
    fn now_is_parseable_rfc3339() {
        let now = now_rfc3339();
        assert_eq!(now.len(), "2026-12-04T15:09:01.123Z".len(), "{now}");
        assert!(now.ends_with('Z'), "{now}");
        assert!(OffsetDateTime::parse(&now, &Rfc3339).is_ok(), "{now}");
    }

    #[test]
    fn data_as_parses_the_payload() {
        let envelope = Envelope::new("id", "a.b", r#"{"x": 1}"#);
        let value: serde_json::Value = envelope.data_as().unwrap();
        assert_eq!(value["x"], 1);
        assert!(envelope.data_as::<Vec<u8>>().is_err());
    }
}
