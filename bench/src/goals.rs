//! The goals of issue 5, checked against one run, and the comparison with the original Python
//! design (measured separately; the benchmark does not run Python).

use serde::Serialize;

use crate::report::{Report, Row};
use crate::stats::Percentiles;

/// The original Python design, measured separately (issue 5): one process, no-op handler.
#[derive(Debug, Clone, Serialize)]
pub struct PythonComparison {
    /// Watchtower's figure compared: warm `speed-alert`, one host process, events/s.
    pub watchtower_per_sec: f64,
    /// The Python figure it is divided by (the median of its runs).
    pub python_per_sec: f64,
    /// `watchtower_per_sec / python_per_sec`.
    pub times: f64,
}

/// The Python consumer's median rate, events/s (3.9k–5.2k over 8 runs, issue 5).
pub const PYTHON_MEDIAN_PER_SEC: f64 = 4_500.0;

/// One goal of the performance issue and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// What is asked.
    pub goal: String,
    /// What this run measured (in the goal's unit), if it could.
    pub measured: Option<f64>,
    /// The unit of `measured`.
    pub unit: &'static str,
    /// `None` when not measured.
    pub met: Option<bool>,
}

/// Every goal of issue 5, with what `report` measured for it.
pub fn check(report: &Report) -> Vec<Goal> {
    let ratio = |component, isolation| {
        report
            .host_row(component, isolation, 1)
            .and_then(|r| r.ratio_to_ceiling)
            .map(|r| r * 100.0)
    };
    let rate = |component, isolation| {
        report
            .host_row(component, isolation, 1)
            .and_then(Row::median_rate)
    };
    let latency = |pick: fn(&Percentiles) -> f64| {
        report
            .latency_row(10_000)
            .and_then(|r| r.latency.as_ref())
            .map(pick)
    };
    let at_least = |goal: &str, measured: Option<f64>, unit, target: f64| Goal {
        goal: goal.to_owned(),
        measured,
        unit,
        met: measured.map(|m| m >= target),
    };
    let at_most = |goal: &str, measured: Option<f64>, unit, target: f64| Goal {
        goal: goal.to_owned(),
        measured,
        unit,
        met: measured.map(|m| m <= target),
    };
    vec![
        at_least(
            "warm, noop: >= 70% of the ceiling",
            ratio("noop", "warm"),
            "%",
            70.0,
        ),
        at_least(
            "warm, speed-alert: >= 55% of the ceiling",
            ratio("speed-alert", "warm"),
            "%",
            55.0,
        ),
        at_least(
            "fresh instance per event, speed-alert: >= 20,000 events/s",
            rate("speed-alert", "fresh"),
            "events/s",
            20_000.0,
        ),
        at_least(
            ">= 20x the original design",
            report.python.as_ref().map(|p| p.times),
            "x",
            20.0,
        ),
        at_most(
            "latency at 10k events/s: p99 <= 2 ms",
            latency(|p| p.p99_ms),
            "ms",
            2.0,
        ),
        at_most(
            "latency at 10k events/s: p99.9 <= 10 ms",
            latency(|p| p.p999_ms),
            "ms",
            10.0,
        ),
        at_most(
            "idle host with 3 example handlers: RSS <= 60 MB",
            report.idle.as_ref().map(|i| i.rss_mb),
            "MB",
            60.0,
        ),
    ]
}

/// Warm `speed-alert` on one host process against the Python consumer's median.
pub fn python(report: &Report) -> Option<PythonComparison> {
    report
        .host_row("speed-alert", "warm", 1)
        .and_then(Row::median_rate)
        .map(|rate| PythonComparison {
            watchtower_per_sec: rate,
            python_per_sec: PYTHON_MEDIAN_PER_SEC,
            times: rate / PYTHON_MEDIAN_PER_SEC,
        })
}
