//! What a replay reports: counts, failures by kind (named as the live path names them, see
//! [`crate::dispatch::decide`]) and the first failed entries.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::dispatch::{Attempt, Outcome, RetryPolicy, decide};
use crate::wasm::Failure;

/// Failed entries listed in a summary (all are counted).
const SAMPLES: usize = 10;

/// What a replay did.
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    /// The handler whose settings were used.
    pub handler: String,
    /// The component version that ran (first 12 hex digits of its sha256).
    pub version: String,
    /// The stream replayed.
    pub stream: String,
    /// First bound of the window, as given to `XRANGE`.
    pub from: String,
    /// Last bound of the window, as given to `XRANGE` (pinned to an id when open).
    pub to: String,
    /// True unless effects were committed.
    pub dry_run: bool,
    /// Entries in the window.
    pub entries: u64,
    /// Calls that returned `ok`.
    pub handled: u64,
    /// Entries that failed: malformed, or a call that did not return `ok`.
    pub failed: u64,
    /// Failed entries by kind: `malformed`, `rejected`, `retry`, `trap`, `timeout`,
    /// `memory_limit`, `out_of_fuel`, `unavailable`, `instantiate`.
    pub failed_by_reason: BTreeMap<String, u64>,
    /// The first failed entries, with their reasons as a dead letter would give them.
    pub failures: Vec<FailedEntry>,
    /// Events the successful calls published.
    pub published: u64,
    /// Kv writes (sets and deletes) of the successful calls.
    pub kv_writes: u64,
    /// Entries whose effects were applied (with commit).
    pub committed: u64,
    /// Entries skipped because an earlier replay had committed them already (with commit).
    pub skipped: u64,
    /// Wall-clock time of the replay.
    pub elapsed_ms: u64,
}

/// One entry that failed.
#[derive(Debug, Clone, Serialize)]
pub struct FailedEntry {
    /// Its id in the stream.
    pub entry_id: String,
    /// The kind, as counted in [`ReplaySummary::failed_by_reason`].
    pub kind: &'static str,
    /// The whole reason.
    pub reason: String,
}

impl ReplaySummary {
    /// A summary of nothing done yet.
    pub(super) fn new(
        handler: &str,
        version: &str,
        stream: &str,
        from: &str,
        to: &str,
        dry_run: bool,
    ) -> Self {
        ReplaySummary {
            handler: handler.to_owned(),
            version: version.to_owned(),
            stream: stream.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            dry_run,
            entries: 0,
            handled: 0,
            failed: 0,
            failed_by_reason: BTreeMap::new(),
            failures: Vec::new(),
            published: 0,
            kv_writes: 0,
            committed: 0,
            skipped: 0,
            elapsed_ms: 0,
        }
    }

    /// Counts one failed entry.
    pub(super) fn record_failure(&mut self, failed: FailedEntry) {
        self.failed += 1;
        *self
            .failed_by_reason
            .entry(failed.kind.to_owned())
            .or_default() += 1;
        if self.failures.len() < SAMPLES {
            self.failures.push(failed);
        }
    }
}

/// The kind a failure is counted under.
pub fn failure_kind(failure: &Failure) -> &'static str {
    match failure {
        Failure::Retry(_) => "retry",
        Failure::Reject(_) => "rejected",
        Failure::Timeout(_) => "timeout",
        Failure::MemoryLimit(_) => "memory_limit",
        Failure::Trap(_) => "trap",
        Failure::HostUnavailable(_) => "unavailable",
        Failure::OutOfFuel => "out_of_fuel",
        Failure::Instantiate(_) => "instantiate",
    }
}

/// The reason the live path would give for `failure` (see [`decide`]); a replay makes one
/// attempt, so it never turns into `max_attempts`.
pub(super) fn reason_of(failure: &Failure) -> String {
    let one_attempt_of_many = RetryPolicy {
        max_attempts: u32::MAX,
        backoff: std::time::Duration::ZERO,
        backoff_max: std::time::Duration::ZERO,
    };
    match decide(&Attempt::Failed(failure), 1, &one_attempt_of_many, "") {
        Outcome::Retry { reason, .. } | Outcome::DeadLetter { reason } => reason,
        Outcome::Ack => String::new(),
    }
}

pub(super) fn failed_entry(entry_id: &str, failure: &Failure) -> FailedEntry {
    FailedEntry {
        entry_id: entry_id.to_owned(),
        kind: failure_kind(failure),
        reason: reason_of(failure),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn failures_keep_the_reasons_of_the_live_path() {
        let cases = [
            (
                Failure::Reject("unknown trip".into()),
                "rejected",
                "rejected: unknown trip",
            ),
            (Failure::Retry("busy".into()), "retry", "retry: busy"),
            (
                Failure::Trap("panicked at x".into()),
                "trap",
                "trap: panicked at x",
            ),
            (
                Failure::Timeout(Duration::from_millis(5)),
                "timeout",
                "timeout after 5 ms",
            ),
            (Failure::OutOfFuel, "out_of_fuel", "out_of_fuel"),
        ];
        for (failure, kind, reason) in cases {
            let failed = failed_entry("1-0", &failure);
            assert_eq!((failed.kind, failed.reason.as_str()), (kind, reason));
        }
    }

    #[test]
    fn a_summary_counts_every_failure_and_lists_the_first_few() {
        let mut summary = ReplaySummary::new("h", "v", "s", "-", "+", true);
        for n in 0..15 {
            let failure = if n % 3 == 0 {
                Failure::Reject("no".into())
            } else {
                Failure::Trap("boom".into())
            };
            summary.record_failure(failed_entry(&format!("{n}-0"), &failure));
        }
        assert_eq!(summary.failed, 15);
        assert_eq!(summary.failed_by_reason.get("rejected"), Some(&5));
        assert_eq!(summary.failed_by_reason.get("trap"), Some(&10));
        assert_eq!(summary.failures.len(), SAMPLES);
    }
}
