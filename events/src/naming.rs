//! Redis key names and the rules for event type strings.
//!
//! Every key Watchtower touches is built here, so an operator who knows the namespace can find
//! everything with `SCAN 0 MATCH watch_tower:*`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{ns}:events:{type}` | stream | the events of one type |
//! | `{ns}:dlq:{handler}` | stream | the dead letters of one handler |
//! | `{ns}:kv:{handler}` | hash | the key-value state of one handler |
//!
//! An event type is two or more dot-separated segments of `a-z`, `0-9` and `_`
//! (`position.updated`, `billing.invoice.paid`). The rule keeps types free of `:`, so a stream
//! key always splits back into namespace and type without ambiguity.

use thiserror::Error;

/// The namespace used when the configuration names none.
pub const DEFAULT_NAMESPACE: &str = "watch_tower";

/// The stream that carries events of `event_type`: `{namespace}:events:{event_type}`.
///
/// ```
/// use watchtower_events::naming::stream_key;
/// assert_eq!(stream_key("watch_tower", "position.updated"), "watch_tower:events:position.updated");
/// ```
pub fn stream_key(namespace: &str, event_type: &str) -> String {
    format!("{namespace}:events:{event_type}")
}

/// The dead-letter stream of the handler named `handler`: `{namespace}:dlq:{handler}`.
pub fn dlq_key(namespace: &str, handler: &str) -> String {
    format!("{namespace}:dlq:{handler}")
}

/// The Redis hash holding the key-value state of the handler named `handler`:
/// `{namespace}:kv:{handler}`.
pub fn kv_key(namespace: &str, handler: &str) -> String {
    format!("{namespace}:kv:{handler}")
}

/// The event type carried by `stream_key`, or `None` if the key is not an event stream of
/// `namespace`.
///
/// A partition suffix of digits (`…:position.updated:3`, see SPEC §8) is dropped, so every
/// partition of a type maps back to that type. The returned type is not validated; pass it to
/// [`validate_event_type`] if the key came from outside.
///
/// ```
/// use watchtower_events::naming::event_type_of_stream;
/// let key = "watch_tower:events:position.updated";
/// assert_eq!(event_type_of_stream("watch_tower", key), Some("position.updated"));
/// assert_eq!(event_type_of_stream("other", key), None);
/// ```
pub fn event_type_of_stream<'a>(namespace: &str, stream_key: &'a str) -> Option<&'a str> {
    let event_type = stream_key
        .strip_prefix(namespace)?
        .strip_prefix(":events:")?;
    let event_type = match event_type.rsplit_once(':') {
        Some((base, partition))
            if !partition.is_empty() && partition.bytes().all(|b| b.is_ascii_digit()) =>
        {
            base
        }
        _ => event_type,
    };
    (!event_type.is_empty()).then_some(event_type)
}

/// Why a string is not a valid event type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NamingError {
    /// The string is empty.
    #[error("event type is empty")]
    Empty,
    /// The string has a single segment; a type needs at least one `.`.
    #[error(
        "event type `{value}` has no `.`: it needs two or more segments, like `position.updated`"
    )]
    SingleSegment {
        /// The rejected string.
        value: String,
    },
    /// Two dots in a row, or a dot at the start or the end.
    #[error("event type `{value}` has an empty segment at byte {position}")]
    EmptySegment {
        /// The rejected string.
        value: String,
        /// Byte offset of the empty segment.
        position: usize,
    },
    /// A character outside `a-z`, `0-9`, `_` and `.`.
    #[error(
        "event type `{value}` has {found:?} at byte {position}; only a-z, 0-9, `_` and `.` are allowed"
    )]
    InvalidChar {
        /// The rejected string.
        value: String,
        /// The first character that is not allowed.
        found: char,
        /// Byte offset of `found`.
        position: usize,
    },
}

/// Checks that `s` is a valid event type: `[a-z0-9_]+(\.[a-z0-9_]+)+`.
///
/// The error reports the first problem from the left, so `Position..x` is rejected for its
/// `P` rather than for its empty segment.
///
/// ```
/// use watchtower_events::naming::validate_event_type;
/// assert!(validate_event_type("position.updated").is_ok());
/// assert!(validate_event_type("position").is_err());
/// ```
pub fn validate_event_type(s: &str) -> Result<(), NamingError> {
    if s.is_empty() {
        return Err(NamingError::Empty);
    }
    let mut segment_start = 0;
    let mut dots = 0;
    for (position, byte) in s.bytes().enumerate() {
        match byte {
            b'a'..=b'z' | b'0'..=b'9' | b'_' => {}
            b'.' => {
                if position == segment_start {
                    return Err(empty_segment(s, position));
                }
                dots += 1;
                segment_start = position + 1;
            }
            _ => {
                // Only ASCII is accepted, so the first offending byte starts a character.
                let found = s[position..]
                    .chars()
                    .next()
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                return Err(NamingError::InvalidChar {
                    value: s.to_owned(),
                    found,
                    position,
                });
            }
        }
    }
    if segment_start == s.len() {
        return Err(empty_segment(s, segment_start));
    }
    if dots == 0 {
        return Err(NamingError::SingleSegment {
            value: s.to_owned(),
        });
    }
    Ok(())
}

fn empty_segment(s: &str, position: usize) -> NamingError {
    NamingError::EmptySegment {
        value: s.to_owned(),
        position,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_spec_layout() {
        assert_eq!(
            stream_key(DEFAULT_NAMESPACE, "position.updated"),
            "watch_tower:events:position.updated"
        );
        assert_eq!(dlq_key("ns", "speed-alert"), "ns:dlq:speed-alert");
        assert_eq!(kv_key("ns", "speed-alert"), "ns:kv:speed-alert");
    }

    #[test]
    fn stream_key_splits_back_into_its_type() {
        let key = stream_key("ns", "trip.status_changed");
        assert_eq!(
            event_type_of_stream("ns", &key),
            Some("trip.status_changed")
        );
    }

    #[test]
    fn stream_of_another_namespace_or_kind_has_no_type() {
        assert_eq!(event_type_of_stream("ns", "other:events:a.b"), None);
        assert_eq!(event_type_of_stream("ns", "ns:dlq:a.b"), None);
        assert_eq!(event_type_of_stream("ns", "ns:events:"), None);
        assert_eq!(event_type_of_stream("n", "ns:events:a.b"), None);
    }

    #[test]
    fn partition_suffix_is_dropped() {
        assert_eq!(
            event_type_of_stream("ns", "ns:events:position.updated:12"),
            Some("position.updated")
        );
        // Only a suffix of digits is a partition.
        assert_eq!(event_type_of_stream("ns", "ns:events:a.b:x"), Some("a.b:x"));
        assert_eq!(event_type_of_stream("ns", "ns:events::3"), None);
    }

    #[test]
    fn valid_types_are_accepted() {
        for ok in ["position.updated", "a.b.c", "x_1.y", "trip.status_changed"] {
            assert_eq!(validate_event_type(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn invalid_types_are_rejected_with_the_reason() {
        assert_eq!(validate_event_type(""), Err(NamingError::Empty));
        assert!(matches!(
            validate_event_type("position"),
            Err(NamingError::SingleSegment { .. })
        ));
        assert!(matches!(
            validate_event_type("Position.updated"),
            Err(NamingError::InvalidChar {
                found: 'P',
                position: 0,
                ..
            })
        ));
        assert!(matches!(
            validate_event_type("a..b"),
            Err(NamingError::EmptySegment { position: 2, .. })
        ));
        assert!(matches!(
            validate_event_type(".a"),
            Err(NamingError::EmptySegment { position: 0, .. })
        ));
        assert!(matches!(
            validate_event_type("a."),
            Err(NamingError::EmptySegment { position: 2, .. })
        ));
        assert!(matches!(
            validate_event_type("a.b:0"),
            Err(NamingError::InvalidChar { found: ':', .. })
        ));
        assert!(matches!(
            validate_event_type("a.é"),
            Err(NamingError::InvalidChar { found: 'é', .. })
        ));
    }

    #[test]
    fn error_message_names_the_string() {
        let message = validate_event_type("Position.updated")
            .unwrap_err()
            .to_string();
        assert!(message.contains("`Position.updated`"), "{message}");
    }
}
