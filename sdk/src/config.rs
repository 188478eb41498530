//! The handler's configuration: the `[handler.config]` table of the host's `watchtower.toml`.
//!
//! Values are strings in the WIT contract (a TOML table of strings is what operators write);
//! [`get_parsed`] and [`get_or`] parse them with [`FromStr`] and report a value that does not
//! parse as a [`ConfigError`] naming the key, which `?` turns into a rejection.
//!
//! ```no_run
//! use watchtower_guest::{config, HandleError};
//!
//! fn limit() -> Result<f64, HandleError> {
//!     Ok(config::get_or("speed_limit_kmh", 90.0)?)
//! }
//! ```

use std::fmt::Display;
use std::str::FromStr;

use crate::bindings::watchtower::handler::host;

/// A config value is present but does not parse as the type the handler asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config `{key}` = {value:?} is not valid: {reason}")]
pub struct ConfigError {
    /// The key in `[handler.config]`.
    pub key: String,
    /// The value as the operator wrote it.
    pub value: String,
    /// What the parser said about it.
    pub reason: String,
}

/// The value of `key`, or `None` when the handler's config table does not have it.
pub fn get(key: &str) -> Option<String> {
    host::config_get(key)
}

/// The value of `key` parsed as `T`; `Ok(None)` when the key is absent, an error when the
/// value does not parse.
pub fn get_parsed<T>(key: &str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    get(key).map(|value| parse(key, value)).transpose()
}

/// The value of `key` parsed as `T`, or `default` when the key is absent. A value that is
/// present but does not parse is an error, never silently the default: an operator who
/// wrote `speed_limit_kmh = "fast"` wants to hear about it.
pub fn get_or<T>(key: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    Ok(get_parsed(key)?.unwrap_or(default))
}

fn parse<T>(key: &str, value: String) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    value.trim().parse().map_err(|err: T::Err| ConfigError {
        key: key.to_owned(),
        reason: err.to_string(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_surrounding_whitespace() {
        assert_eq!(parse::<f64>("speed_limit_kmh", " 90.5 ".into()), Ok(90.5));
    }

    #[test]
    fn parse_error_names_key_and_value() {
        let err = parse::<u32>("max_trucks", "many".into()).unwrap_err();
        assert_eq!(err.key, "max_trucks");
        assert_eq!(err.value, "many");
        let text = err.to_string();
        assert!(text.contains("`max_trucks`"), "{text}");
        assert!(text.contains("\"many\""), "{text}");
    }
}
