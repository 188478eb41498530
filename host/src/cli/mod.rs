//! Command-line interface: [`Cli`] and one module per subcommand. Modules here parse and
//! print; the work is done by the library.

mod check;
mod demo;
mod dlq;
mod healthcheck;
mod publish;
mod reload;
mod replay;
mod run;
mod status;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use watchtower::config::file::FileConfig;
use watchtower::config::{DEFAULT_REDIS_URL, apply_env_overrides};
use watchtower::telemetry::LogFormat;
use watchtower_events::DEFAULT_NAMESPACE;

/// Watchtower: runs WebAssembly event handlers on Redis Streams.
#[derive(Debug, Parser)]
#[command(name = "watchtower", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log output (-v: debug, -vv: trace). `RUST_LOG` takes precedence.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Reads what must be known before the async runtime starts: `run` loads its config
    /// file here (once; `run` uses it, or reports why it did not load). Returns the threads
    /// of the runtime (`[runtime] worker_threads`); `None` means the runtime's default.
    pub fn prepare(&mut self) -> Option<std::num::NonZeroUsize> {
        match &mut self.command {
            Command::Run(args) => {
                let loaded = watchtower::config::load(&args.config);
                let threads = loaded.as_ref().ok().map(|config| config.worker_threads);
                args.loaded = Some(Box::new(loaded));
                threads
            }
            _ => None,
        }
    }

    /// The log filter used when `RUST_LOG` is not set.
    pub fn default_log_level(&self) -> &'static str {
        match (self.verbose, &self.command) {
            (0, Command::Demo(_)) => "warn",
            // Under a progress bar; what guests print is summed up in the failure reasons.
            (0, Command::Replay(_)) => "warn,guest=error",
            (0, _) => "info",
            (1, _) => "info,watchtower=debug",
            _ => "debug,watchtower=trace",
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the host: consume the configured streams and call the handlers.
    Run(run::RunArgs),
    /// Publish one event (validated for the known types) and print its entry id.
    Publish(publish::PublishArgs),
    /// Show streams, consumer groups, pending entries and lag.
    Status(status::StatusArgs),
    /// List, show, re-drive or delete a handler's dead letters.
    Dlq(dlq::DlqArgs),
    /// Check that a .wasm file is a handler component of the world watchtower:handler/handler.
    Check(check::CheckArgs),
    /// Ask a running host to reload a handler's component and swap it in.
    Reload(reload::ReloadArgs),
    /// Re-run a window of a stream through a handler; effects are discarded unless --commit.
    Replay(replay::ReplayArgs),
    /// Exit 0 if the host's admin listener answers /healthz (for container health checks).
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Run a self-contained demo: a private redis-server, the example handlers, a fleet scenario.
    Demo(demo::DemoArgs),
}

/// Where a command finds Redis: `--redis-url`, `WATCHTOWER_REDIS_URL`, the config file, or
/// the default, in that order.
#[derive(Debug, Args)]
pub struct RedisArgs {
    /// Redis URL [default: from the config file, else redis://127.0.0.1:6379].
    #[arg(long, env = "WATCHTOWER_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Key namespace [default: from the config file, else watch_tower].
    #[arg(long, env = "WATCHTOWER_NAMESPACE")]
    pub namespace: Option<String>,
    /// Config file to read the Redis settings from (used only if it exists).
    #[arg(
        long,
        short,
        env = "WATCHTOWER_CONFIG",
        default_value = "watchtower.toml"
    )]
    pub config: PathBuf,
}

impl RedisArgs {
    /// The URL and namespace to use.
    pub fn resolve(&self) -> anyhow::Result<(String, String)> {
        let mut file = read_raw(&self.config)?;
        apply_env_overrides(&mut file, |name| std::env::var(name).ok());
        let url = self
            .redis_url
            .clone()
            .or(file.redis.url)
            .unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned());
        let namespace = self
            .namespace
            .clone()
            .or(file.redis.namespace)
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        Ok((url, namespace))
    }

    /// A connection to the resolved Redis, and the namespace.
    pub async fn connect(&self) -> anyhow::Result<(redis::aio::ConnectionManager, String)> {
        let (url, namespace) = self.resolve()?;
        let conn = watchtower::redis::connect(&url).await.with_context(|| {
            format!(
                "connecting to Redis at {}",
                watchtower::supervisor::redact(&url)
            )
        })?;
        Ok((conn, namespace))
    }
}

/// The config file's raw contents, or defaults when it does not exist.
fn read_raw(path: &Path) -> anyhow::Result<FileConfig> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("{}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
        Err(e) => {
            Err(e).with_context(|| format!("{}: cannot read the config file", path.display()))
        }
    }
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Publish(args) => publish::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Dlq(args) => dlq::run(args).await,
        Command::Check(args) => check::run(args),
        Command::Demo(args) => demo::run(args).await,
        Command::Reload(args) => reload::run(args).await,
        Command::Replay(args) => replay::run(args).await,
        Command::Healthcheck(args) => healthcheck::run(args).await,
    }
}
