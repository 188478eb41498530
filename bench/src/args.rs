//! The command line of `watchtower-bench`, and the budget a run derives from it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Measures Watchtower against a plain Redis Streams consumer on this machine.
#[derive(Debug, Parser)]
#[command(name = "watchtower-bench", version)]
pub struct Args {
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// A short smoke run: one run per scenario, few events, short latency phases.
    #[arg(long)]
    pub quick: bool,

    /// Runs per throughput scenario; the table shows their min / median / max.
    #[arg(long, value_name = "N")]
    pub runs: Option<usize>,

    /// Events per throughput run (fresh-instance scenarios use a quarter of them).
    #[arg(long, value_name = "N")]
    pub events: Option<u64>,

    /// Seconds each offered rate of the latency phase is measured (after one second of
    /// warm-up).
    #[arg(long, value_name = "SECONDS")]
    pub latency_secs: Option<u64>,

    /// Only scenarios whose name contains this text (e.g. `ceiling`, `noop`, `latency`).
    #[arg(long, value_name = "TEXT")]
    pub only: Option<String>,

    /// The `watchtower` binary (default: next to this program, i.e. `target/release`).
    #[arg(long, value_name = "PATH")]
    pub host: Option<PathBuf>,

    /// Directory of the example components (default: the checkout's `guest-examples`).
    #[arg(long, value_name = "DIR")]
    pub components: Option<PathBuf>,

    /// The `redis-server` binary to start.
    #[arg(long, value_name = "PATH", default_value = "redis-server")]
    pub redis_server: PathBuf,
}

/// What one run of the program does, with `--quick` and the defaults resolved.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Runs per throughput scenario.
    pub runs: usize,
    /// Events per throughput run with warm instances and for the ceiling.
    pub events: u64,
    /// Events per throughput run with a fresh instance per event (about 10× slower).
    pub fresh_events: u64,
    /// Offered rates of the latency phase, events per second.
    pub rates: Vec<u64>,
    /// Warm-up before latencies are recorded, per rate.
    pub latency_warmup: Duration,
    /// Measured time per rate.
    pub latency_measure: Duration,
    /// How long an idle host is left alone before its memory is read.
    pub idle_settle: Duration,
    /// Only scenarios whose name contains this.
    pub only: Option<String>,
}

impl Args {
    /// Resolves the budget: `--quick` shrinks the defaults, explicit flags win over both.
    pub fn budget(&self) -> Budget {
        let (runs, events, latency_secs) = if self.quick {
            (1, 20_000, 1)
        } else {
            (3, 200_000, 5)
        };
        let events = self.events.unwrap_or(events).max(1_000);
        Budget {
            runs: self.runs.unwrap_or(runs).max(1),
            events,
            fresh_events: (events / 4).max(1_000),
            rates: vec![1_000, 10_000, 50_000],
            latency_warmup: Duration::from_secs(1),
            latency_measure: Duration::from_secs(self.latency_secs.unwrap_or(latency_secs).max(1)),
            idle_settle: Duration::from_secs(if self.quick { 1 } else { 2 }),
            only: self.only.clone(),
        }
    }
}

impl Budget {
    /// Whether the scenario named `name` is selected by `--only`.
    pub fn selects(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|only| name.contains(only))
    }
}
