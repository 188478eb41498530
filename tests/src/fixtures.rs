//! Events the tests publish, shaped like the fleet platform's: positions, trips, and the
//! `chaos` guest's instructions.
//!
//! Ids are UUID-shaped and derived from a number, so a test can recompute which truck or
//! event it expects to see in an alert or a kv key.

use serde_json::{Value, json};

use crate::streams::{Event, event_id};

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
/// `reject`, `publish-then-panic`).
pub fn chaos_fault(n: u64, mode: &str) -> Event {
    Event::new(event_id(n), CHAOS_EVENT, json!({ "n": n, "chaos": mode }))
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
