//! The host's Prometheus series, served as OpenMetrics text by `GET /metrics`.
//!
//! Two kinds of figures live here. Counters and the handle-time histogram are updated where
//! things happen: the dispatcher times calls and counts traps, the consumer counts outcomes
//! once its commit says what became of each entry, the reloader counts swaps and refusals.
//! Stream figures (length, pending, lag, idle time of the oldest pending entry, dead letters)
//! are read from Redis by one background task every `[admin] metrics_interval_ms`
//! ([`poll_redis`]), never per scrape, so any number of scrapers cost Redis nothing.
//!
//! The series names are a public interface (dashboards and alerts use them); the README's
//! Operations section lists them.
//!
//! Hot path: a dispatcher looks its series up once ([`Metrics::dispatch`]) and keeps the
//! handles, so handling an event touches atomics only, never a label map or an allocation.
//!
//! - `calls`: the handles a dispatcher keeps ([`DispatchMetrics`]) and the tally of a batch's
//!   outcomes ([`Tally`]).
//! - `streams`: the poller of stream figures ([`poll_redis`]).

mod calls;
mod streams;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::registry::HandlerEntry;

pub use calls::{DispatchMetrics, Tally};
pub use streams::poll_redis;

/// Upper bounds of the handle-time buckets, in seconds: 50 µs (a warm call of a small
/// handler) up to 10 s (far past any sensible `timeout_ms`).
const DURATION_BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HandledLabels {
    handler: Arc<str>,
    event_type: Arc<str>,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HandlerLabels {
    handler: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TrapLabels {
    handler: Arc<str>,
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReloadLabels {
    handler: Arc<str>,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StreamLabels {
    stream: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GroupLabels {
    stream: String,
    group: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VersionLabels {
    handler: String,
    version: String,
}

/// How a reload ended, as the `result` label of `watchtower_reloads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    /// A new version was swapped in.
    Swapped,
    /// The new version was refused; the old one keeps serving.
    Refused,
    /// A new version failed too often on probation and the previous one is back.
    RolledBack,
}

impl ReloadResult {
    const ALL: [ReloadResult; 3] = [
        ReloadResult::Swapped,
        ReloadResult::Refused,
        ReloadResult::RolledBack,
    ];

    fn label(self) -> &'static str {
        match self {
            ReloadResult::Swapped => "swapped",
            ReloadResult::Refused => "refused",
            ReloadResult::RolledBack => "rolled_back",
        }
    }
}

/// Every series of one host. Shared as `Arc<Metrics>` by the supervisor, the dispatchers,
/// the reloader, the Redis poller and the admin listener.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    handled: Family<HandledLabels, Counter>,
    duration: Family<HandlerLabels, Histogram, fn() -> Histogram>,
    traps: Family<TrapLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
    redis_reconnects: Counter,
    stream_length: Family<StreamLabels, Gauge>,
    group_pending: Family<GroupLabels, Gauge>,
    group_lag: Family<GroupLabels, Gauge>,
    group_oldest_idle: Family<GroupLabels, Gauge<f64, AtomicU64>>,
    dead_letters: Family<HandlerLabels, Gauge>,
    handler_info: Family<VersionLabels, Gauge>,
    /// Held while gauge families are cleared and refilled, and while encoding, so that a
    /// scrape never sees a family half refilled.
    refill: Mutex<()>,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every series registered, none with a value yet.
    pub fn new() -> Self {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("watchtower"),
            handled: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            traps: Family::default(),
            reloads: Family::default(),
            redis_reconnects: Counter::default(),
            stream_length: Family::default(),
            group_pending: Family::default(),
            group_lag: Family::default(),
            group_oldest_idle: Family::default(),
            dead_letters: Family::default(),
            handler_info: Family::default(),
            refill: Mutex::new(()),
        };
        // The registry encodes through clones: every family shares its state with the field.
        let r = &mut metrics.registry;
        r.register(
            "events_handled",
            "Entries handled, by handler, event type and outcome (ok, retry, dead_letter), \
             counted when the outcome is committed",
            metrics.handled.clone(),
        );
        r.register_with_unit(
            "handle_duration",
            "Time of one handler call, instantiation included when no warm instance was ready",
            Unit::Seconds,
            metrics.duration.clone(),
        );
        r.register(
            "traps",
            "Failed calls by handler and kind (trap, timeout, memory_limit, out_of_fuel, \
             instantiate, unavailable)",
            metrics.traps.clone(),
        );
        r.register(
            "reloads",
            "Hot swaps by handler and result (swapped, refused, rolled_back)",
            metrics.reloads.clone(),
        );
        r.register(
            "redis_reconnects",
            "Consumers restarted after a Redis failure, and outages waited out while connecting",
            metrics.redis_reconnects.clone(),
        );
        r.register(
            "stream_length",
            "Entries in each stream this host consumes (XLEN)",
            metrics.stream_length.clone(),
        );
        r.register(
            "group_pending",
            "Entries delivered to the group but not yet acknowledged",
            metrics.group_pending.clone(),
        );
        r.register(
            "group_lag",
            "Entries not yet delivered to the group (absent when Redis cannot tell)",
            metrics.group_lag.clone(),
        );
        r.register(
            "group_oldest_pending_idle_seconds",
            "Time since the group's oldest pending entry was last delivered",
            metrics.group_oldest_idle.clone(),
        );
        r.register(
            "dead_letters",
            "Entries in each handler's dead-letter stream",
            metrics.dead_letters.clone(),
        );
        r.register(
            "handler_info",
            "1 for the component version serving each handler",
            metrics.handler_info.clone(),
        );
        metrics
    }

    /// Counts a reload of `handler` that ended with `result`.
    pub fn reload(&self, handler: &str, result: ReloadResult) {
        self.reloads
            .get_or_create(&ReloadLabels {
                handler: handler.into(),
                result: result.label(),
            })
            .inc();
    }

    /// Counts a connection to Redis given up and made again.
    pub fn redis_reconnected(&self) {
        self.redis_reconnects.inc();
    }

    /// The OpenMetrics text of every series, with `watchtower_handler_info` set from the
    /// live versions of `handlers` (read now, so a swap shows in the next scrape).
    pub fn encode(&self, handlers: &[Arc<HandlerEntry>]) -> Result<String, std::fmt::Error> {
        let _refill = lock(&self.refill);
        self.handler_info.clear();
        for handler in handlers {
            let labels = VersionLabels {
                handler: handler.name().to_owned(),
                version: handler.current().version().to_owned(),
            };
            self.handler_info.get_or_create(&labels).set(1);
        }
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
