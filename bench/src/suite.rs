//! One benchmark run from start to end: what is measured, in which order, with how many
//! events, and how the results come together into the report.
//!
//! Order: start Redis; find out whether the host knows the `isolation` key; then rounds, each
//! running every throughput scenario once (the ceiling, the host grid, keyed concurrency);
//! latency per offered rate; the idle host; the hot-swap pause. Streams are filled once per
//! size and shared by every run of that size, each run in a fresh consumer group.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, ensure};
use watchtower_events::{POSITION_UPDATED, naming};

use crate::args::{Args, Budget};
use crate::ceiling;
use crate::fill::{self, Filled, Fleet};
use crate::host_process::{HandlerSpec, Isolation};
use crate::host_run::{self, HostEnv, Unsupported};
use crate::idle::{self, Idle};
use crate::latency::{self, Phase};
use crate::machine::Machine;
use crate::progress::Progress;
use crate::redis_server::RedisServer;
use crate::render::{count, describe};
use crate::report::{Report, Row, Sample, Status};
use crate::scenario::{Scenario, plan};
use crate::stats::Percentiles;
use crate::swap::{self, SwapPause};

/// Shared state of the run.
struct Bench<'a> {
    budget: Budget,
    env: HostEnv<'a>,
    components: PathBuf,
    progress: Progress,
    /// Namespace of the filled stream of each size.
    streams: HashMap<u64, String>,
    fills: Vec<Filled>,
    groups: usize,
}

/// Runs everything `args` asks for, prints the table and writes the JSON.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let budget = args.budget();
    let binary = host_binary(&args)?;
    let components = components_dir(&args)?;
    let machine = Machine::read(&args.redis_server);
    eprintln!("{}", machine.summary());

    let redis = RedisServer::start(&args.redis_server).await?;
    let work = tempfile::Builder::new()
        .prefix("watchtower-bench")
        .tempdir()?;
    let env = HostEnv {
        redis: &redis,
        binary: binary.clone(),
        dir: work.path().to_owned(),
    };
    let unsupported = host_run::probe_isolation(&env, &components).await?;
    let warm = match &unsupported {
        None => Isolation::Reuse,
        Some(reason) => {
            eprintln!(
                "note: this host does not know `isolation` yet ({reason}); the warm/fresh rows \
                 are reported as unsupported and the other rows use the host's default"
            );
            Isolation::HostDefault
        }
    };
    let scenarios = plan(&budget, warm, unsupported.is_none());
    let mut bench = Bench::new(budget.clone(), env, components, &scenarios);
    let rows = bench.rows(&scenarios, unsupported.as_deref()).await;
    let idle = bench.idle().await;
    let swap = bench.swap(warm).await;
    bench.progress.finish();

    let mut report = Report {
        machine,
        settings: serde_json::json!({
            "runs": budget.runs,
            "events": budget.events,
            "fresh_events": budget.fresh_events,
            "latency_rates": budget.rates,
            "latency_warmup_secs": budget.latency_warmup.as_secs_f64(),
            "latency_measure_secs": budget.latency_measure.as_secs_f64(),
            "batch": ceiling::BATCH,
            "host": binary,
            "isolation_unsupported": unsupported,
        }),
        fill: bench.fills.first().copied(),
        rows,
        idle,
        swap,
        python: None,
        goals: Vec::new(),
        total_secs: started.elapsed().as_secs_f64(),
    };
    report.conclude();
    println!("{}", crate::render::text(&report));
    if let Some(path) = &args.json {
        report.write_json(path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The runs of one scenario so far.
struct Tally {
    samples: Vec<Sample>,
    status: Status,
    latency: Option<Percentiles>,
}

impl Tally {
    fn into_row(self, scenario: &Scenario) -> Row {
        let mut row = Row::new(scenario.name(), scenario.kind(), self.status, self.samples);
        row.latency = self.latency;
        row
    }
}

impl<'a> Bench<'a> {
    fn new(budget: Budget, env: HostEnv<'a>, components: PathBuf, scenarios: &[Scenario]) -> Self {
        let steps: usize = scenarios.iter().map(|s| s.runs(&budget)).sum();
        let idle_step = usize::from(budget.selects("idle"));
        let swap_step = usize::from(budget.selects("swap"));
        Bench {
            progress: Progress::new((steps + idle_step + swap_step) as u64),
            budget,
            env,
            components,
            streams: HashMap::new(),
            fills: Vec::new(),
            groups: 0,
        }
    }

    /// Every run of every scenario, round by round rather than scenario by scenario: a burst
    /// of other work on the machine then hits one run of many scenarios instead of every run
    /// of one (the ceiling, say). Scenarios with fewer runs (latency: one) go in the last
    /// rounds.
    async fn rows(
        &mut self,
        scenarios: &[Scenario],
        isolation_unsupported: Option<&str>,
    ) -> Vec<Row> {
        let mut tallies: Vec<Tally> = scenarios
            .iter()
            .map(|scenario| self.tally(scenario, isolation_unsupported))
            .collect();
        let rounds = scenarios
            .iter()
            .map(|s| s.runs(&self.budget))
            .max()
            .unwrap_or(0);
        for round in 1..=rounds {
            for (scenario, tally) in scenarios.iter().zip(&mut tallies) {
                let first_round = rounds + 1 - scenario.runs(&self.budget);
                if round >= first_round {
                    self.step(scenario, tally, round + 1 - first_round).await;
                }
            }
        }
        scenarios
            .iter()
            .zip(tallies)
            .map(|(scenario, tally)| tally.into_row(scenario))
            .collect()
    }

    /// The idle host, unless `--only` leaves it out; a failure is shown and leaves it out.
    async fn idle(&mut self) -> Option<Idle> {
        if !self.budget.selects("idle") {
            return None;
        }
        self.progress
            .start("idle host with the three example handlers");
        let settle = self.budget.idle_settle;
        match idle::measure(&self.env, &self.components, "bench_idle", settle).await {
            Ok(idle) => {
                self.progress
                    .done(&format!("idle host: RSS {:.1} MB", idle.rss_mb));
                Some(idle)
            }
            Err(error) => {
                self.progress.done(&format!("idle host: failed: {error:#}"));
                None
            }
        }
    }

    /// The hot-swap pause, unless `--only` leaves it out; a failure is shown and leaves it out.
    async fn swap(&mut self, isolation: Isolation) -> Option<SwapPause> {
        if !self.budget.selects("swap") {
            return None;
        }
        self.progress
            .start("swap: speed-alert replaced under 10k events/s");
        self.groups += 1;
        let group = format!("bench-{}", self.groups);
        match swap::measure(&self.env, &self.components, "bench_swap", group, isolation).await {
            Ok(swap) => {
                self.progress.done(&swap.summary());
                Some(swap)
            }
            Err(error) => {
                self.progress.done(&format!("swap: failed: {error:#}"));
                None
            }
        }
    }

    /// An empty tally for `scenario`; already unsupported when it needs the `isolation` key
    /// and the host does not know it.
    fn tally(&self, scenario: &Scenario, isolation_unsupported: Option<&str>) -> Tally {
        let mut status = Status::Measured;
        let needs_isolation = matches!(
            scenario,
            Scenario::Host {
                isolation: Isolation::Reuse | Isolation::PerEvent,
                ..
            }
        );
        if let (true, Some(reason)) = (needs_isolation, isolation_unsupported) {
            self.progress
                .say(&format!("{}: skipped, {reason}", scenario.name()));
            self.progress.skip(scenario.runs(&self.budget) as u64);
            status = Status::Unsupported(format!("the host has no `isolation` key ({reason})"));
        }
        Tally {
            samples: Vec::new(),
            status,
            latency: None,
        }
    }

    /// Run number `run` of `scenario`, unless an earlier run ended it. A failed run ends the
    /// scenario (its row says why); the benchmark goes on with the others.
    async fn step(&mut self, scenario: &Scenario, tally: &mut Tally, run: usize) {
        let runs = scenario.runs(&self.budget);
        let name = scenario.name();
        if !matches!(tally.status, Status::Measured) {
            return;
        }
        self.progress.start(&format!("{name}: run {run}/{runs}"));
        match self.run_once(scenario).await {
            Ok((sample, percentiles)) => {
                self.progress
                    .done(&format!("{name}: run {run}/{runs}: {}", describe(&sample)));
                tally.samples.push(sample);
                tally.latency = percentiles.or(tally.latency);
            }
            Err(error) => {
                self.progress.say(&format!("{name}: {error:#}"));
                self.progress.skip((runs - run + 1) as u64);
                tally.status = match error.downcast_ref::<Unsupported>() {
                    Some(unsupported) => Status::Unsupported(unsupported.0.clone()),
                    None => Status::Failed(format!("{error:#}")),
                };
            }
        }
    }

    /// One run of `scenario`, each in a fresh consumer group; latency runs also give their
    /// percentiles.
    async fn run_once(
        &mut self,
        scenario: &Scenario,
    ) -> anyhow::Result<(Sample, Option<Percentiles>)> {
        self.groups += 1;
        let group = format!("bench-{}", self.groups);
        match scenario {
            Scenario::Ceiling { consumers } => {
                let events = self.budget.events;
                let namespace = self.stream(events).await?;
                let stream = naming::stream_key(&namespace, POSITION_UPDATED);
                let sample =
                    ceiling::run(self.env.redis, &stream, &group, *consumers, events).await?;
                Ok((sample, None))
            }
            Scenario::Host {
                component,
                isolation,
                processes,
                keyed,
            } => {
                let handler = self.handler(component, *isolation, *keyed, group)?;
                let sample = self.drain(&handler, *isolation, *processes).await?;
                Ok((sample, None))
            }
            Scenario::LatencyFloor { rate } => {
                let phase = Phase {
                    rate: *rate,
                    warmup: self.budget.latency_warmup,
                    measure: self.budget.latency_measure,
                };
                let namespace = format!("bench_latency_floor_{rate}");
                let measured = latency::floor(&self.env, &namespace, phase).await?;
                Ok((measured.sample, measured.latency))
            }
            Scenario::Latency { rate, isolation } => {
                let handler = self.handler("speed-alert", *isolation, false, group)?;
                let phase = Phase {
                    rate: *rate,
                    warmup: self.budget.latency_warmup,
                    measure: self.budget.latency_measure,
                };
                let namespace = format!("bench_latency_{rate}");
                let measured = latency::run(&self.env, &namespace, &handler, phase).await?;
                Ok((measured.sample, measured.latency))
            }
        }
    }

    /// One throughput run of the host.
    async fn drain(
        &mut self,
        handler: &HandlerSpec,
        isolation: Isolation,
        processes: usize,
    ) -> anyhow::Result<Sample> {
        let events = match isolation {
            Isolation::Reuse => self.budget.events,
            // Fresh instances (and the default of a host without reuse) are about ten times
            // slower; a quarter of the events keeps these runs seconds long.
            Isolation::PerEvent | Isolation::HostDefault => self.budget.fresh_events,
        };
        let namespace = self.stream(events).await?;
        let result = host_run::drain(&self.env, &namespace, handler, processes, events).await;
        if result.is_err() {
            // Best effort: a failed run must not leave its group and output to the next one.
            let stream = naming::stream_key(&namespace, POSITION_UPDATED);
            let mut conn = self.env.redis.connect().await?;
            let _ = host_run::clean_up(
                &mut conn,
                &namespace,
                &stream,
                &handler.group,
                &handler.name,
            )
            .await;
        }
        result
    }

    fn handler(
        &self,
        component: &str,
        isolation: Isolation,
        keyed: bool,
        group: String,
    ) -> anyhow::Result<HandlerSpec> {
        Ok(HandlerSpec {
            name: component.to_owned(),
            component: host_run::component(&self.components, component)?,
            events: vec![POSITION_UPDATED.to_owned()],
            group,
            isolation,
            concurrency: if keyed { 2 } else { 1 },
            ordering_key: keyed.then(|| "truck_id".to_owned()),
            config: vec![("speed_limit_kmh".to_owned(), "90".to_owned())],
        })
    }

    /// The namespace whose position stream holds `events` entries, filled on first use.
    async fn stream(&mut self, events: u64) -> anyhow::Result<String> {
        if let Some(namespace) = self.streams.get(&events) {
            return Ok(namespace.clone());
        }
        let namespace = format!("bench_{events}");
        let stream = naming::stream_key(&namespace, POSITION_UPDATED);
        self.progress
            .start(&format!("filling {stream} with {events} events"));
        let mut conn = self.env.redis.connect().await?;
        let filled = fill::fill(&mut conn, &stream, events, &mut Fleet::new(events)).await?;
        self.progress.say(&format!(
            "filled {stream}: {events} entries, payload {:.0} B, {} entries/s",
            filled.mean_payload_bytes,
            count(filled.xadd_per_sec)
        ));
        self.fills.push(filled);
        self.streams.insert(events, namespace.clone());
        Ok(namespace)
    }
}

/// The example components: `--components`, or the checkout's `guest-examples`; each one the
/// benchmark uses must be there.
fn components_dir(args: &Args) -> anyhow::Result<PathBuf> {
    let dir = args
        .components
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples"));
    for name in ["noop", "speed-alert", "trip-tracker", "chaos"] {
        host_run::component(&dir, name)?;
    }
    Ok(dir)
}

/// The `watchtower` binary: `--host`, or the one next to this program.
fn host_binary(args: &Args) -> anyhow::Result<PathBuf> {
    let binary = match &args.host {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this program's directory")?
            .join("watchtower"),
    };
    ensure!(
        binary.is_file(),
        "{} is missing: build it with `cargo build --release -p watchtower` (or run `just bench`)",
        binary.display()
    );
    Ok(binary)
}
