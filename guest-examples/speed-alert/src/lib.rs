//! Raises a `speeding` alert when a truck reports a speed above the configured limit.
//!
//! Subscribes to `position.updated`. For a position whose `speed` is strictly greater than
//! the handler's config value `speed_limit_kmh` (default 90 km/h) it publishes an
//! `alert.triggered` event:
//!
//! | field | value |
//! |---|---|
//! | `alert_id` | `speeding-{event_id}` of the position event |
//! | `alert_type` | `speeding` |
//! | `severity` | `warning` |
//! | `truck_id` | the position's `truck_id` |
//! | `message` | `truck T-12 at 104 km/h (limit 90)` (with the `truck_number`) |
//!
//! The alert id comes from the position's event id, so an alert published twice for the
//! same position (a replay, a cluster re-delivery) carries the same id and consumers can drop
//! the duplicate. The alert inherits the position's correlation id from the host. Events of
//! other types are accepted and ignored.
//!
//! ```toml
//! [[handler]]
//! name = "speed-alert"
//! component = "guest-examples/speed-alert.wasm"
//! events = ["position.updated"]
//! ordering_key = "truck_id"
//! [handler.config]
//! speed_limit_kmh = "90"
//! ```

use watchtower_guest::events::{AlertTriggered, PositionUpdated, Severity};
use watchtower_guest::{Event, HandleError, Handler, config, export_handler, log, publish};

/// The limit when the config does not set `speed_limit_kmh`.
const DEFAULT_LIMIT_KMH: f64 = 90.0;

/// The `speeding` alert handler.
struct SpeedAlert;

impl Handler for SpeedAlert {
    fn handle(event: Event) -> Result<(), HandleError> {
        let Some(position) = event.payload::<PositionUpdated>()? else {
            return Ok(());
        };
        let limit: f64 = config::get_or("speed_limit_kmh", DEFAULT_LIMIT_KMH)?;
        if position.speed <= limit {
            return Ok(());
        }

        let message = format!(
            "truck {} at {} km/h (limit {limit})",
            position.truck_number, position.speed
        );
        log::info(&message);
        publish(&AlertTriggered {
            alert_id: format!("speeding-{}", event.event_id()),
            alert_type: "speeding".to_owned(),
            severity: Severity::Warning,
            truck_id: Some(position.truck_id),
            trip_id: None,
            message,
        })?;
        Ok(())
    }
}

export_handler!(SpeedAlert);
