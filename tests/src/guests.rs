//! Paths of the example components the tests run.
//!
//! `just guests` builds the crates under `guest-examples/` for `wasm32-wasip2` and copies
//! each component to `guest-examples/{name}.wasm`. Tests never build guests themselves (a
//! cargo build inside a test is slow on two cores and hides its errors); a missing component
//! fails the test with the command that builds it.

use std::path::{Path, PathBuf};

/// The repository root: this crate lives in `tests/`.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate has a parent directory")
        .to_path_buf()
}

/// The built component `guest-examples/{name}.wasm`; panics with how to build it when absent.
pub fn component(name: &str) -> PathBuf {
    let path = repo_root()
        .join("guest-examples")
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "guest component {} is not built: run `just guests`",
        path.display()
    );
    path
}

/// Publishes an `alert.triggered` (`alert_type = "speeding"`) for every `position.updated`
/// faster than its `speed_limit_kmh` config (default 90).
pub fn speed_alert() -> PathBuf {
    component("speed-alert")
}

/// Keeps each trip's status in kv `trip:{trip_id}`; rejects impossible transitions.
pub fn trip_tracker() -> PathBuf {
    component("trip-tracker")
}

/// Fails on demand (`data.chaos` = `panic`, `loop`, `oom`, `retry`, `reject`,
/// `publish-then-panic`); otherwise counts the event in kv `handled` and sets
/// `seen:{event_id}` to one more than before, so a duplicate delivery shows as `"2"`.
pub fn chaos() -> PathBuf {
    component("chaos")
}

/// Does nothing and succeeds.
pub fn noop() -> PathBuf {
    component("noop")
}

/// A valid component of the wrong world (a `wasi:cli` command): `watchtower check` must
/// refuse it.
pub fn wrong_world() -> PathBuf {
    component("wrong-world")
}
