//! `watchtower run`: the host.

use std::path::PathBuf;

use clap::Args;

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(
        long,
        short,
        env = "WATCHTOWER_CONFIG",
        default_value = "watchtower.toml"
    )]
    pub config: PathBuf,
}

/// Validates the config (before connecting to anything) and runs until SIGINT/SIGTERM.
/// The first signal drains batches in flight; a second one exits at once (status 130):
/// what was committed stays committed and the rest stays pending.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = watchtower::config::load(&args.config)?;
    let host = watchtower::run(config, watchtower::shutdown::signal());
    let second_signal = async {
        watchtower::shutdown::signal().await;
        watchtower::shutdown::signal().await;
    };
    tokio::select! {
        result = host => result,
        () = second_signal => {
            eprintln!("second signal: exiting now; uncommitted entries stay pending");
            std::process::exit(130);
        }
    }
}
