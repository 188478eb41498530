//! The components the tests run: paths of the built examples, another build of one
//! ([`variant`]), and a hand-written component that cannot start.
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

/// The name of the custom section [`variant`] appends.
const VARIANT_SECTION: &str = "watchtower-test-variant";

/// The component at `path` with a custom section carrying `tag` appended: the same
/// behaviour under another sha256, as a second build of the same source would be.
///
/// A component may end with custom sections (id 0, then the section size, then the name and
/// the payload); engines skip them, so the result loads and behaves like the original.
pub fn variant(path: &Path, tag: &str) -> Vec<u8> {
    let mut bytes =
        std::fs::read(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    let mut contents = Vec::new();
    push_leb128(&mut contents, VARIANT_SECTION.len());
    contents.extend_from_slice(VARIANT_SECTION.as_bytes());
    contents.extend_from_slice(tag.as_bytes());
    bytes.push(0);
    push_leb128(&mut bytes, contents.len());
    bytes.extend_from_slice(&contents);
    bytes
}

/// Appends `value` as unsigned LEB128, the variable-length integers of the wasm binary format.
fn push_leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// A component of the handler world whose instantiation traps: its core module's start
/// function hits `unreachable`. It compiles and type-checks; only instantiating shows it.
pub fn traps_on_instantiation() -> Vec<u8> {
    wat::parse_str(TRAPS_ON_INSTANTIATION).expect("the fixture component is valid WAT")
}

const TRAPS_ON_INSTANTIATION: &str = r#"
(component
  (core module $m
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      (local.set $at (global.get $next))
      (global.set $next (i32.add (global.get $next) (i32.add (local.get 3) (i32.const 8))))
      (local.get $at))
    (func (export "handle") (param i32) (result i32) (i32.const 0))
    (func $refuse unreachable)
    (start $refuse))
  (core instance $i (instantiate $m))
  (type $event-def (record
    (field "id" string) (field "event-id" string) (field "event-type" string)
    (field "timestamp" string) (field "version" string)
    (field "correlation-id" (option string))
    (field "metadata" (list (tuple string string)))
    (field "data" string) (field "attempt" u32)))
  (export $event "event" (type $event-def))
  (type $error-def (variant (case "retry" string) (case "reject" string)))
  (export $handle-error "handle-error" (type $error-def))
  (func $handle (param "event" $event) (result (result (error $handle-error)))
    (canon lift (core func $i "handle") (memory (core memory $i "memory"))
      (realloc (core func $i "realloc"))))
  (export "handle" (func $handle)))
"#;
