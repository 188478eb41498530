//! Every way handling an entry can end, mapped in one place ([`decide`]) to what happens to
//! the entry next.

use std::time::Duration;

use watchtower_events::WireError;

use crate::wasm::Failure;

/// What happens to an entry after one handling attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Commit the call's effects and acknowledge the entry.
    Ack,
    /// Leave the entry pending; it is delivered again, no sooner than `after`.
    Retry {
        /// Earliest time until the next attempt.
        after: Duration,
        /// Why the attempt failed (for the log).
        reason: String,
    },
    /// Give up on the entry: it can never succeed, or it used up its attempts.
    DeadLetter {
        /// Short machine-readable reason, e.g. `rejected: unknown trip` or
        /// `malformed:missing:data`.
        reason: String,
    },
}

/// How one attempt at an entry ended.
#[derive(Debug)]
pub enum Attempt<'a> {
    /// `handle` returned `ok`.
    Handled,
    /// The call failed.
    Failed(&'a Failure),
    /// The entry does not follow the wire format.
    Malformed(&'a WireError),
    /// The entry was deleted from the stream while pending: nothing left to handle.
    Deleted,
}

/// Maps an attempt to its outcome. `attempt` counts deliveries from 1.
pub fn decide(attempt: &Attempt<'_>, delivery: u32, max_attempts: u32) -> Outcome {
    let transient = |reason: String| {
        if delivery >= max_attempts {
            Outcome::DeadLetter {
                reason: format!("max_attempts: {reason}"),
            }
        } else {
            Outcome::Retry {
                after: backoff(delivery),
                reason,
            }
        }
    };
    match attempt {
        Attempt::Handled | Attempt::Deleted => Outcome::Ack,
        Attempt::Malformed(error) => Outcome::DeadLetter {
            reason: error.reason_code(),
        },
        Attempt::Failed(failure) => match failure {
            Failure::Reject(reason) => Outcome::DeadLetter {
                reason: format!("rejected: {reason}"),
            },
            Failure::Retry(reason) => transient(format!("retry: {reason}")),
            Failure::Timeout(limit) => transient(format!("timeout after {} ms", limit.as_millis())),
            Failure::MemoryLimit(detail) => transient(format!("memory_limit: {detail}")),
            Failure::Trap(detail) => transient(format!("trap: {detail}")),
            Failure::HostUnavailable(detail) => transient(format!("unavailable: {detail}")),
            Failure::Instantiate(detail) => transient(format!("instantiate: {detail}")),
        },
    }
}

/// Exponential backoff from the delivery count: 100 ms, 200 ms, 400 ms, … capped at 30 s.
pub fn backoff(delivery: u32) -> Duration {
    let exp = delivery.saturating_sub(1).min(16);
    Duration::from_millis(100u64 << exp).min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_and_deleted_entries_are_acked() {
        assert_eq!(decide(&Attempt::Handled, 1, 5), Outcome::Ack);
        assert_eq!(decide(&Attempt::Deleted, 3, 5), Outcome::Ack);
    }

    #[test]
    fn reject_is_dead_lettered_at_once() {
        let failure = Failure::Reject("unknown trip".into());
        assert_eq!(
            decide(&Attempt::Failed(&failure), 1, 5),
            Outcome::DeadLetter {
                reason: "rejected: unknown trip".into()
            }
        );
    }

    #[test]
    fn transient_failures_retry_until_attempts_run_out() {
        let trap = Failure::Trap("unreachable".into());
        assert!(matches!(
            decide(&Attempt::Failed(&trap), 4, 5),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            decide(&Attempt::Failed(&trap), 5, 5),
            Outcome::DeadLetter { reason } if reason.starts_with("max_attempts: trap")
        ));
    }

    #[test]
    fn malformed_entries_are_dead_lettered_with_the_field() {
        let error = WireError::Missing { field: "data" };
        let Outcome::DeadLetter { reason } = decide(&Attempt::Malformed(&error), 1, 5) else {
            panic!("not a dead letter");
        };
        assert!(reason.contains("data"), "{reason}");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(40), Duration::from_secs(30));
    }
}
