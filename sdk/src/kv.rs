//! The handler's key-value state, kept by the host in the Redis hash
//! `{namespace}:kv:{handler}`; a handler sees only its own keys.
//!
//! Writes are buffered: they are committed together with the acknowledgement of the entry
//! when [`Handler::handle`](crate::Handler::handle) returns `Ok`, and dropped when it returns
//! an error, traps or times out. Reads see the writes this call has made so far. Keep state
//! here rather than in statics: an instance may be discarded or replaced between any two
//! events.
//!
//! ```no_run
//! use watchtower_guest::kv;
//!
//! let seen = kv::get("seen:truck-7").is_some();
//! kv::set("seen:truck-7", "1");
//! kv::delete("stale-key");
//! # let _ = seen;
//! ```

use crate::bindings::watchtower::handler::host;

/// The value of `key`, or `None` when it is not set.
pub fn get(key: &str) -> Option<String> {
    host::kv_get(key)
}

/// Sets `key` to `value` (buffered until the call succeeds).
pub fn set(key: &str, value: &str) {
    host::kv_set(key, value);
}

/// Removes `key`, if it is set (buffered until the call succeeds).
pub fn delete(key: &str) {
    host::kv_delete(key);
}
