//! What a dispatcher keeps of the host's series: its handler's counters and histogram,
//! looked up once, and the tally of a batch's outcomes that the consumer fills as it learns
//! what became of each entry.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use super::{HandledLabels, HandlerLabels, Metrics, ReloadLabels, ReloadResult, TrapLabels};
use crate::dispatch::Outcome;
use crate::redis::StreamEntry;
use crate::wasm::Failure;

/// The `outcome` label values, in the order of [`OutcomeCounters`].
const OUTCOMES: [&str; 3] = ["ok", "retry", "dead_letter"];

/// The `kind` label values of `watchtower_traps_total`, indexed by [`trap_index`].
const TRAP_KINDS: [&str; 6] = [
    "trap",
    "timeout",
    "memory_limit",
    "out_of_fuel",
    "instantiate",
    "unavailable",
];

/// The `event_type` label of an entry whose type is not one of the handler's (a malformed
/// re-driven entry): label values never come from unchecked input.
const UNKNOWN_TYPE: &str = "unknown";

/// Where a failed call's kind sits in [`TRAP_KINDS`]; `None` for the handler's own `retry`
/// and `reject`, which are answers, not traps.
fn trap_index(failure: &Failure) -> Option<usize> {
    match failure {
        Failure::Retry(_) | Failure::Reject(_) => None,
        Failure::Trap(_) => Some(0),
        Failure::Timeout(_) => Some(1),
        Failure::MemoryLimit(_) => Some(2),
        Failure::OutOfFuel => Some(3),
        Failure::Instantiate(_) => Some(4),
        Failure::HostUnavailable(_) => Some(5),
    }
}

impl Metrics {
    /// The series of one dispatcher: `handler` calls on a stream whose entries are of
    /// `event_types` (one type for an event stream, all of the handler's for its re-drive
    /// stream). Every outcome, trap kind and reload result of the handler starts at 0, so
    /// `rate()` and `increase()` see the first one.
    pub fn dispatch(self: &Arc<Self>, handler: &str, event_types: &[String]) -> DispatchMetrics {
        let handler: Arc<str> = handler.into();
        let outcomes = event_types
            .iter()
            .map(String::as_str)
            .chain((event_types.len() > 1).then_some(UNKNOWN_TYPE))
            .map(|event_type| {
                let event_type: Arc<str> = event_type.into();
                let counters = OUTCOMES.map(|outcome| {
                    self.handled.get_or_create_owned(&HandledLabels {
                        handler: handler.clone(),
                        event_type: event_type.clone(),
                        outcome,
                    })
                });
                (event_type, counters)
            })
            .collect();
        let duration = self.duration.get_or_create_owned(&HandlerLabels {
            handler: handler.clone(),
        });
        let traps = TRAP_KINDS.map(|kind| {
            self.traps.get_or_create_owned(&TrapLabels {
                handler: handler.clone(),
                kind,
            })
        });
        for result in ReloadResult::ALL {
            // Created at 0; counted by `reload`.
            drop(self.reloads.get_or_create(&ReloadLabels {
                handler: handler.clone(),
                result: result.label(),
            }));
        }
        DispatchMetrics(Arc::new(DispatchHandles {
            metrics: self.clone(),
            handler,
            duration,
            traps,
            outcomes,
        }))
    }
}

/// One dispatcher's series, looked up once. Cloning shares them.
#[derive(Debug, Clone)]
pub struct DispatchMetrics(Arc<DispatchHandles>);

/// Counters of `ok`, `retry`, `dead_letter`, in that order.
type OutcomeCounters = [Counter; 3];

#[derive(Debug)]
struct DispatchHandles {
    metrics: Arc<Metrics>,
    handler: Arc<str>,
    duration: Histogram,
    /// By kind, in the order of [`TRAP_KINDS`].
    traps: [Counter; 6],
    /// By event type; with several types the last is [`UNKNOWN_TYPE`].
    outcomes: Vec<(Arc<str>, OutcomeCounters)>,
}

impl DispatchMetrics {
    /// The host's series.
    pub fn host(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Records one call: how long it took and, if it failed, what kind of trap it was.
    pub fn called(&self, took: Duration, failure: Option<&Failure>) {
        self.0.duration.observe(took.as_secs_f64());
        if let Some(index) = failure.and_then(trap_index) {
            self.0.traps[index].inc();
        }
    }

    /// Counts a rollback of this dispatcher's handler.
    pub fn rolled_back(&self) {
        self.0
            .metrics
            .reload(&self.0.handler, ReloadResult::RolledBack);
    }

    /// Where `outcome` of `entry` is counted: (event type, outcome) positions.
    fn position(&self, entry: &StreamEntry, outcome: &Outcome) -> (usize, usize) {
        let kind = match outcome {
            Outcome::Ack => 0,
            Outcome::Retry { .. } => 1,
            Outcome::DeadLetter { .. } => 2,
        };
        let outcomes = &self.0.outcomes;
        if outcomes.len() == 1 {
            return (0, kind);
        }
        let claimed = entry
            .fields
            .iter()
            .flatten()
            .find(|(name, _)| name == "event_type")
            .map(|(_, value)| value.as_slice());
        let index = outcomes
            .iter()
            .position(|(event_type, _)| claimed == Some(event_type.as_bytes()))
            .unwrap_or(outcomes.len() - 1);
        (index, kind)
    }
}

/// The outcomes of one batch, counted as the consumer learns them: a retry at once, an ack
/// or a dead letter only once its commit has applied it (an entry another consumer had
/// already acknowledged is that consumer's to count).
#[derive(Debug)]
pub struct Tally {
    metrics: Option<DispatchMetrics>,
    awaiting_commit: Vec<(usize, usize)>,
}

impl Tally {
    /// A tally into `metrics`; without metrics it counts nothing.
    pub fn new(metrics: Option<&DispatchMetrics>) -> Self {
        Tally {
            metrics: metrics.cloned(),
            awaiting_commit: Vec::new(),
        }
    }

    /// Notes the outcome of `entry`. Acks and dead letters must be added in the order of
    /// the commit's items.
    pub fn add(&mut self, entry: &StreamEntry, outcome: &Outcome) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        let position = metrics.position(entry, outcome);
        match outcome {
            Outcome::Retry { .. } => count(metrics, position),
            Outcome::Ack | Outcome::DeadLetter { .. } => self.awaiting_commit.push(position),
        }
    }

    /// Counts the acks and dead letters whose commit applied them (`applied` in the order
    /// they were added).
    pub fn committed(self, applied: &[bool]) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        for (position, applied) in self.awaiting_commit.into_iter().zip(applied) {
            if *applied {
                count(metrics, position);
            }
        }
    }
}

fn count(metrics: &DispatchMetrics, (event_type, outcome): (usize, usize)) {
    if let Some((_, counters)) = metrics.0.outcomes.get(event_type) {
        counters[outcome].inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(event_type: &str) -> StreamEntry {
        StreamEntry {
            id: "1-0".into(),
            fields: Some(vec![("event_type".into(), event_type.as_bytes().to_vec())]),
            delivery_count: 1,
        }
    }

    fn retry() -> Outcome {
        Outcome::Retry {
            after: Duration::from_millis(1),
            reason: "busy".into(),
        }
    }

    fn text(metrics: &Metrics) -> String {
        metrics.encode(&[]).unwrap()
    }

    #[test]
    fn outcomes_count_retries_at_once_and_the_rest_when_applied() {
        let metrics = Arc::new(Metrics::new());
        let dispatch = metrics.dispatch("h", &["a.b".to_owned()]);
        let mut tally = Tally::new(Some(&dispatch));
        tally.add(&entry("a.b"), &Outcome::Ack);
        tally.add(&entry("a.b"), &retry());
        tally.add(&entry("a.b"), &Outcome::Ack);
        tally.add(
            &entry("a.b"),
            &Outcome::DeadLetter {
                reason: "rejected: no".into(),
            },
        );
        tally.committed(&[true, false, true]);
        let text = text(&metrics);
        for line in [
            r#"watchtower_events_handled_total{handler="h",event_type="a.b",outcome="ok"} 1"#,
            r#"watchtower_events_handled_total{handler="h",event_type="a.b",outcome="retry"} 1"#,
            r#"watchtower_events_handled_total{handler="h",event_type="a.b",outcome="dead_letter"} 1"#,
        ] {
            assert!(text.contains(line), "no `{line}` in\n{text}");
        }
    }

    #[test]
    fn redrive_entries_of_unknown_types_are_labelled_unknown() {
        let metrics = Arc::new(Metrics::new());
        let dispatch = metrics.dispatch("h", &["a.b".to_owned(), "c.d".to_owned()]);
        let mut tally = Tally::new(Some(&dispatch));
        tally.add(&entry("c.d"), &retry());
        tally.add(&entry("x.y"), &retry());
        let text = text(&metrics);
        assert!(
            text.contains(r#"event_type="c.d",outcome="retry"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"event_type="unknown",outcome="retry"} 1"#),
            "{text}"
        );
        assert!(!text.contains("x.y"), "{text}");
    }

    #[test]
    fn traps_are_counted_by_kind_and_answers_are_not() {
        let metrics = Arc::new(Metrics::new());
        let dispatch = metrics.dispatch("h", &["a.b".to_owned()]);
        dispatch.called(Duration::from_micros(70), None);
        dispatch.called(
            Duration::from_millis(5),
            Some(&Failure::Timeout(Duration::from_millis(5))),
        );
        dispatch.called(
            Duration::from_millis(1),
            Some(&Failure::Reject("no".into())),
        );
        let text = text(&metrics);
        assert!(
            text.contains(r#"watchtower_traps_total{handler="h",kind="timeout"} 1"#),
            "{text}"
        );
        assert!(!text.contains(r#"kind="reject""#), "{text}");
        // Every kind and reload result exists from the start.
        assert!(
            text.contains(r#"watchtower_traps_total{handler="h",kind="trap"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"watchtower_reloads_total{handler="h",result="rolled_back"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"watchtower_handle_duration_seconds_count{handler="h"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"watchtower_handle_duration_seconds_bucket{le="0.0001",handler="h"} 1"#
            ),
            "{text}"
        );
    }
}
