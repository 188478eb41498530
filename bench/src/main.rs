//! `watchtower-bench`: how fast Watchtower consumes Redis Streams, measured against the
//! fastest plain consumer on the same machine in the same run.
//!
//! The program starts its own `redis-server`, fills streams with `position.updated` events,
//! and measures in turn: the ceiling (a minimal Rust consumer without handler), the
//! `watchtower` host as child processes with the `noop` and `speed-alert` components,
//! publish-to-handled latency at fixed offered rates, and the idle memory of a host. It prints
//! one table and, with `--json FILE`, writes the same figures as JSON. `just bench` builds
//! everything first and runs it; BENCHMARKS.md explains each figure.
//!
//! # Layout
//! - `args`: the command line.
//! - `suite`: one run from start to end: Redis, streams, scenarios, report.
//! - `scenario`: what is measured, in which order.
//! - `redis_server`: a private `redis-server` on a free loopback port.
//! - `fill`: realistic `position.updated` events, written with pipelined `XADD`.
//! - `ceiling`: the minimal consumer every ratio is taken against.
//! - `host_process`: one `watchtower run` child process, its config file and its log.
//! - `host_run`: host processes in one group, and how long they take to drain a stream.
//! - `latency`: a paced producer and the alerts that come back.
//! - `idle`: the memory of a host with the example handlers and nothing to do.
//! - `swap`: the hot-swap pause: a handler's `.wasm` replaced under load.
//! - `redis_stats`: Redis commands per event, from `INFO commandstats`.
//! - `procfs`: CPU time and memory of a process, from `/proc`.
//! - `stats`: min / median / max and percentiles.
//! - `report`, `goals`, `render`: the rows and ratios (and the JSON), the goals, the
//!   text table.
//! - `machine`, `progress`: the machine, and what the terminal shows meanwhile.

mod args;
mod ceiling;
mod fill;
mod goals;
mod host_process;
mod host_run;
mod idle;
mod latency;
mod machine;
mod procfs;
mod progress;
mod redis_server;
mod redis_stats;
mod render;
mod report;
mod scenario;
mod stats;
mod suite;
mod swap;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(suite::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
