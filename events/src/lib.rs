//! Watchtower's events: what an event is, how it looks on a Redis stream and where it lives.
//!
//! This crate is shared by the host (`watchtower`) and the guest SDK (`watchtower-guest`), so
//! both sides agree on one definition. It does no I/O and has no async runtime; it builds for
//! `wasm32-wasip2` as well as for the host.
//!
//! An event is an [`Envelope`]: id, type, timestamp, version, correlation id, metadata and a
//! JSON object payload. On Redis it is one stream entry of flat string fields
//! ([`wire::encode`] / [`wire::decode`]) on the stream of its type
//! ([`naming::stream_key`]). The eight built-in types have typed payloads in [`kinds`]; any
//! other valid type string works too, with a free-form object payload.
//!
//! ```
//! use watchtower_events::{Envelope, PositionUpdated, naming, wire};
//!
//! let data = r#"{"truck_id":"t1","truck_number":"NL-01","lat":52.1,"lng":5.1,"speed":97.0}"#;
//! let envelope = Envelope::new("0190c7d0-0000-7000-8000-000000000001", "position.updated", data);
//! let stream = naming::stream_key(naming::DEFAULT_NAMESPACE, &envelope.event_type);
//! assert_eq!(stream, "watch_tower:events:position.updated");
//!
//! // What a consumer reads back from that stream:
//! let fields = wire::encode(&envelope);
//! let stream_type = naming::event_type_of_stream(naming::DEFAULT_NAMESPACE, &stream);
//! let decoded = wire::decode(&fields, stream_type)?;
//! let position: PositionUpdated = decoded.data_as()?;
//! assert!(position.speed > 90.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//!
//! - [`envelope`]: [`Envelope`], the decoded event, and [`now_rfc3339`] for its timestamp.
//! - [`wire`]: [`Envelope`] to and from the flat fields of a stream entry; [`WireError`]
//!   names the field at fault and gives the dead-letter reason.
//! - [`kinds`]: the eight built-in types ([`EventType`], [`POSITION_UPDATED`], …), their
//!   payload structs ([`PositionUpdated`], …) and [`validate_payload`].
//! - [`naming`]: Redis key names (`{ns}:events:{type}`, `{ns}:dlq:{handler}`,
//!   `{ns}:kv:{handler}`) and the rule for event type strings.

#![deny(missing_docs)]

pub mod envelope;
pub mod kinds;
pub mod naming;
pub mod wire;

pub use envelope::DEFAULT_VERSION;
pub use envelope::Envelope;
pub use envelope::now_rfc3339;

pub use wire::FIELD_CORRELATION_ID;
pub use wire::FIELD_DATA;
pub use wire::FIELD_EVENT_ID;
pub use wire::FIELD_EVENT_TYPE;
pub use wire::FIELD_METADATA;
pub use wire::FIELD_TIMESTAMP;
pub use wire::FIELD_VERSION;
pub use wire::WireError;
pub use wire::decode;
pub use wire::encode;

pub use kinds::ALERT_TRIGGERED;
pub use kinds::AlertTriggered;
pub use kinds::ERROR_OCCURRED;
pub use kinds::ErrorOccurred;
pub use kinds::EventType;
pub use kinds::POSITION_UPDATED;
pub use kinds::Payload;
pub use kinds::PayloadError;
pub use kinds::PositionUpdated;
pub use kinds::SYNC_COMPLETED;
pub use kinds::Severity;
pub use kinds::SyncCompleted;
pub use kinds::TRIP_CREATED;
pub use kinds::TRIP_STATUS_CHANGED;
pub use kinds::TRUCK_STATUS_CHANGED;
pub use kinds::TripCreated;
pub use kinds::TripStatusChanged;
pub use kinds::TruckStatusChanged;
pub use kinds::UnknownEventType;
pub use kinds::WEBHOOK_RECEIVED;
pub use kinds::WebhookReceived;
pub use kinds::validate_payload;

pub use naming::DEFAULT_NAMESPACE;
pub use naming::NamingError;
pub use naming::dlq_key;
pub use naming::event_type_of_stream;
pub use naming::kv_key;
pub use naming::stream_key;
pub use naming::validate_event_type;
