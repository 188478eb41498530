//! The `watchtower` command: parse the command line, set up logging, run the subcommand and
//! turn its error into a message and a non-zero exit status.

mod cli;

use std::process::ExitCode;

use clap::Parser;

// Handling an event allocates and frees many small buffers (the entry's fields, the decoded
// envelope, the call's effects); mimalloc does that at about half the cost of glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut cli = cli::Cli::parse();
    watchtower::telemetry::init(cli.log_format, cli.default_log_level());
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = cli.prepare() {
        builder.worker_threads(threads.get());
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
