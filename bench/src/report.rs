//! The results: one [`Row`] per scenario and the [`Report`] around them, with the ratios to
//! the ceiling, written as JSON ([`crate::render`] makes the text, [`crate::goals`] the
//! verdicts).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::fill::Filled;
use crate::goals::{self, Goal, PythonComparison};
use crate::idle::Idle;
use crate::machine::Machine;
use crate::redis_stats::CommandCost;
use crate::stats::{Percentiles, Spread};
use crate::swap::SwapPause;

/// What one run of one scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Events the figures are about.
    pub events: u64,
    /// Wall-clock seconds they took.
    pub seconds: f64,
    /// `events / seconds`.
    pub events_per_sec: f64,
    /// CPU time of the consumer (the host processes, or this program for the ceiling) per
    /// event, µs.
    pub cpu_us_per_event: Option<f64>,
    /// CPU time of `redis-server` per event, µs.
    pub redis_cpu_us_per_event: Option<f64>,
    /// Highest peak resident set of a host process, MB (MiB).
    pub peak_rss_mb: Option<f64>,
    /// Redis commands per event, over the same window (see `redis_stats`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub redis_commands: BTreeMap<String, CommandCost>,
    /// Anything unusual about the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What a row is about.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    /// The minimal consumer.
    Ceiling {
        /// Consumers in the group.
        consumers: usize,
    },
    /// `watchtower run` draining a pre-filled stream.
    Host {
        /// Component name (`noop`, `speed-alert`).
        component: String,
        /// `warm`, `fresh` or `default` (no `isolation` key).
        isolation: String,
        /// Host processes in the group.
        processes: usize,
        /// `concurrency` of the handler.
        concurrency: u32,
    },
    /// Publish → handled latency at an offered rate.
    Latency {
        /// Events per second offered by the paced producer.
        offered_per_sec: u64,
    },
    /// Publish → read latency at an offered rate, no host: what every latency row includes.
    LatencyFloor {
        /// Events per second offered by the paced producer.
        offered_per_sec: u64,
    },
}

impl Kind {
    /// Consumers (tasks or processes) sharing the group, which picks the ceiling row a ratio
    /// is taken against.
    fn parallelism(&self) -> Option<usize> {
        match self {
            Kind::Ceiling { consumers } => Some(*consumers),
            Kind::Host { processes, .. } => Some(*processes),
            Kind::Latency { .. } | Kind::LatencyFloor { .. } => None,
        }
    }
}

/// How a scenario ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum Status {
    /// Every run produced a sample.
    Measured,
    /// The host does not support the scenario yet (e.g. no `isolation` key).
    Unsupported(String),
    /// A run failed; the reason is the error.
    Failed(String),
}

/// One scenario: its runs and their summary.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Short name, as in the table.
    pub scenario: String,
    /// What it measures.
    #[serde(flatten)]
    pub kind: Kind,
    /// How it ended.
    #[serde(flatten)]
    pub status: Status,
    /// Every run.
    pub samples: Vec<Sample>,
    /// Events per second over the runs.
    pub events_per_sec: Option<Spread>,
    /// Median events/s divided by the median of the ceiling with as many consumers.
    pub ratio_to_ceiling: Option<f64>,
    /// The same ratio from CPU time instead of wall-clock time: (consumer + Redis CPU per
    /// event of the ceiling) / (the same of this row). What the ratio would be if both were
    /// limited by the same cores and nothing else ran; far less sensitive to other work on
    /// the machine than `ratio_to_ceiling`.
    pub cpu_ratio_to_ceiling: Option<f64>,
    /// Latency percentiles (latency rows only).
    pub latency: Option<Percentiles>,
    /// Median consumer CPU µs per event.
    pub cpu_us_per_event: Option<f64>,
    /// Median `redis-server` CPU µs per event.
    pub redis_cpu_us_per_event: Option<f64>,
    /// Highest peak RSS of any run, MB.
    pub peak_rss_mb: Option<f64>,
}

impl Row {
    /// A row summarizing `samples`.
    pub fn new(scenario: String, kind: Kind, status: Status, samples: Vec<Sample>) -> Row {
        let median = |f: fn(&Sample) -> Option<f64>| {
            let values: Vec<f64> = samples.iter().filter_map(f).collect();
            Spread::of(values).map(|s| s.median)
        };
        Row {
            events_per_sec: Spread::of(samples.iter().map(|s| s.events_per_sec)),
            cpu_us_per_event: median(|s| s.cpu_us_per_event),
            redis_cpu_us_per_event: median(|s| s.redis_cpu_us_per_event),
            peak_rss_mb: samples
                .iter()
                .filter_map(|s| s.peak_rss_mb)
                .reduce(f64::max),
            scenario,
            kind,
            status,
            samples,
            ratio_to_ceiling: None,
            cpu_ratio_to_ceiling: None,
            latency: None,
        }
    }

    /// Median events/s over the runs.
    pub fn median_rate(&self) -> Option<f64> {
        self.events_per_sec.map(|s| s.median)
    }

    /// Consumer + Redis CPU µs per event (medians).
    fn total_cpu(&self) -> Option<f64> {
        Some(self.cpu_us_per_event? + self.redis_cpu_us_per_event?)
    }
}

/// Everything one run of the program found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// The settings of the run.
    pub settings: serde_json::Value,
    /// The pre-filled stream of the warm-instance and ceiling runs.
    pub fill: Option<Filled>,
    /// The scenarios, in the order they ran.
    pub rows: Vec<Row>,
    /// The idle host.
    pub idle: Option<Idle>,
    /// The swap pause (issue 4); `None` until the host can swap.
    pub swap: Option<SwapPause>,
    /// Against the original design.
    pub python: Option<PythonComparison>,
    /// The goals of issue 5.
    pub goals: Vec<Goal>,
    /// Wall-clock seconds of the whole run.
    pub total_secs: f64,
}

impl Report {
    /// Fills in the ratios to the ceiling, the Python comparison and the goals.
    pub fn conclude(&mut self) {
        let ceilings: Vec<(usize, Option<f64>, Option<f64>)> = self
            .rows
            .iter()
            .filter(|r| matches!(r.kind, Kind::Ceiling { .. }))
            .filter_map(|r| Some((r.kind.parallelism()?, r.median_rate(), r.total_cpu())))
            .collect();
        for row in &mut self.rows {
            let Some(&(_, rate, cpu)) = row
                .kind
                .parallelism()
                .and_then(|n| ceilings.iter().find(|(c, _, _)| *c == n))
            else {
                continue;
            };
            row.ratio_to_ceiling = rate.zip(row.median_rate()).map(|(c, r)| r / c);
            row.cpu_ratio_to_ceiling = cpu.zip(row.total_cpu()).map(|(c, r)| c / r);
        }
        self.python = goals::python(self);
        self.goals = goals::check(self);
    }

    /// The row of `component` with `isolation` on `processes` processes, concurrency 1.
    pub fn host_row(&self, component: &str, isolation: &str, processes: usize) -> Option<&Row> {
        self.rows.iter().find(|row| {
            matches!(&row.kind, Kind::Host { component: c, isolation: i, processes: p, concurrency: 1 }
                if c == component && i == isolation && *p == processes)
        })
    }

    /// The latency row of the `offered` rate.
    pub fn latency_row(&self, offered: u64) -> Option<&Row> {
        self.rows.iter().find(
            |row| matches!(row.kind, Kind::Latency { offered_per_sec } if offered_per_sec == offered),
        )
    }

    /// Writes the report as pretty JSON.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rate: f64) -> Sample {
        Sample {
            events: 1000,
            seconds: 1000.0 / rate,
            events_per_sec: rate,
            cpu_us_per_event: Some(5.0),
            redis_cpu_us_per_event: Some(1.0),
            peak_rss_mb: Some(30.0),
            redis_commands: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    fn host(component: &str, isolation: &str, processes: usize, rates: &[f64]) -> Row {
        Row::new(
            format!("{component} {isolation} x{processes}"),
            Kind::Host {
                component: component.to_owned(),
                isolation: isolation.to_owned(),
                processes,
                concurrency: 1,
            },
            Status::Measured,
            rates.iter().map(|r| sample(*r)).collect(),
        )
    }

    #[test]
    fn ratios_are_taken_against_the_ceiling_with_as_many_consumers() {
        let ceiling = |consumers, rate| {
            Row::new(
                format!("ceiling x{consumers}"),
                Kind::Ceiling { consumers },
                Status::Measured,
                vec![sample(rate)],
            )
        };
        let mut report = Report {
            machine: Machine::default(),
            settings: serde_json::Value::Null,
            fill: None,
            rows: vec![
                ceiling(1, 200_000.0),
                ceiling(2, 250_000.0),
                host("speed-alert", "warm", 1, &[90_000.0, 120_000.0, 100_000.0]),
                host("speed-alert", "warm", 2, &[125_000.0]),
            ],
            idle: None,
            swap: None,
            python: None,
            goals: Vec::new(),
            total_secs: 0.0,
        };
        report.conclude();
        assert_eq!(report.rows[2].ratio_to_ceiling, Some(0.5));
        assert_eq!(report.rows[3].ratio_to_ceiling, Some(0.5));
        assert_eq!(report.rows[3].cpu_ratio_to_ceiling, Some(1.0));
        let python = report.python.as_ref().unwrap();
        assert!((python.times - 100_000.0 / 4_500.0).abs() < 1e-9);
        let warm_speed = &report.goals[1];
        assert_eq!(warm_speed.met, Some(false));
        assert_eq!(report.goals[0].met, None, "no noop row, no verdict");
        let text = crate::render::text(&report);
        assert!(text.contains("100,000"), "{text}");
        assert!(text.contains("50%"), "{text}");
    }
}
