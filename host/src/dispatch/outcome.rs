//! Every way handling an entry can end, mapped in one place ([`decide`]) to what happens to
//! the entry next, and the retry schedule ([`backoff`]).

use std::time::Duration;

use crate::wasm::Failure;

/// What happens to an entry after one handling attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Commit the call's effects and acknowledge the entry.
    Ack,
    /// Leave the entry pending and deliver it again, no sooner than `after`.
    Retry {
        /// Delay before the next attempt.
        after: Duration,
        /// Why the attempt failed (for the log).
        reason: String,
    },
    /// Give up on the entry: it can never succeed, or it used up its attempts.
    DeadLetter {
        /// Short reason that becomes `dlq_reason`, e.g. `rejected: unknown trip`,
        /// `max_attempts: trap: …` or `malformed:missing:data`.
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
    /// The entry cannot be handled at all; the reason starts with `malformed:`.
    Malformed(String),
    /// The entry was deleted from the stream while pending: nothing left to handle.
    Deleted,
}

/// A handler's retry settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Deliveries before giving up.
    pub max_attempts: u32,
    /// Delay before the second delivery.
    pub backoff: Duration,
    /// Longest delay.
    pub backoff_max: Duration,
}

/// Maps an attempt to its outcome. `delivery` counts deliveries from 1; `entry_id` seeds
/// the jitter, so entries that failed together do not all come back at the same moment.
pub fn decide(
    attempt: &Attempt<'_>,
    delivery: u32,
    policy: &RetryPolicy,
    entry_id: &str,
) -> Outcome {
    let transient = |reason: String| {
        if delivery >= policy.max_attempts {
            Outcome::DeadLetter {
                reason: format!("max_attempts: {reason}"),
            }
        } else {
            Outcome::Retry {
                after: backoff(delivery, policy, entry_id),
                reason,
            }
        }
    };
    match attempt {
        Attempt::Handled | Attempt::Deleted => Outcome::Ack,
        Attempt::Malformed(reason) => Outcome::DeadLetter {
            reason: reason.clone(),
        },
        Attempt::Failed(failure) => match failure {
            Failure::Reject(reason) => Outcome::DeadLetter {
                reason: format!("rejected: {reason}"),
            },
            Failure::Retry(reason) => transient(format!("retry: {reason}")),
            Failure::Timeout(limit) => transient(format!("timeout after {} ms", limit.as_millis())),
            Failure::MemoryLimit(detail) => transient(format!("memory_limit: {detail}")),
            Failure::Trap(detail) => transient(format!("trap: {detail}")),
            Failure::OutOfFuel => transient("out_of_fuel".to_owned()),
            Failure::HostUnavailable(detail) => transient(format!("unavailable: {detail}")),
            Failure::Instantiate(detail) => transient(format!("instantiate: {detail}")),
        },
    }
}

/// Delay after failed delivery number `delivery`: `backoff × 2^(delivery − 1)`, capped at
/// `backoff_max`, with "equal jitter" (between half and all of it) derived from the entry id.
pub fn backoff(delivery: u32, policy: &RetryPolicy, entry_id: &str) -> Duration {
    let exp = delivery.saturating_sub(1).min(30);
    let full = policy
        .backoff
        .saturating_mul(1u32 << exp)
        .min(policy.backoff_max);
    let half = full / 2;
    let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    let seed = entry_id
        .bytes()
        .chain(delivery.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    half + Duration::from_millis(seed % (spread + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        backoff: Duration::from_millis(200),
        backoff_max: Duration::from_secs(10),
    };

    #[test]
    fn success_and_deleted_entries_are_acked() {
        assert_eq!(decide(&Attempt::Handled, 1, &POLICY, "1-0"), Outcome::Ack);
        assert_eq!(decide(&Attempt::Deleted, 3, &POLICY, "1-0"), Outcome::Ack);
    }

    #[test]
    fn reject_is_dead_lettered_at_once() {
        let failure = Failure::Reject("unknown trip".into());
        assert_eq!(
            decide(&Attempt::Failed(&failure), 1, &POLICY, "1-0"),
            Outcome::DeadLetter {
                reason: "rejected: unknown trip".into()
            }
        );
    }

    #[test]
    fn transient_failures_retry_until_attempts_run_out() {
        for failure in [
            Failure::Trap("unreachable".into()),
            Failure::Retry("busy".into()),
            Failure::Timeout(Duration::from_millis(5)),
            Failure::MemoryLimit("cap".into()),
            Failure::OutOfFuel,
            Failure::HostUnavailable("down".into()),
        ] {
            assert!(matches!(
                decide(&Attempt::Failed(&failure), 4, &POLICY, "1-0"),
                Outcome::Retry { .. }
            ));
            assert!(matches!(
                decide(&Attempt::Failed(&failure), 5, &POLICY, "1-0"),
                Outcome::DeadLetter { reason } if reason.starts_with("max_attempts: ")
            ));
        }
    }

    #[test]
    fn malformed_entries_are_dead_lettered_at_once() {
        let attempt = Attempt::Malformed("malformed:missing:data".into());
        assert_eq!(
            decide(&attempt, 1, &POLICY, "1-0"),
            Outcome::DeadLetter {
                reason: "malformed:missing:data".into()
            }
        );
    }

    #[test]
    fn backoff_grows_stays_within_jitter_bounds_and_is_capped() {
        for delivery in 1..=12u32 {
            let full =
                Duration::from_millis(200 * (1u64 << (delivery - 1))).min(POLICY.backoff_max);
            for id in ["1-0", "2-0", "1733325000000-17"] {
                let d = backoff(delivery, &POLICY, id);
                assert!(
                    d >= full / 2 && d <= full,
                    "{delivery}: {d:?} not in [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
        assert!(backoff(12, &POLICY, "1-0") <= POLICY.backoff_max);
    }

    #[test]
    fn jitter_differs_between_entries() {
        let delays: std::collections::HashSet<_> = (0..20)
            .map(|i| backoff(3, &POLICY, &format!("{i}-0")))
            .collect();
        assert!(delays.len() > 1);
    }
}
