//! [`HandleError`]: how a handler says an event did not succeed, and whether trying again can help.
//!
//! Both variants discard everything the call did (published events, kv writes); they differ
//! in what the host does with the entry next. The SDK's own errors convert into
//! `HandleError` so that `?` works inside [`Handler::handle`](crate::Handler::handle); each
//! conversion documents which variant it picks and why.

use std::fmt;

use crate::bindings;
use crate::config::ConfigError;
use crate::publish::PublishError;

/// Why [`Handler::handle`](crate::Handler::handle) did not succeed.
///
/// Either way the host commits none of the call's effects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandleError {
    /// A transient failure (a dependency is not ready, a race lost): the host delivers the
    /// entry again later, with backoff, up to the handler's `max_attempts`, then dead-letters it.
    Retry(String),
    /// A permanent failure (a malformed payload, a forbidden state transition): the entry is
    /// not retried and goes straight to the handler's dead-letter stream with this reason.
    Reject(String),
}

impl HandleError {
    /// A transient failure with `reason`; see [`HandleError::Retry`].
    pub fn retry(reason: impl Into<String>) -> Self {
        Self::Retry(reason.into())
    }

    /// A permanent failure with `reason`; see [`HandleError::Reject`].
    pub fn reject(reason: impl Into<String>) -> Self {
        Self::Reject(reason.into())
    }

    /// The reason given, without saying which kind of failure it is.
    pub fn reason(&self) -> &str {
        match self {
            Self::Retry(reason) | Self::Reject(reason) => reason,
        }
    }

    /// Whether the host will deliver the entry again.
    pub fn is_retry(&self) -> bool {
        matches!(self, Self::Retry(_))
    }

    pub(crate) fn into_wit(self) -> bindings::HandleError {
        match self {
            Self::Retry(reason) => bindings::HandleError::Retry(reason),
            Self::Reject(reason) => bindings::HandleError::Reject(reason),
        }
    }
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Retry(reason) => write!(f, "retry: {reason}"),
            Self::Reject(reason) => write!(f, "reject: {reason}"),
        }
    }
}

impl std::error::Error for HandleError {}

/// A refused publish is a rejection: the host refuses only a bad type string or a payload
/// that does not fit its schema, and sending the same thing again would be refused again.
impl From<PublishError> for HandleError {
    fn from(err: PublishError) -> Self {
        Self::Reject(err.to_string())
    }
}

/// A config value that does not parse is a rejection: every delivery would fail the same
/// way until an operator fixes the config, and dead letters can be re-driven after that.
impl From<ConfigError> for HandleError {
    fn from(err: ConfigError) -> Self {
        Self::Reject(err.to_string())
    }
}

/// JSON that does not (de)serialize is a rejection: the bytes will not change on retry.
impl From<serde_json::Error> for HandleError {
    fn from(err: serde_json::Error) -> Self {
        Self::Reject(err.to_string())
    }
}

/// Turns any `Result` whose error can be displayed into a `Result<T, HandleError>`, for
/// errors that have no `From` conversion of their own.
///
/// ```
/// use watchtower_guest::{HandleError, ResultExt};
///
/// fn parse_count(text: &str) -> Result<u64, HandleError> {
///     text.parse::<u64>().or_reject()
/// }
/// assert!(parse_count("seven").is_err());
/// ```
pub trait ResultExt<T> {
    /// Maps the error to [`HandleError::Retry`], its `Display` text becoming the reason.
    fn or_retry(self) -> Result<T, HandleError>;
    /// Maps the error to [`HandleError::Reject`], its `Display` text becoming the reason.
    fn or_reject(self) -> Result<T, HandleError>;
}

impl<T, E: fmt::Display> ResultExt<T> for Result<T, E> {
    fn or_retry(self) -> Result<T, HandleError> {
        self.map_err(|err| HandleError::Retry(err.to_string()))
    }

    fn or_reject(self) -> Result<T, HandleError> {
        self.map_err(|err| HandleError::Reject(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_pick_the_variant_and_keep_the_reason() {
        let retry = HandleError::retry("redis busy");
        assert!(retry.is_retry());
        assert_eq!(retry.reason(), "redis busy");
        assert_eq!(retry.to_string(), "retry: redis busy");

        let reject = HandleError::reject("bad payload");
        assert!(!reject.is_retry());
        assert_eq!(reject.to_string(), "reject: bad payload");
    }

    #[test]
    fn publish_and_config_errors_are_permanent() {
        let publish: HandleError = PublishError::InvalidType("Nope".into()).into();
        assert!(!publish.is_retry());
        assert!(publish.reason().contains("Nope"));

        let config: HandleError = ConfigError {
            key: "speed_limit_kmh".into(),
            value: "fast".into(),
            reason: "invalid float literal".into(),
        }
        .into();
        assert!(!config.is_retry());
        assert!(config.reason().contains("speed_limit_kmh"));
    }

    #[test]
    fn result_ext_uses_the_display_text() {
        let err = "x".parse::<u32>().or_retry().unwrap_err();
        assert!(err.is_retry());
        assert_eq!(err.reason(), "invalid digit found in string");
    }
}
