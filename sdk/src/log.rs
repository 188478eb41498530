//! Logging through the host: lines land in the host's log, tagged with the handler and the
//! entry being handled.
//!
//! Logging is not an effect: a line is written at once, even when the call later fails,
//! which is what makes it useful for explaining a failure. Each level has a function taking
//! a `&str` and a macro of the same name taking `format!` arguments:
//!
//! ```no_run
//! use watchtower_guest::log;
//!
//! log::info("starting");
//! let truck = "T-12";
//! log::warn!("truck {truck} reported no position for {} minutes", 5);
//! ```
//!
//! Guest stdout and stderr also reach the host's log, but without a level.

use crate::bindings::watchtower::handler::host;
use crate::bindings::watchtower::handler::types::LogLevel;

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Step-by-step detail, usually filtered out.
    Trace,
    /// Detail useful while developing a handler.
    Debug,
    /// Normal operation worth recording.
    Info,
    /// Something unexpected that the handler coped with.
    Warn,
    /// Something failed.
    Error,
}

impl From<Level> for LogLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => Self::Trace,
            Level::Debug => Self::Debug,
            Level::Info => Self::Info,
            Level::Warn => Self::Warn,
            Level::Error => Self::Error,
        }
    }
}

/// Writes `message` to the host's log at `level`.
pub fn log(level: Level, message: &str) {
    host::log(level.into(), message);
}

/// Writes `message` at [`Level::Trace`].
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Writes `message` at [`Level::Debug`].
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Writes `message` at [`Level::Info`].
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Writes `message` at [`Level::Warn`].
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Writes `message` at [`Level::Error`].
pub fn error(message: &str) {
    log(Level::Error, message);
}

// The macros are exported under private names at the crate root (where `#[macro_export]`
// puts them) and given their public names here, so they read `log::info!` next to
// `log::info` instead of taking over short names at the root of the crate.

#[doc(hidden)]
#[macro_export]
macro_rules! __watchtower_log_trace {
    ($($arg:tt)+) => { $crate::log::trace(&::std::format!($($arg)+)) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __watchtower_log_debug {
    ($($arg:tt)+) => { $crate::log::debug(&::std::format!($($arg)+)) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __watchtower_log_info {
    ($($arg:tt)+) => { $crate::log::info(&::std::format!($($arg)+)) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __watchtower_log_warn {
    ($($arg:tt)+) => { $crate::log::warn(&::std::format!($($arg)+)) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __watchtower_log_error {
    ($($arg:tt)+) => { $crate::log::error(&::std::format!($($arg)+)) };
}

/// Formats its arguments like `format!` and writes them at [`Level::Trace`].
pub use crate::__watchtower_log_trace as trace;

/// Formats its arguments like `format!` and writes them at [`Level::Debug`].
pub use crate::__watchtower_log_debug as debug;

/// Formats its arguments like `format!` and writes them at [`Level::Info`].
pub use crate::__watchtower_log_info as info;

/// Formats its arguments like `format!` and writes them at [`Level::Warn`].
pub use crate::__watchtower_log_warn as warn;

/// Formats its arguments like `format!` and writes them at [`Level::Error`].
pub use crate::__watchtower_log_error as error;
