//! What one run measures, as a list of scenarios: the ceiling, the host grid (component ×
//! isolation × processes), keyed concurrency, and latency per offered rate.

use crate::args::Budget;
use crate::host_process::Isolation;
use crate::report::Kind;

/// One line of the table, before it runs.
#[derive(Debug, Clone)]
pub enum Scenario {
    /// The minimal consumer with this many consumers in the group.
    Ceiling {
        /// Tasks, each with its own connection.
        consumers: usize,
    },
    /// Host processes draining the pre-filled stream.
    Host {
        /// `noop` or `speed-alert`.
        component: &'static str,
        /// Instance reuse.
        isolation: Isolation,
        /// Processes in the group.
        processes: usize,
        /// `concurrency = 2` with `ordering_key = "truck_id"` instead of 1.
        keyed: bool,
    },
    /// The same measurement without a host: the reader reads the positions themselves, so
    /// the latency is the producer → Redis → reader path every host row also pays.
    LatencyFloor {
        /// Offered events per second.
        rate: u64,
    },
    /// Publish → handled latency with one host running `speed-alert`.
    Latency {
        /// Offered events per second.
        rate: u64,
        /// Instance reuse.
        isolation: Isolation,
    },
}

impl Scenario {
    /// The name in the table (and what `--only` matches).
    pub fn name(&self) -> String {
        let procs = |n: usize| if n == 1 { "1 proc" } else { "2 procs" };
        match self {
            Scenario::Ceiling { consumers: 1 } => "ceiling, 1 consumer".to_owned(),
            Scenario::Ceiling { consumers } => format!("ceiling, {consumers} consumers"),
            Scenario::Host {
                component,
                isolation,
                processes,
                keyed,
            } => {
                let keyed = if *keyed { ", conc 2 by truck_id" } else { "" };
                format!(
                    "{component} {} {}{keyed}",
                    isolation.label(),
                    procs(*processes)
                )
            }
            Scenario::LatencyFloor { rate } => {
                format!("latency floor @ {}k/s, no host", rate / 1000)
            }
            Scenario::Latency { rate, isolation } => {
                format!(
                    "latency @ {}k/s, speed-alert {}",
                    rate / 1000,
                    isolation.label()
                )
            }
        }
    }

    /// Runs of this scenario in this budget.
    pub fn runs(&self, budget: &Budget) -> usize {
        match self {
            Scenario::Latency { .. } | Scenario::LatencyFloor { .. } => 1,
            _ => budget.runs,
        }
    }

    /// What the row of this scenario is about.
    pub fn kind(&self) -> Kind {
        match self {
            Scenario::Ceiling { consumers } => Kind::Ceiling {
                consumers: *consumers,
            },
            Scenario::Host {
                component,
                isolation,
                processes,
                keyed,
            } => Kind::Host {
                component: (*component).to_owned(),
                isolation: isolation.label().to_owned(),
                processes: *processes,
                concurrency: if *keyed { 2 } else { 1 },
            },
            Scenario::Latency { rate, .. } => Kind::Latency {
                offered_per_sec: *rate,
            },
            Scenario::LatencyFloor { rate } => Kind::LatencyFloor {
                offered_per_sec: *rate,
            },
        }
    }
}

/// The scenarios of this run. `warm` is the isolation used where the scenario is not about
/// isolation: `reuse` when the host knows the key, otherwise the host's default.
pub fn plan(budget: &Budget, warm: Isolation, isolation_known: bool) -> Vec<Scenario> {
    let mut scenarios = vec![
        Scenario::Ceiling { consumers: 1 },
        Scenario::Ceiling { consumers: 2 },
    ];
    for isolation in [Isolation::Reuse, Isolation::PerEvent] {
        for component in ["noop", "speed-alert"] {
            for processes in [1, 2] {
                scenarios.push(Scenario::Host {
                    component,
                    isolation,
                    processes,
                    keyed: false,
                });
            }
        }
    }
    if !isolation_known {
        // Something to compare against while the isolation rows are unsupported.
        scenarios.push(Scenario::Host {
            component: "speed-alert",
            isolation: Isolation::HostDefault,
            processes: 1,
            keyed: false,
        });
    }
    scenarios.push(Scenario::Host {
        component: "speed-alert",
        isolation: warm,
        processes: 1,
        keyed: true,
    });
    // The floor at the rate of the latency goal (the middle rate of a quick run too).
    if let Some(&rate) = budget.rates.get(1).or(budget.rates.first()) {
        scenarios.push(Scenario::LatencyFloor { rate });
    }
    for &rate in &budget.rates {
        scenarios.push(Scenario::Latency {
            rate,
            isolation: warm,
        });
    }
    scenarios.retain(|s| budget.selects(&s.name()));
    scenarios
}
