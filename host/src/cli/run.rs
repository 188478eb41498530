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
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = watchtower::config::load(&args.config)?;
    watchtower::run(config, watchtower::shutdown::signal()).await
}
