//! `watchtower replay`: runs a window of a stream through a handler again, with a progress
//! bar on stderr and a summary on stdout (text, or JSON with `--json`).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use watchtower::replay::{Replay, ReplayOptions, ReplaySummary};

/// Arguments of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The handler, as named in the config; its settings, kv hash and (unless `--wasm`)
    /// component are used.
    #[arg(long, value_name = "NAME")]
    pub handler: String,
    /// The configuration file (Redis, namespace, handlers).
    #[arg(
        long,
        short,
        env = "WATCHTOWER_CONFIG",
        default_value = "watchtower.toml"
    )]
    pub config: PathBuf,
    /// The event type whose stream is replayed [default: the handler's first].
    #[arg(long, alias = "event-type", value_name = "TYPE")]
    pub stream: Option<String>,
    /// First entry: a stream id (`1733325000000-0`, `-` for the oldest) or an RFC 3339
    /// time (`2026-12-04T15:00:00Z`, included).
    #[arg(long, value_name = "ID|TIME", default_value = "-")]
    pub from: String,
    /// Last entry: a stream id (included; `+` for the newest at start) or an RFC 3339 time
    /// (excluded).
    #[arg(long, value_name = "ID|TIME", default_value = "+")]
    pub to: String,
    /// Run this component instead of the handler's configured one.
    #[arg(long, value_name = "FILE")]
    pub wasm: Option<PathBuf>,
    /// Apply the effects (publishes, kv writes). Each entry is applied at most once across
    /// replays; published events get ids derived from their source entry.
    #[arg(long)]
    pub commit: bool,
    /// Print the summary as JSON (and no progress bar).
    #[arg(long)]
    pub json: bool,
}

/// Prepares the replay, shows its progress, and prints what it did.
pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let config = watchtower::config::load(&args.config)?;
    let mut options = ReplayOptions::new(&args.handler)
        .from(&args.from)
        .to(&args.to)
        .commit(args.commit);
    if let Some(event_type) = &args.stream {
        options = options.event_type(event_type);
    }
    if let Some(wasm) = &args.wasm {
        options = options.component(wasm);
    }
    let mut replay = Replay::prepare(&config, options).await?;
    let total = replay.count().await?;
    let bar = progress_bar(total, !args.json && std::io::stderr().is_terminal());
    bar.set_message(replay.stream().to_owned());
    let summary = replay.run(|done| bar.set_position(done)).await;
    bar.finish_and_clear();
    let summary = summary?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

/// A bar of `total` entries with rate and time left, drawn on stderr only when it is a
/// terminal.
fn progress_bar(total: u64, visible: bool) -> ProgressBar {
    let target = if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} ({rate}, ETA {eta})",
    ) {
        let style = style
            .with_key(
                "rate",
                |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                    let _ = write!(out, "{:.0} entries/s", state.per_sec());
                },
            )
            .progress_chars("=> ");
        bar.set_style(style);
    }
    if visible {
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    bar
}

fn print_summary(s: &ReplaySummary) {
    let mode = if s.dry_run {
        "dry run, effects discarded"
    } else {
        "effects committed"
    };
    println!(
        "replayed `{}` {} .. {} through {} (version {}; {mode})",
        s.stream, s.from, s.to, s.handler, s.version
    );
    let row = |label: &str, value: u64, note: String| println!("  {label:<10} {value:>8}{note}");
    row("entries", s.entries, format!("  in {} ms", s.elapsed_ms));
    row("handled", s.handled, String::new());
    let by_reason: Vec<String> = s
        .failed_by_reason
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    let note = if by_reason.is_empty() {
        String::new()
    } else {
        format!("  ({})", by_reason.join(", "))
    };
    row("failed", s.failed, note);
    let verb = if s.dry_run {
        "would publish"
    } else {
        "published"
    };
    row("events", s.published, format!("  {verb}"));
    row("kv writes", s.kv_writes, String::new());
    if !s.dry_run {
        row("committed", s.committed, String::new());
        row(
            "skipped",
            s.skipped,
            "  committed by an earlier replay".to_owned(),
        );
    }
    for failure in &s.failures {
        println!("  {}: {}", failure.entry_id, one_line(&failure.reason));
    }
    if s.failed > s.failures.len() as u64 {
        println!(
            "  … and {} more failed entries",
            s.failed - s.failures.len() as u64
        );
    }
}

/// `text` on one line, cut to a terminal's width.
fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(160) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}
