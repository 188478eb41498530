//! The wire format: an [`Envelope`] as the flat string fields of one Redis stream entry.
//!
//! | field | required | value |
//! |---|---|---|
//! | [`event_id`](FIELD_EVENT_ID) | yes | unique id |
//! | [`event_type`](FIELD_EVENT_TYPE) | yes | the type string; must match the stream |
//! | [`timestamp`](FIELD_TIMESTAMP) | yes | RFC 3339 |
//! | [`version`](FIELD_VERSION) | no (default `1`) | payload schema version |
//! | [`correlation_id`](FIELD_CORRELATION_ID) | no | traces related events |
//! | [`metadata`](FIELD_METADATA) | no (default `{}`) | JSON object with string values |
//! | [`data`](FIELD_DATA) | yes | JSON object: the payload |
//!
//! Anyone can publish with a plain `XADD`, so [`decode`] trusts nothing: every way an entry
//! can break the format is a [`WireError`] naming the field at fault, which the host turns
//! into a dead letter ([`WireError::reason_code`]). Fields it does not know are ignored, so
//! publishers may add fields before consumers understand them.
//!
//! [`decode`] runs once per entry on the host's hot path. It makes one pass over the fields,
//! checks `data` without building a JSON tree and allocates only the strings of the returned
//! envelope.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use thiserror::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::envelope::{DEFAULT_VERSION, Envelope};
use crate::naming::validate_event_type;

/// Field name of [`Envelope::event_id`].
pub const FIELD_EVENT_ID: &str = "event_id";
/// Field name of [`Envelope::event_type`].
pub const FIELD_EVENT_TYPE: &str = "event_type";
/// Field name of [`Envelope::timestamp`].
pub const FIELD_TIMESTAMP: &str = "timestamp";
/// Field name of [`Envelope::version`].
pub const FIELD_VERSION: &str = "version";
/// Field name of [`Envelope::correlation_id`].
pub const FIELD_CORRELATION_ID: &str = "correlation_id";
/// Field name of [`Envelope::metadata`].
pub const FIELD_METADATA: &str = "metadata";
/// Field name of [`Envelope::data`].
pub const FIELD_DATA: &str = "data";

/// Every field the format defines, in the order [`encode`] writes them.
///
/// The position of a name here is its slot in [`decode`]'s one-pass table.
const KNOWN_FIELDS: [&str; 7] = [
    FIELD_EVENT_ID,
    FIELD_EVENT_TYPE,
    FIELD_TIMESTAMP,
    FIELD_VERSION,
    FIELD_CORRELATION_ID,
    FIELD_METADATA,
    FIELD_DATA,
];

/// How a stream entry breaks the wire format. Every variant names the field at fault
/// ([`WireError::field`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// A required field is absent.
    #[error("missing required field `{field}`")]
    Missing {
        /// The absent field.
        field: &'static str,
    },
    /// A required field is present but empty.
    #[error("field `{field}` is empty")]
    Empty {
        /// The empty field.
        field: &'static str,
    },
    /// A field's value is not UTF-8.
    #[error("field `{field}` is not valid UTF-8")]
    NotUtf8 {
        /// The field holding the bytes.
        field: String,
    },
    /// `timestamp` is not an RFC 3339 date-time.
    #[error("field `timestamp`: `{value}` is not an RFC 3339 timestamp: {reason}")]
    BadTimestamp {
        /// The rejected text.
        value: String,
        /// What the parser objected to.
        reason: String,
    },
    /// `data` or `metadata` is not valid JSON, or is JSON but not an object.
    #[error("field `{field}` is not a JSON object: {reason}")]
    NotJsonObject {
        /// `data` or `metadata`.
        field: &'static str,
        /// What is wrong with the text.
        reason: String,
    },
    /// `metadata` is a JSON object but some value is not a string.
    #[error("field `metadata` must map strings to strings: {reason}")]
    BadMetadata {
        /// Which value is wrong.
        reason: String,
    },
    /// `event_type` is not a valid event type string.
    #[error("field `event_type`: {reason}")]
    InvalidType {
        /// The rejected text.
        value: String,
        /// Why it is not a valid type.
        reason: String,
    },
    /// `event_type` names another type than the stream the entry is on.
    #[error("field `event_type` is `{found}` but the entry is on the stream of `{expected}`")]
    TypeMismatch {
        /// The type of the stream.
        expected: String,
        /// The type the entry claims.
        found: String,
    },
    /// A field the format defines appears more than once.
    #[error("field `{field}` is given more than once")]
    Duplicate {
        /// The repeated field.
        field: String,
    },
}

impl WireError {
    /// The name of the field at fault, e.g. `data`.
    pub fn field(&self) -> &str {
        match self {
            Self::Missing { field } | Self::Empty { field } | Self::NotJsonObject { field, .. } => {
                field
            }
            Self::NotUtf8 { field } | Self::Duplicate { field } => field,
            Self::BadTimestamp { .. } => FIELD_TIMESTAMP,
            Self::BadMetadata { .. } => FIELD_METADATA,
            Self::InvalidType { .. } | Self::TypeMismatch { .. } => FIELD_EVENT_TYPE,
        }
    }

    /// A short, stable, machine-readable reason for dead letters (`dlq_reason`).
    ///
    /// | variant | code |
    /// |---|---|
    /// | `Missing` | `malformed:missing:{field}` |
    /// | `Empty` | `malformed:empty:{field}` |
    /// | `NotUtf8` | `malformed:not_utf8:{field}` |
    /// | `BadTimestamp` | `malformed:timestamp` |
    /// | `NotJsonObject` | `malformed:not_json_object:{field}` |
    /// | `BadMetadata` | `malformed:metadata` |
    /// | `InvalidType` | `malformed:invalid_type` |
    /// | `TypeMismatch` | `malformed:type_mismatch` |
    /// | `Duplicate` | `malformed:duplicate:{field}` |
    pub fn reason_code(&self) -> String {
        let kind = match self {
            Self::Missing { .. } => "missing",
            Self::Empty { .. } => "empty",
            Self::NotUtf8 { .. } => "not_utf8",
            Self::NotJsonObject { .. } => "not_json_object",
            Self::Duplicate { .. } => "duplicate",
            Self::BadTimestamp { .. } => return "malformed:timestamp".to_owned(),
            Self::BadMetadata { .. } => return "malformed:metadata".to_owned(),
            Self::InvalidType { .. } => return "malformed:invalid_type".to_owned(),
            Self::TypeMismatch { .. } => return "malformed:type_mismatch".to_owned(),
        };
        format!("malformed:{kind}:{}", self.field())
    }
}

/// The fields of one stream entry for `envelope`, ready for `XADD`.
///
/// `version` is always written; `correlation_id` only when set; `metadata` (as JSON object
/// text) only when non-empty. `data` is written as is, so whatever [`decode`] accepted is
/// written back unchanged.
pub fn encode(envelope: &Envelope) -> Vec<(&'static str, String)> {
    let mut fields = Vec::with_capacity(KNOWN_FIELDS.len());
    fields.push((FIELD_EVENT_ID, envelope.event_id.clone()));
    fields.push((FIELD_EVENT_TYPE, envelope.event_type.clone()));
    fields.push((FIELD_TIMESTAMP, envelope.timestamp.clone()));
    fields.push((FIELD_VERSION, envelope.version.clone()));
    if let Some(correlation_id) = &envelope.correlation_id {
        fields.push((FIELD_CORRELATION_ID, correlation_id.clone()));
    }
    if !envelope.metadata.is_empty() {
        // A map of strings always serializes; the fallback keeps `encode` infallible.
        let metadata =
            serde_json::to_string(&envelope.metadata).unwrap_or_else(|_| "{}".to_owned());
        fields.push((FIELD_METADATA, metadata));
    }
    fields.push((FIELD_DATA, envelope.data.clone()));
    fields
}

/// Decodes the fields of one stream entry into an [`Envelope`].
///
/// `expected_type` is the type of the stream the entry came from (see
/// [`crate::naming::event_type_of_stream`]); `None` skips that check, e.g. for dead letters.
///
/// Unknown fields are ignored. Optional fields given as the empty string count as absent, for
/// clients that cannot leave a field out. When an entry has several problems, the error is
/// the first of: a repeated or non-UTF-8 known field (in entry order), a missing or empty
/// required field (in table order), then a bad `event_type`, `timestamp`, `data`, `metadata`.
///
/// ```
/// use watchtower_events::wire::{decode, WireError};
/// let entry = [
///     ("event_id", "e1"),
///     ("event_type", "trip.created"),
///     ("timestamp", "2026-12-04T15:09:01.123Z"),
///     ("data", "[1, 2]"),
/// ];
/// let err = decode(&entry, Some("trip.created")).unwrap_err();
/// assert!(matches!(err, WireError::NotJsonObject { field: "data", .. }));
/// assert_eq!(err.reason_code(), "malformed:not_json_object:data");
/// ```
pub fn decode<K: AsRef<str>, V: AsRef<[u8]>>(
    fields: &[(K, V)],
    expected_type: Option<&str>,
) -> Result<Envelope, WireError> {
    let mut slots: [Option<&str>; KNOWN_FIELDS.len()] = [None; KNOWN_FIELDS.len()];
    for (name, value) in fields {
        let name = name.as_ref();
        let Some(index) = KNOWN_FIELDS.iter().position(|known| *known == name) else {
            continue;
        };
        if slots[index].is_some() {
            return Err(WireError::Duplicate {
                field: name.to_owned(),
            });
        }
        let text = std::str::from_utf8(value.as_ref()).map_err(|_| WireError::NotUtf8 {
            field: name.to_owned(),
        })?;
        slots[index] = Some(text);
    }
    let [
        event_id,
        event_type,
        timestamp,
        version,
        correlation_id,
        metadata,
        data,
    ] = slots;
    let event_id = required(FIELD_EVENT_ID, event_id)?;
    let event_type = required(FIELD_EVENT_TYPE, event_type)?;
    let timestamp = required(FIELD_TIMESTAMP, timestamp)?;
    let data = required(FIELD_DATA, data)?;
    let version = optional(version);
    let correlation_id = optional(correlation_id);
    let metadata = optional(metadata);

    if let Err(err) = validate_event_type(event_type) {
        return Err(WireError::InvalidType {
            value: event_type.to_owned(),
            reason: err.to_string(),
        });
    }
    if let Some(expected) = expected_type
        && expected != event_type
    {
        return Err(WireError::TypeMismatch {
            expected: expected.to_owned(),
            found: event_type.to_owned(),
        });
    }
    if let Err(err) = OffsetDateTime::parse(timestamp, &Rfc3339) {
        return Err(WireError::BadTimestamp {
            value: timestamp.to_owned(),
            reason: err.to_string(),
        });
    }
    check_json_object(data).map_err(|reason| WireError::NotJsonObject {
        field: FIELD_DATA,
        reason,
    })?;
    let metadata = match metadata {
        Some(text) => parse_metadata(text)?,
        None => BTreeMap::new(),
    };

    Ok(Envelope {
        event_id: event_id.to_owned(),
        event_type: event_type.to_owned(),
        timestamp: timestamp.to_owned(),
        version: version.unwrap_or(DEFAULT_VERSION).to_owned(),
        correlation_id: correlation_id.map(str::to_owned),
        metadata,
        data: data.to_owned(),
    })
}

/// Checks that `text` is one JSON object, without building it.
///
/// The first-byte test turns away arrays, strings and numbers before any parsing, and
/// `IgnoredAny` walks the object without allocating a tree. The error is a human reason.
pub(crate) fn check_json_object(text: &str) -> Result<(), String> {
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r']);
    match trimmed.as_bytes().first() {
        Some(b'{') => serde_json::from_str::<IgnoredAny>(text)
            .map(drop)
            .map_err(|err| format!("invalid JSON: {err}")),
        Some(b'[') => Err("found a JSON array".to_owned()),
        Some(b'"') => Err("found a JSON string".to_owned()),
        Some(b'-' | b'0'..=b'9') => Err("found a JSON number".to_owned()),
        Some(b't' | b'f') if is_json(trimmed) => Err("found a JSON boolean".to_owned()),
        Some(b'n') if is_json(trimmed) => Err("found JSON null".to_owned()),
        Some(_) => Err("invalid JSON: expected `{` at the start".to_owned()),
        None => Err("no JSON value".to_owned()),
    }
}

fn is_json(text: &str) -> bool {
    serde_json::from_str::<IgnoredAny>(text).is_ok()
}

fn parse_metadata(text: &str) -> Result<BTreeMap<String, String>, WireError> {
    check_json_object(text).map_err(|reason| WireError::NotJsonObject {
        field: FIELD_METADATA,
        reason,
    })?;
    // The text is a well-formed object, so the only way left to fail is a non-string value.
    serde_json::from_str(text).map_err(|err| WireError::BadMetadata {
        reason: err.to_string(),
    })
}

fn required<'a>(field: &'static str, value: Option<&'a str>) -> Result<&'a str, WireError> {
    match value {
        None => Err(WireError::Missing { field }),
        Some("") => Err(WireError::Empty { field }),
        Some(value) => Ok(value),
    }
}

fn optional(value: Option<&str>) -> Option<&str> {
    value.filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "2026-12-04T15:09:01.123Z";
    const DATA: &str =
        r#"{"truck_id":"t1","truck_number":"NL-01","lat":52.1,"lng":5.1,"speed":88.5}"#;

    fn good_entry() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            (FIELD_EVENT_ID, b"e1".to_vec()),
            (FIELD_EVENT_TYPE, b"position.updated".to_vec()),
            (FIELD_TIMESTAMP, TS.as_bytes().to_vec()),
            (FIELD_DATA, DATA.as_bytes().to_vec()),
        ]
    }

    fn with(field: &'static str, value: &str) -> Vec<(&'static str, Vec<u8>)> {
        let mut entry = good_entry();
        entry.retain(|(name, _)| *name != field);
        entry.push((field, value.as_bytes().to_vec()));
        entry
    }

    fn decode_err(entry: &[(&'static str, Vec<u8>)]) -> WireError {
        decode(entry, Some("position.updated")).unwrap_err()
    }

    #[test]
    fn round_trip_without_optional_fields() {
        let mut envelope = Envelope::new("e1", "position.updated", DATA);
        envelope.timestamp = TS.to_owned();
        let fields = encode(&envelope);
        let names: Vec<_> = fields.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                FIELD_EVENT_ID,
                FIELD_EVENT_TYPE,
                FIELD_TIMESTAMP,
                FIELD_VERSION,
                FIELD_DATA
            ]
        );
        assert_eq!(decode(&fields, Some("position.updated")), Ok(envelope));
    }

    #[test]
    fn round_trip_with_optional_fields() {
        let envelope = Envelope::new("e1", "trip.created", r#" {"a": [1, {"b": null}]} "#)
            .with_correlation_id("corr-9")
            .with_metadata("source", "gps \"gateway\"")
            .with_metadata("tenant", "acme");
        let mut envelope = envelope;
        envelope.version = "2".to_owned();
        let fields = encode(&envelope);
        assert_eq!(fields.len(), KNOWN_FIELDS.len());
        assert_eq!(decode(&fields, Some("trip.created")), Ok(envelope.clone()));
        assert_eq!(decode(&fields, None), Ok(envelope));
    }

    #[test]
    fn defaults_fill_absent_optional_fields() {
        let envelope = decode(&good_entry(), Some("position.updated")).unwrap();
        assert_eq!(envelope.version, DEFAULT_VERSION);
        assert_eq!(envelope.correlation_id, None);
        assert!(envelope.metadata.is_empty());
        assert_eq!(envelope.data, DATA);
        assert_eq!(envelope.timestamp, TS);
    }

    #[test]
    fn empty_optional_fields_count_as_absent() {
        let mut entry = good_entry();
        for field in [FIELD_VERSION, FIELD_CORRELATION_ID, FIELD_METADATA] {
            entry.push((field, Vec::new()));
        }
        let envelope = decode(&entry, Some("position.updated")).unwrap();
        assert_eq!(envelope.version, DEFAULT_VERSION);
        assert_eq!(envelope.correlation_id, None);
        assert!(envelope.metadata.is_empty());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut entry = good_entry();
        entry.push(("schema_hint", b"v9".to_vec()));
        entry.push(("dlq_reason", vec![0xff]));
        assert!(decode(&entry, Some("position.updated")).is_ok());
    }

    #[test]
    fn accepts_str_and_string_fields() {
        let entry = [
            ("event_id".to_owned(), "e1".to_owned()),
            ("event_type".to_owned(), "a.b".to_owned()),
            (
                "timestamp".to_owned(),
                "2026-12-04T16:09:01+01:00".to_owned(),
            ),
            ("data".to_owned(), "{}".to_owned()),
        ];
        let envelope = decode(&entry, Some("a.b")).unwrap();
        assert_eq!(envelope.timestamp, "2026-12-04T16:09:01+01:00");
    }

    #[test]
    fn each_missing_required_field_is_named() {
        for field in [
            FIELD_EVENT_ID,
            FIELD_EVENT_TYPE,
            FIELD_TIMESTAMP,
            FIELD_DATA,
        ] {
            let mut entry = good_entry();
            entry.retain(|(name, _)| *name != field);
            let err = decode_err(&entry);
            assert_eq!(err, WireError::Missing { field });
            assert_eq!(err.field(), field);
            assert_eq!(err.reason_code(), format!("malformed:missing:{field}"));
        }
    }

    #[test]
    fn empty_required_fields_are_rejected() {
        for field in [
            FIELD_EVENT_ID,
            FIELD_EVENT_TYPE,
            FIELD_TIMESTAMP,
            FIELD_DATA,
        ] {
            let err = decode_err(&with(field, ""));
            assert_eq!(err, WireError::Empty { field });
            assert_eq!(err.field(), field);
        }
        assert_eq!(
            decode_err(&with(FIELD_EVENT_ID, "")).reason_code(),
            "malformed:empty:event_id"
        );
    }

    #[test]
    fn bad_timestamp_is_rejected() {
        for bad in [
            "yesterday",
            "1733325000",
            "2026-12-04",
            "2026-12-04T15:09:01",
            "2026-13-04T15:09:01Z",
        ] {
            let err = decode_err(&with(FIELD_TIMESTAMP, bad));
            assert!(
                matches!(&err, WireError::BadTimestamp { value, .. } if value == bad),
                "{bad}: {err:?}"
            );
            assert_eq!(err.field(), FIELD_TIMESTAMP);
            assert_eq!(err.reason_code(), "malformed:timestamp");
        }
    }

    #[test]
    fn data_that_is_not_json_is_rejected() {
        for bad in ["{not json", "{} trailing", "nope", "{\"a\":1,}"] {
            let err = decode_err(&with(FIELD_DATA, bad));
            assert!(
                matches!(
                    err,
                    WireError::NotJsonObject {
                        field: FIELD_DATA,
                        ..
                    }
                ),
                "{bad}: {err:?}"
            );
            assert_eq!(err.field(), FIELD_DATA);
        }
    }

    #[test]
    fn data_that_is_json_but_not_an_object_is_rejected() {
        for bad in ["[1, 2]", "\"text\"", "42", "-1", "true", "null", "   "] {
            let err = decode_err(&with(FIELD_DATA, bad));
            assert!(
                matches!(
                    err,
                    WireError::NotJsonObject {
                        field: FIELD_DATA,
                        ..
                    }
                ),
                "{bad}: {err:?}"
            );
            assert_eq!(err.reason_code(), "malformed:not_json_object:data");
        }
        let err = decode_err(&with(FIELD_DATA, "[1, 2]"));
        assert!(err.to_string().contains("array"), "{err}");
    }

    #[test]
    fn metadata_that_is_not_an_object_is_rejected() {
        for bad in ["[\"a\"]", "\"a=b\"", "{broken"] {
            let err = decode_err(&with(FIELD_METADATA, bad));
            assert!(
                matches!(
                    err,
                    WireError::NotJsonObject {
                        field: FIELD_METADATA,
                        ..
                    }
                ),
                "{bad}: {err:?}"
            );
            assert_eq!(err.field(), FIELD_METADATA);
        }
    }

    #[test]
    fn metadata_with_a_non_string_value_is_rejected() {
        let err = decode_err(&with(FIELD_METADATA, r#"{"a": "b", "retries": 3}"#));
        assert!(matches!(err, WireError::BadMetadata { .. }), "{err:?}");
        assert_eq!(err.field(), FIELD_METADATA);
        assert_eq!(err.reason_code(), "malformed:metadata");
    }

    #[test]
    fn invalid_type_string_is_rejected() {
        let err = decode(&with(FIELD_EVENT_TYPE, "Position.Updated"), None).unwrap_err();
        assert!(
            matches!(&err, WireError::InvalidType { value, .. } if value == "Position.Updated"),
            "{err:?}"
        );
        assert_eq!(err.field(), FIELD_EVENT_TYPE);
        assert_eq!(err.reason_code(), "malformed:invalid_type");
    }

    #[test]
    fn type_of_another_stream_is_rejected() {
        let err = decode(&good_entry(), Some("trip.created")).unwrap_err();
        assert_eq!(
            err,
            WireError::TypeMismatch {
                expected: "trip.created".to_owned(),
                found: "position.updated".to_owned(),
            }
        );
        assert_eq!(err.field(), FIELD_EVENT_TYPE);
        assert_eq!(err.reason_code(), "malformed:type_mismatch");
    }

    #[test]
    fn non_utf8_field_is_rejected() {
        for field in [
            FIELD_EVENT_ID,
            FIELD_DATA,
            FIELD_METADATA,
            FIELD_CORRELATION_ID,
        ] {
            let mut entry = good_entry();
            entry.retain(|(name, _)| *name != field);
            entry.push((field, vec![b'{', 0xc3, 0x28, b'}']));
            let err = decode_err(&entry);
            assert_eq!(
                err,
                WireError::NotUtf8 {
                    field: field.to_owned()
                }
            );
            assert_eq!(err.field(), field);
            assert_eq!(err.reason_code(), format!("malformed:not_utf8:{field}"));
        }
    }

    #[test]
    fn duplicate_field_is_rejected() {
        let mut entry = good_entry();
        entry.push((FIELD_EVENT_ID, b"e2".to_vec()));
        let err = decode_err(&entry);
        assert_eq!(
            err,
            WireError::Duplicate {
                field: FIELD_EVENT_ID.to_owned()
            }
        );
        assert_eq!(err.field(), FIELD_EVENT_ID);
        assert_eq!(err.reason_code(), "malformed:duplicate:event_id");
    }

    #[test]
    fn messages_name_the_field() {
        let err = decode_err(&with(FIELD_DATA, "[]"));
        assert!(err.to_string().contains("`data`"), "{err}");
        let err = decode_err(&with(FIELD_TIMESTAMP, "soon"));
        assert!(err.to_string().contains("`timestamp`"), "{err}");
    }
}
