//! A projection of trips: the current status of every trip, kept in kv as
//! `trip:{trip_id}` = status, and the lifecycle rules that guard it.
//!
//! Subscribes to `trip.created` and `trip.status_changed`; other event types are accepted and
//! ignored. Because a new consumer group starts at the oldest entry of a stream, deploying
//! this handler builds the projection from the whole history.
//!
//! # `trip.created`
//!
//! Sets `trip:{trip_id}` to `planned`. A trip that already exists and is still `planned` is
//! left as it is (the same creation published twice does no harm); a trip that already exists
//! with any other status is rejected, since creating it again would silently rewind it.
//!
//! # `trip.status_changed`
//!
//! Checks the move from the trip's status in kv to `new_status` against this table and, when
//! allowed, sets `trip:{trip_id}` to `new_status`:
//!
//! | from | allowed to |
//! |---|---|
//! | `planned` | `in_progress`, `cancelled` |
//! | `in_progress` | `completed`, `cancelled`, `delayed` |
//! | `delayed` | `in_progress`, `cancelled`, `completed` |
//! | `completed` | nothing (final) |
//! | `cancelled` | nothing (final) |
//!
//! Everything else is rejected (the entry goes to the dead-letter stream with the reason):
//! a move not in the table (including a status to itself) and an unknown status string. The
//! reason names the trip and both statuses. A change to a trip not created yet is retried:
//! `trip.created` and `trip.status_changed` are different streams, so a creation may be
//! handled after a change that followed it. The kv status
//! is the authority; an `old_status` in the event that disagrees with it is only logged.

use std::fmt;

use watchtower_guest::events::{TripCreated, TripStatusChanged};
use watchtower_guest::{Event, HandleError, Handler, export_handler, kv, log};

/// Where a trip is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Planned,
    InProgress,
    Delayed,
    Completed,
    Cancelled,
}

impl Status {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "planned" => Self::Planned,
            "in_progress" => Self::InProgress,
            "delayed" => Self::Delayed,
            "completed" => Self::Completed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::InProgress => "in_progress",
            Self::Delayed => "delayed",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    /// The transition table of the crate docs.
    fn may_become(self, next: Self) -> bool {
        use Status::{Cancelled, Completed, Delayed, InProgress, Planned};
        matches!(
            (self, next),
            (Planned, InProgress | Cancelled)
                | (InProgress, Completed | Cancelled | Delayed)
                | (Delayed, InProgress | Cancelled | Completed)
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn trip_key(trip_id: &str) -> String {
    format!("trip:{trip_id}")
}

/// The status stored for `trip_id`, `None` for a trip never created. A stored value that is
/// not a status can only come from someone editing the hash by hand; refuse to build on it.
fn stored_status(trip_id: &str) -> Result<Option<Status>, HandleError> {
    kv::get(&trip_key(trip_id))
        .map(|text| {
            Status::parse(&text).ok_or_else(|| {
                HandleError::reject(format!(
                    "trip {trip_id}: stored status {text:?} is not a trip status"
                ))
            })
        })
        .transpose()
}

fn on_created(trip: &TripCreated) -> Result<(), HandleError> {
    match stored_status(&trip.trip_id)? {
        None => {
            kv::set(&trip_key(&trip.trip_id), Status::Planned.as_str());
            Ok(())
        }
        Some(Status::Planned) => {
            log::debug!(
                "trip {} created again while planned; nothing to do",
                trip.trip_id
            );
            Ok(())
        }
        Some(current) => Err(HandleError::reject(format!(
            "trip {} already exists with status {current}; trip.created would reset it to planned",
            trip.trip_id
        ))),
    }
}

fn on_status_changed(change: &TripStatusChanged) -> Result<(), HandleError> {
    let trip_id = &change.trip_id;
    let Some(current) = stored_status(trip_id)? else {
        // `trip.created` travels on another stream, so it may simply not be handled yet:
        // a retry gives it time to arrive; a trip that never appears ends as a dead letter
        // once the attempts run out.
        return Err(HandleError::retry(format!(
            "trip {trip_id} is unknown (no trip.created seen yet); cannot change it from {} to {}",
            change.old_status, change.new_status
        )));
    };
    let Some(next) = Status::parse(&change.new_status) else {
        return Err(HandleError::reject(format!(
            "trip {trip_id}: cannot change from {current} to {:?}, which is not a trip status",
            change.new_status
        )));
    };
    if !current.may_become(next) {
        return Err(HandleError::reject(format!(
            "trip {trip_id}: transition from {current} to {next} is not allowed"
        )));
    }
    if change.old_status != current.as_str() {
        log::warn!(
            "trip {trip_id}: event says old status {}, the projection has {current}",
            change.old_status
        );
    }
    kv::set(&trip_key(trip_id), next.as_str());
    Ok(())
}

/// The trip projection handler.
struct TripTracker;

impl Handler for TripTracker {
    fn handle(event: Event) -> Result<(), HandleError> {
        if let Some(trip) = event.payload::<TripCreated>()? {
            return on_created(&trip);
        }
        if let Some(change) = event.payload::<TripStatusChanged>()? {
            return on_status_changed(&change);
        }
        Ok(())
    }
}

export_handler!(TripTracker);

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Status; 5] = [
        Status::Planned,
        Status::InProgress,
        Status::Delayed,
        Status::Completed,
        Status::Cancelled,
    ];

    #[test]
    fn statuses_round_trip_through_text() {
        for status in ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        assert_eq!(Status::parse("flying"), None);
    }

    #[test]
    fn final_statuses_allow_nothing() {
        for next in ALL {
            assert!(!Status::Completed.may_become(next));
            assert!(!Status::Cancelled.may_become(next));
        }
    }

    #[test]
    fn table_allows_exactly_the_documented_moves() {
        let allowed: Vec<(Status, Status)> = ALL
            .iter()
            .flat_map(|&from| ALL.iter().map(move |&to| (from, to)))
            .filter(|&(from, to)| from.may_become(to))
            .collect();
        use Status::{Cancelled, Completed, Delayed, InProgress, Planned};
        assert_eq!(
            allowed,
            vec![
                (Planned, InProgress),
                (Planned, Cancelled),
                (InProgress, Delayed),
                (InProgress, Completed),
                (InProgress, Cancelled),
                (Delayed, InProgress),
                (Delayed, Completed),
                (Delayed, Cancelled),
            ]
        );
    }
}
