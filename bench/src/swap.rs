//! The hot-swap pause (issue 4): the place for it in the report, and what it is to measure.
//!
//! The measurement, with the latency setup of [`crate::latency`] at 10k events/s
//! offered: write a second build of `speed-alert` over the running handler's `.wasm`, then
//! take (1) the time from the end of the write to the first alert carrying the new version
//! (the swap pause), and (2) the publish → handled p99 over the second around the write,
//! next to the steady-state p99 of the same run. Until it is written the report prints
//! [`NOT_MEASURED`] and the JSON has `"swap": null`.

use serde::Serialize;

/// The line the report prints while the swap pause cannot be measured.
pub const NOT_MEASURED: &str =
    "swap pause (issue 4): not measured yet; bench/src/swap.rs describes the measurement";

/// What a hot swap under load costs.
#[derive(Debug, Clone, Serialize)]
pub struct SwapPause {
    /// From the end of the file write to the new version serving, ms.
    pub write_to_serving_ms: f64,
    /// Handle-latency p99 over the second around the swap, ms.
    pub p99_around_swap_ms: f64,
    /// Handle-latency p99 in steady state, same run, ms.
    pub p99_steady_ms: f64,
}

impl SwapPause {
    /// One line for the report.
    pub fn summary(&self) -> String {
        format!(
            "swap pause: {:.1} ms from write to new version serving; p99 {:.2} ms around \
             the swap vs {:.2} ms steady",
            self.write_to_serving_ms, self.p99_around_swap_ms, self.p99_steady_ms
        )
    }
}
