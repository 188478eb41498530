//! `watchtower run`: the host.

use std::path::PathBuf;

use clap::Args;
use tokio::sync::mpsc;

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
    /// The config file as loaded before the runtime started ([`super::Cli::prepare`]).
    #[arg(skip)]
    pub loaded: Option<Box<Result<watchtower::config::Config, watchtower::config::ConfigError>>>,
}

/// Validates the config (before connecting to anything) and runs until SIGINT/SIGTERM.
/// SIGHUP reads the config file again and applies what can change while running. The first
/// SIGINT/SIGTERM drains batches in flight; a second one exits at once (status 130): what
/// was committed stays committed and the rest stays pending.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = match args.loaded {
        Some(loaded) => (*loaded)?,
        None => watchtower::config::load(&args.config)?,
    };
    let (reloads, receiver) = mpsc::channel(1);
    tokio::spawn(reload_on_hangup(args.config.clone(), reloads));
    let host =
        watchtower::supervisor::run_with_reloads(config, watchtower::shutdown::signal(), receiver);
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

/// On every SIGHUP, loads the config file again and hands it to the host; a file that does
/// not validate is reported and changes nothing.
async fn reload_on_hangup(path: PathBuf, reloads: mpsc::Sender<watchtower::config::Config>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; config reload is off");
            return;
        };
        while hangups.recv().await.is_some() {
            match watchtower::config::load(&path) {
                Ok(config) => {
                    tracing::info!(config = %path.display(), "SIGHUP: reloading the configuration");
                    if reloads.send(config).await.is_err() {
                        return;
                    }
                }
                Err(error) => tracing::error!("SIGHUP: configuration not reloaded: {error}"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (path, reloads);
    }
}
