//! The eight built-in event types and their payloads.
//!
//! Each built-in type has a constant with its type string ([`POSITION_UPDATED`]), a variant of
//! [`EventType`] and a payload struct implementing [`Payload`] ([`PositionUpdated`]). The
//! structs list the fields SPEC §2 requires; payloads may carry more (publishers may add
//! fields), which the structs ignore when parsing.
//!
//! Custom types need none of this: any valid type string (see [`crate::naming`]) with a JSON
//! object as payload is a valid event.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::wire::check_json_object;

/// Type string of [`WebhookReceived`].
pub const WEBHOOK_RECEIVED: &str = "webhook.received";
/// Type string of [`TripCreated`].
pub const TRIP_CREATED: &str = "trip.created";
/// Type string of [`TripStatusChanged`].
pub const TRIP_STATUS_CHANGED: &str = "trip.status_changed";
/// Type string of [`PositionUpdated`].
pub const POSITION_UPDATED: &str = "position.updated";
/// Type string of [`TruckStatusChanged`].
pub const TRUCK_STATUS_CHANGED: &str = "truck.status_changed";
/// Type string of [`AlertTriggered`].
pub const ALERT_TRIGGERED: &str = "alert.triggered";
/// Type string of [`SyncCompleted`].
pub const SYNC_COMPLETED: &str = "sync.completed";
/// Type string of [`ErrorOccurred`].
pub const ERROR_OCCURRED: &str = "error.occurred";

/// One of the eight built-in event types.
///
/// Converts to and from its type string with [`EventType::as_str`] / [`EventType::parse`]
/// (or `Display` / `FromStr`). Custom types have no variant: code that handles any type works
/// with the string and uses this enum only to recognise the built-in ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// `webhook.received`: an inbound webhook, see [`WebhookReceived`].
    WebhookReceived,
    /// `trip.created`: see [`TripCreated`].
    TripCreated,
    /// `trip.status_changed`: see [`TripStatusChanged`].
    TripStatusChanged,
    /// `position.updated`: a GPS fix, see [`PositionUpdated`].
    PositionUpdated,
    /// `truck.status_changed`: see [`TruckStatusChanged`].
    TruckStatusChanged,
    /// `alert.triggered`: see [`AlertTriggered`].
    AlertTriggered,
    /// `sync.completed`: see [`SyncCompleted`].
    SyncCompleted,
    /// `error.occurred`: see [`ErrorOccurred`]; the host publishes one per dead letter.
    ErrorOccurred,
}

impl EventType {
    /// Every built-in type, in SPEC §2 order.
    pub const ALL: [EventType; 8] = [
        Self::WebhookReceived,
        Self::TripCreated,
        Self::TripStatusChanged,
        Self::PositionUpdated,
        Self::TruckStatusChanged,
        Self::AlertTriggered,
        Self::SyncCompleted,
        Self::ErrorOccurred,
    ];

    /// The type string, e.g. `position.updated`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebhookReceived => WEBHOOK_RECEIVED,
            Self::TripCreated => TRIP_CREATED,
            Self::TripStatusChanged => TRIP_STATUS_CHANGED,
            Self::PositionUpdated => POSITION_UPDATED,
            Self::TruckStatusChanged => TRUCK_STATUS_CHANGED,
            Self::AlertTriggered => ALERT_TRIGGERED,
            Self::SyncCompleted => SYNC_COMPLETED,
            Self::ErrorOccurred => ERROR_OCCURRED,
        }
    }

    /// The built-in type named by `s`, or `None` for any other string (custom types included).
    pub fn parse(s: &str) -> Option<EventType> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| UnknownEventType {
            value: s.to_owned(),
        })
    }
}

/// A string that is not one of the eight built-in type strings (from [`EventType::from_str`]).
///
/// It may still be a valid custom type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{value}` is not a built-in event type")]
pub struct UnknownEventType {
    value: String,
}

impl UnknownEventType {
    /// The string that was not recognised.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// A typed payload of a built-in event type.
///
/// Ties each struct to its type string, so publishing and parsing code can be generic over
/// the payload: `P::EVENT_TYPE` names the stream, `serde_json` does the rest.
pub trait Payload: Serialize + DeserializeOwned {
    /// The type string of events carrying this payload, e.g. [`POSITION_UPDATED`].
    const EVENT_TYPE: &'static str;
}

/// Payload of `webhook.received`: a webhook accepted by `POST /webhooks/{source}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookReceived {
    /// The `{source}` of the ingest URL, naming the sender.
    pub source: String,
    /// The request headers, as a JSON object.
    pub headers: Map<String, Value>,
    /// The request body: parsed JSON, or a JSON string if the body was not JSON.
    pub body: Value,
    /// When the host received the request, RFC 3339.
    pub received_at: String,
}

impl Payload for WebhookReceived {
    const EVENT_TYPE: &'static str = WEBHOOK_RECEIVED;
}

/// Payload of `trip.created`: a trip was planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TripCreated {
    /// The new trip.
    pub trip_id: String,
    /// The truck that will drive it.
    pub truck_id: String,
    /// Where the trip starts.
    pub origin: String,
    /// Where the trip ends.
    pub destination: String,
    /// Planned departure, RFC 3339.
    pub planned_departure: String,
}

impl Payload for TripCreated {
    const EVENT_TYPE: &'static str = TRIP_CREATED;
}

/// Payload of `trip.status_changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TripStatusChanged {
    /// The trip whose status changed.
    pub trip_id: String,
    /// The truck on the trip.
    pub truck_id: String,
    /// The status before the change.
    pub old_status: String,
    /// The status after the change.
    pub new_status: String,
    /// Why the status changed, if the publisher knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Payload for TripStatusChanged {
    const EVENT_TYPE: &'static str = TRIP_STATUS_CHANGED;
}

/// Payload of `position.updated`: one GPS fix of a truck.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionUpdated {
    /// The truck's id.
    pub truck_id: String,
    /// The truck's human-facing number (licence plate or fleet number).
    pub truck_number: String,
    /// Latitude in degrees (WGS 84).
    pub lat: f64,
    /// Longitude in degrees (WGS 84).
    pub lng: f64,
    /// Ground speed in km/h.
    pub speed: f64,
    /// Heading in degrees clockwise from north, if the device reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<f64>,
}

impl Payload for PositionUpdated {
    const EVENT_TYPE: &'static str = POSITION_UPDATED;
}

/// Payload of `truck.status_changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruckStatusChanged {
    /// The truck's id.
    pub truck_id: String,
    /// The truck's human-facing number.
    pub truck_number: String,
    /// The status before the change.
    pub old_status: String,
    /// The status after the change.
    pub new_status: String,
    /// Why the status changed, if the publisher knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Payload for TruckStatusChanged {
    const EVENT_TYPE: &'static str = TRUCK_STATUS_CHANGED;
}

/// How urgent an alert is. Serialized in lowercase: `info`, `warning`, `critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record; nobody needs to act.
    Info,
    /// Someone should look soon.
    Warning,
    /// Someone must act now.
    Critical,
}

impl Severity {
    /// The wire spelling: `info`, `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Payload of `alert.triggered`: a rule fired (for example a speed limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertTriggered {
    /// The alert's unique id.
    pub alert_id: String,
    /// What kind of alert, e.g. `speeding`.
    pub alert_type: String,
    /// How urgent it is.
    pub severity: Severity,
    /// The truck concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truck_id: Option<String>,
    /// The trip concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trip_id: Option<String>,
    /// A human-readable description.
    pub message: String,
}

impl Payload for AlertTriggered {
    const EVENT_TYPE: &'static str = ALERT_TRIGGERED;
}

/// Payload of `sync.completed`: a batch import from an outside system finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncCompleted {
    /// The sync run's unique id.
    pub sync_id: String,
    /// The system synced from.
    pub source: String,
    /// How many records were synced.
    pub records_synced: u64,
    /// How long the sync took, in milliseconds.
    pub duration_ms: u64,
    /// How it ended, e.g. `success` or `partial`.
    pub status: String,
}

impl Payload for SyncCompleted {
    const EVENT_TYPE: &'static str = SYNC_COMPLETED;
}

/// Payload of `error.occurred`: something failed that operators should know about. The host
/// publishes one for every dead letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorOccurred {
    /// What kind of error, e.g. `dead_letter`.
    pub error_type: String,
    /// A human-readable description.
    pub message: String,
    /// Where it happened (a service, or a handler name).
    pub source: String,
    /// Structured context, as a JSON object.
    pub details: Map<String, Value>,
}

impl Payload for ErrorOccurred {
    const EVENT_TYPE: &'static str = ERROR_OCCURRED;
}

/// A payload that does not fit its event type (from [`validate_payload`]).
///
/// Displays as ``` `position.updated` payload: missing field `speed` ```.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{event_type}` payload: {message}")]
pub struct PayloadError {
    event_type: String,
    message: String,
}

impl PayloadError {
    /// The event type the payload was checked against.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// What is wrong with the payload, e.g. ``missing field `speed` ``.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Checks `data` (JSON text) against the schema of `event_type`.
///
/// For the eight built-in types `data` must parse into the type's payload struct; for any
/// other type it only has to be a JSON object. `event_type` itself is not validated here
/// (see [`crate::naming::validate_event_type`]).
///
/// ```
/// use watchtower_events::kinds::validate_payload;
/// let err = validate_payload("position.updated", r#"{"truck_id":"t1"}"#).unwrap_err();
/// assert_eq!(err.to_string(), "`position.updated` payload: missing field `truck_number`");
/// assert!(validate_payload("billing.invoice_paid", r#"{"anything": 1}"#).is_ok());
/// ```
pub fn validate_payload(event_type: &str, data: &str) -> Result<(), PayloadError> {
    // Most payloads are valid: one plain parse settles those. Text that starts with `{` and
    // parses as the type's struct is one JSON object of that type. Only a payload that
    // fails goes the slow way below, which says exactly what is wrong.
    let starts_object = data
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{');
    if starts_object && EventType::parse(event_type).is_some_and(|kind| kind.accepts(data)) {
        return Ok(());
    }
    let error = |message: String| PayloadError {
        event_type: event_type.to_owned(),
        message,
    };
    // Serde also builds structs from JSON arrays; the wire format only allows objects.
    check_json_object(data).map_err(|reason| error(format!("not a JSON object: {reason}")))?;
    let parsed = match EventType::parse(event_type) {
        None => return Ok(()),
        Some(EventType::WebhookReceived) => parses::<WebhookReceived>(data),
        Some(EventType::TripCreated) => parses::<TripCreated>(data),
        Some(EventType::TripStatusChanged) => parses::<TripStatusChanged>(data),
        Some(EventType::PositionUpdated) => parses::<PositionUpdated>(data),
        Some(EventType::TruckStatusChanged) => parses::<TruckStatusChanged>(data),
        Some(EventType::AlertTriggered) => parses::<AlertTriggered>(data),
        Some(EventType::SyncCompleted) => parses::<SyncCompleted>(data),
        Some(EventType::ErrorOccurred) => parses::<ErrorOccurred>(data),
    };
    parsed.map_err(error)
}

impl EventType {
    /// Whether `data` parses as this type's payload struct.
    fn accepts(self, data: &str) -> bool {
        fn parses_as<P: Payload>(data: &str) -> bool {
            serde_json::from_str::<P>(data).is_ok()
        }
        match self {
            Self::WebhookReceived => parses_as::<WebhookReceived>(data),
            Self::TripCreated => parses_as::<TripCreated>(data),
            Self::TripStatusChanged => parses_as::<TripStatusChanged>(data),
            Self::PositionUpdated => parses_as::<PositionUpdated>(data),
            Self::TruckStatusChanged => parses_as::<TruckStatusChanged>(data),
            Self::AlertTriggered => parses_as::<AlertTriggered>(data),
            Self::SyncCompleted => parses_as::<SyncCompleted>(data),
            Self::ErrorOccurred => parses_as::<ErrorOccurred>(data),
        }
    }
}

/// Parses `data` as `P`; the error names the field at fault (`speed: invalid type: …`).
fn parses<P: Payload>(data: &str) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_str(data);
    match serde_path_to_error::deserialize::<_, P>(&mut de) {
        Ok(_) => Ok(()),
        Err(err) => {
            let path = err.path().to_string();
            let message = without_position(err.inner());
            if path == "." || message.contains(&format!("`{path}`")) {
                Err(message)
            } else {
                Err(format!("field `{path}`: {message}"))
            }
        }
    }
}

/// The serde_json message without its ` at line L column C` suffix: payloads are one-line
/// JSON, so the position adds noise, and the field name already says where.
fn without_position(err: &serde_json::Error) -> String {
    let message = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    match message.strip_suffix(&suffix) {
        Some(stripped) => stripped.to_owned(),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn round_trip<P: Payload + PartialEq + fmt::Debug>(payload: P) {
        let text = serde_json::to_string(&payload).unwrap();
        assert_eq!(validate_payload(P::EVENT_TYPE, &text), Ok(()), "{text}");
        assert_eq!(serde_json::from_str::<P>(&text).unwrap(), payload);
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_field() {
        let err = validate_payload(
            POSITION_UPDATED,
            r#"{"truck_id":"t","truck_number":"T","lat":1,"lng":2,"speed":"very fast"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("field `speed`"), "{err}");
    }

    #[test]
    fn every_event_type_round_trips_through_its_string() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
            assert_eq!(kind.to_string().parse::<EventType>(), Ok(kind));
            assert_eq!(crate::naming::validate_event_type(kind.as_str()), Ok(()));
        }
    }

    #[test]
    fn unknown_type_strings_are_not_built_in() {
        assert_eq!(EventType::parse("billing.invoice_paid"), None);
        let err = "Position.updated".parse::<EventType>().unwrap_err();
        assert_eq!(err.value(), "Position.updated");
    }

    #[test]
    fn payload_structs_name_their_event_type() {
        assert_eq!(
            WebhookReceived::EVENT_TYPE,
            EventType::WebhookReceived.as_str()
        );
        assert_eq!(TripCreated::EVENT_TYPE, EventType::TripCreated.as_str());
        assert_eq!(
            TripStatusChanged::EVENT_TYPE,
            EventType::TripStatusChanged.as_str()
        );
        assert_eq!(
            PositionUpdated::EVENT_TYPE,
            EventType::PositionUpdated.as_str()
        );
        assert_eq!(
            TruckStatusChanged::EVENT_TYPE,
            EventType::TruckStatusChanged.as_str()
        );
        assert_eq!(
            AlertTriggered::EVENT_TYPE,
            EventType::AlertTriggered.as_str()
        );
        assert_eq!(SyncCompleted::EVENT_TYPE, EventType::SyncCompleted.as_str());
        assert_eq!(ErrorOccurred::EVENT_TYPE, EventType::ErrorOccurred.as_str());
    }

    #[test]
    fn every_payload_round_trips_through_json() {
        let Value::Object(headers) = json!({"content-type": "application/json"}) else {
            unreachable!()
        };
        round_trip(WebhookReceived {
            source: "tms".into(),
            headers,
            body: json!({"order": 7, "lines": [1, 2]}),
            received_at: "2026-12-04T15:09:01.123Z".into(),
        });
        round_trip(TripCreated {
            trip_id: "trip-1".into(),
            truck_id: "t1".into(),
            origin: "Rotterdam".into(),
            destination: "Lyon".into(),
            planned_departure: "2026-12-05T06:00:00Z".into(),
        });
        round_trip(TripStatusChanged {
            trip_id: "trip-1".into(),
            truck_id: "t1".into(),
            old_status: "planned".into(),
            new_status: "en_route".into(),
            reason: Some("departed".into()),
        });
        round_trip(PositionUpdated {
            truck_id: "t1".into(),
            truck_number: "NL-01".into(),
            lat: 51.92,
            lng: 4.48,
            speed: 87.5,
            heading: None,
        });
        round_trip(TruckStatusChanged {
            truck_id: "t1".into(),
            truck_number: "NL-01".into(),
            old_status: "idle".into(),
            new_status: "maintenance".into(),
            reason: None,
        });
        round_trip(AlertTriggered {
            alert_id: "a1".into(),
            alert_type: "speeding".into(),
            severity: Severity::Critical,
            truck_id: Some("t1".into()),
            trip_id: None,
            message: "112 km/h in a 90 zone".into(),
        });
        round_trip(SyncCompleted {
            sync_id: "s1".into(),
            source: "erp".into(),
            records_synced: 1_204,
            duration_ms: 3_050,
            status: "success".into(),
        });
        let Value::Object(details) = json!({"handler": "speed-alert", "attempts": 5}) else {
            unreachable!()
        };
        round_trip(ErrorOccurred {
            error_type: "dead_letter".into(),
            message: "handler rejected the event".into(),
            source: "speed-alert".into(),
            details,
        });
    }

    #[test]
    fn absent_options_are_left_out_and_default_to_none() {
        let position = PositionUpdated {
            truck_id: "t1".into(),
            truck_number: "NL-01".into(),
            lat: 0.0,
            lng: 0.0,
            speed: 0.0,
            heading: None,
        };
        let value = serde_json::to_value(&position).unwrap();
        assert!(value.get("heading").is_none(), "{value}");
    }

    #[test]
    fn severity_is_lowercase_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&Severity::Warning).unwrap(),
            "\"warning\""
        );
        assert_eq!(
            serde_json::from_str::<Severity>("\"info\"").unwrap(),
            Severity::Info
        );
        assert!(serde_json::from_str::<Severity>("\"Info\"").is_err());
        assert_eq!(Severity::Critical.to_string(), "critical");
    }

    #[test]
    fn good_position_passes_validation_with_extra_fields() {
        let data = r#"{"truck_id":"t1","truck_number":"NL-01","lat":52,"lng":5.1,"speed":88.5,
                       "heading":270,"odometer_km":120345}"#;
        assert_eq!(validate_payload(POSITION_UPDATED, data), Ok(()));
    }

    #[test]
    fn position_without_speed_is_rejected() {
        let data = r#"{"truck_id":"t1","truck_number":"NL-01","lat":52.1,"lng":5.1}"#;
        let err = validate_payload(POSITION_UPDATED, data).unwrap_err();
        assert_eq!(err.event_type(), POSITION_UPDATED);
        assert_eq!(err.message(), "missing field `speed`");
        assert_eq!(
            err.to_string(),
            "`position.updated` payload: missing field `speed`"
        );
    }

    #[test]
    fn position_with_string_speed_is_rejected() {
        let data =
            r#"{"truck_id":"t1","truck_number":"NL-01","lat":52.1,"lng":5.1,"speed":"fast"}"#;
        let err = validate_payload(POSITION_UPDATED, data).unwrap_err();
        assert!(err.message().contains("invalid type"), "{err}");
        assert!(err.message().contains("\"fast\""), "{err}");
    }

    #[test]
    fn payload_as_json_array_is_rejected_even_if_serde_would_accept_it() {
        let data = r#"["t1","NL-01",52.1,5.1,88.0]"#;
        assert!(serde_json::from_str::<PositionUpdated>(data).is_ok());
        let err = validate_payload(POSITION_UPDATED, data).unwrap_err();
        assert!(err.message().contains("not a JSON object"), "{err}");
    }

    #[test]
    fn custom_types_only_need_an_object() {
        assert_eq!(
            validate_payload("billing.invoice_paid", r#"{"x": [1]}"#),
            Ok(())
        );
        assert!(validate_payload("billing.invoice_paid", "[1]").is_err());
        assert!(validate_payload("billing.invoice_paid", "{oops").is_err());
    }

    #[test]
    fn wrong_severity_and_missing_webhook_body_are_rejected() {
        let alert = r#"{"alert_id":"a","alert_type":"x","severity":"urgent","message":"m"}"#;
        assert!(validate_payload(ALERT_TRIGGERED, alert).is_err());
        let webhook = r#"{"source":"s","headers":{},"received_at":"2026-12-04T15:09:01Z"}"#;
        let err = validate_payload(WEBHOOK_RECEIVED, webhook).unwrap_err();
        assert_eq!(err.message(), "missing field `body`");
    }
}
