//! Events the tests publish, shaped like the fleet platform's: positions, trips, and the
//! `chaos` guest's instructions.
//!
//! Ids are UUID-shaped and derived from a number, so a test can recompute which truck or
//! event it expects to see in an alert or a kv key.

use std::collections::{BTreeMap, HashMap};

use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};

use crate::cli::RunningProcess;
use crate::streams::{Event, event_id};
use crate::wait::{PATIENCE, eventually};

/// The default consumer group of a handler.
pub const DEFAULT_GROUP: &str = "watch_tower_consumers";

/// The custom event type the `chaos` guest is fed in these tests.
pub const CHAOS_EVENT: &str = "chaos.test";

/// The id of truck `n`.
pub fn truck_id(n: u64) -> String {
    format!("0193a5b0-7a1c-7000-8000-{n:012x}")
}

/// The id of trip `n`.
pub fn trip_id(n: u64) -> String {
    format!("0193a5b0-7b2d-7000-9000-{n:012x}")
}

/// A `position.updated` of truck `n` at `speed` km/h, with event id `event_id(n)` and
/// correlation id `trace-{n}`.
pub fn position(n: u64, speed: f64) -> Event {
    Event::new(
        event_id(n),
        "position.updated",
        json!({
            "truck_id": truck_id(n),
            "truck_number": format!("NL-{n:03}"),
            "lat": 52.3676,
            "lng": 4.9041,
            "speed": speed,
            "heading": 90.0,
        }),
    )
    .with_correlation_id(format!("trace-{n}"))
}

/// A `chaos` event that succeeds: the guest counts it and sets `seen:{event_id}`.
pub fn chaos_ok(n: u64) -> Event {
    Event::new(event_id(n), CHAOS_EVENT, json!({ "n": n }))
}

/// A `chaos` event that makes the guest fail in `mode` (`panic`, `loop`, `oom`, `retry`,
/// `reject`, `publish-then-panic`) or behave in `mode` with its defaults (`retry-until`,
/// `slow`).
pub fn chaos_fault(n: u64, mode: &str) -> Event {
    Event::new(event_id(n), CHAOS_EVENT, json!({ "n": n, "chaos": mode }))
}

/// A `chaos` event that asks to be retried until its attempt number reaches `succeed_at`;
/// then the guest counts it and sets `attempt:{event_id}` to the attempt.
pub fn chaos_retry_until(n: u64, succeed_at: u32) -> Event {
    Event::new(
        event_id(n),
        CHAOS_EVENT,
        json!({ "n": n, "chaos": "retry-until", "succeed_at": succeed_at }),
    )
}

/// A `chaos` event whose call busy-waits `ms` milliseconds before counting it: a call that
/// is still in flight when a test acts.
pub fn chaos_slow(n: u64, ms: u64) -> Event {
    Event::new(
        event_id(n),
        CHAOS_EVENT,
        json!({ "n": n, "chaos": "slow", "ms": ms }),
    )
}

/// `event` with the top-level payload field `field` set to `value` (an `ordering_key`).
pub fn with_data(mut event: Event, field: &str, value: &str) -> Event {
    if let Some(data) = event.data.as_object_mut() {
        data.insert(field.to_owned(), Value::String(value.to_owned()));
    }
    event
}

/// The kv field where the `chaos` guest records the attempt a `retry-until` event
/// succeeded on.
pub fn attempt_key(event: &Event) -> String {
    format!("attempt:{}", event.event_id)
}

/// The `seen:{event_id}` fields of a `chaos` handler's kv state, by event id.
pub fn seen_counts(state: &HashMap<String, String>) -> BTreeMap<String, String> {
    state
        .iter()
        .filter_map(|(key, value)| Some((key.strip_prefix("seen:")?.to_owned(), value.clone())))
        .collect()
}

/// Asserts that a `chaos` handler with kv `state` handled exactly `events`, each once: every
/// `seen:` is `"1"`, there is no other, and `handled` equals their number.
pub fn assert_handled_exactly_once(state: &HashMap<String, String>, events: &[Event]) {
    let seen = seen_counts(state);
    let twice: Vec<(&String, &String)> = seen.iter().filter(|(_, n)| n.as_str() != "1").collect();
    assert!(
        twice.is_empty(),
        "effects committed more than once: {:?}{}",
        &twice[..twice.len().min(20)],
        if twice.len() > 20 { " …" } else { "" }
    );
    let missing: Vec<&str> = events
        .iter()
        .map(|e| e.event_id.as_str())
        .filter(|id| !seen.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} events never handled, e.g. {:?}",
        missing.len(),
        events.len(),
        &missing[..missing.len().min(20)]
    );
    assert_eq!(seen.len(), events.len(), "no other event was handled");
    assert_eq!(
        state.get("handled").map(String::as_str),
        Some(events.len().to_string().as_str()),
        "`handled` counts each event once"
    );
}

/// The `handled` counter of the `chaos` handler `handler` (0 before its first commit).
pub async fn handled(con: &mut MultiplexedConnection, ns: &str, handler: &str) -> u64 {
    let key = watchtower_events::kv_key(ns, handler);
    redis::cmd("HGET")
        .arg(&key)
        .arg("handled")
        .query_async::<Option<u64>>(con)
        .await
        .unwrap_or_else(|err| panic!("HGET {key} handled: {err}"))
        .unwrap_or(0)
}

/// Waits until the `chaos` handler `handler` of the host `process` has handled at least
/// `count` events; fails at once if the process exits.
pub async fn wait_for_handled(
    con: &MultiplexedConnection,
    ns: &str,
    handler: &str,
    count: u64,
    process: &mut RunningProcess,
) {
    eventually(
        PATIENCE,
        &format!("{handler}: {count} events handled"),
        || {
            let exited = process.has_exited();
            let mut con = con.clone();
            async move {
                assert!(!exited, "the host exited before it was told to");
                let n = handled(&mut con, ns, handler).await;
                if n >= count {
                    Ok(())
                } else {
                    Err(format!("handled {n}"))
                }
            }
        },
    )
    .await;
}

/// The kv field the `chaos` guest sets when it handles `event`.
pub fn seen_key(event: &Event) -> String {
    format!("seen:{}", event.event_id)
}

/// A `trip.created` for trip `trip` on truck 1.
pub fn trip_created(n: u64, trip: u64) -> Event {
    Event::new(
        event_id(n),
        "trip.created",
        json!({
            "trip_id": trip_id(trip),
            "truck_id": truck_id(1),
            "origin": "Rotterdam",
            "destination": "Hamburg",
            "planned_departure": "2026-12-05T06:00:00Z",
        }),
    )
}

/// A `trip.status_changed` of trip `trip` from `old` to `new`.
pub fn trip_status_changed(n: u64, trip: u64, old: &str, new: &str) -> Event {
    Event::new(
        event_id(n),
        "trip.status_changed",
        json!({
            "trip_id": trip_id(trip),
            "truck_id": truck_id(1),
            "old_status": old,
            "new_status": new,
        }),
    )
}

/// The trip-tracker's kv field for trip `trip`.
pub fn trip_key(trip: u64) -> String {
    format!("trip:{}", trip_id(trip))
}

/// `data[field]` as a string; panics naming the field if it is missing or not a string.
pub fn str_field<'a>(data: &'a Value, field: &str) -> &'a str {
    data.get(field)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("`{field}` is missing or not a string in {data}"))
}
