//! Logging: `tracing` to stderr, as readable text or as JSON lines for log collectors.
//! The level comes from `RUST_LOG` when set (e.g. `RUST_LOG=watchtower=debug`).

use tracing_subscriber::EnvFilter;

/// How log records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber; `default_level` applies when `RUST_LOG` is unset.
pub fn init(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, never in files or collected logs.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A second initialisation (tests running several hosts in one process) is harmless.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // The innermost span's fields (an event's handler, version, stream, entry, event_id
        // and correlation_id) go with every line logged inside it, under `span`.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
