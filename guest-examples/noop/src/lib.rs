//! A handler that does nothing and succeeds: the baseline for measuring what the host itself
//! costs per event (reading, lifting the event into the component, acknowledging).

use watchtower_guest::{Event, HandleError, Handler, export_handler};

/// Accepts every event without looking at it.
struct Noop;

impl Handler for Noop {
    fn handle(_event: Event) -> Result<(), HandleError> {
        Ok(())
    }
}

export_handler!(Noop);
