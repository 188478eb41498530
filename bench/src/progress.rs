//! What the terminal shows while the benchmark runs: one bar over every step, and one line
//! per finished step (printed above the bar, and printed as plain lines when stderr is not a
//! terminal, e.g. under CI or `tee`).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress of a whole run.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar of `steps` steps on stderr.
    pub fn new(steps: u64) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:32} {pos}/{len} {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar }
    }

    /// Shows what runs now.
    pub fn start(&self, what: &str) {
        self.bar.set_message(what.to_owned());
    }

    /// One step done, with a line saying what came out.
    pub fn done(&self, line: &str) {
        self.say(line);
        self.bar.inc(1);
    }

    /// Steps skipped (e.g. the remaining runs of an unsupported scenario).
    pub fn skip(&self, steps: u64) {
        self.bar.inc(steps);
    }

    /// A line above the bar. `suspend` rather than `println`: the latter prints nothing when
    /// the bar is hidden (stderr not a terminal), and these lines are the log of the run.
    pub fn say(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
