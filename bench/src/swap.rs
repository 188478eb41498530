//! The hot-swap pause (issue 4): what a handler swap costs under load.
//!
//! With the latency setup of [`crate::latency`] (warm `speed-alert`, every event speeding,
//! each alert's `correlation_id` the instant its event was sent) at [`RATE`] events/s offered
//! for [`LENGTH`]: the host runs a copy of `speed-alert.wasm` in a directory of its own;
//! [`SWAP_AT`] into the run a second build of it (the same component plus a custom section,
//! so another sha256) is written to a temporary file in that directory and renamed over the
//! copy, as deploy tools do. Taken: (1) the time from the end of the rename to the arrival of
//! the first alert whose metadata `handler_version` is the new build's label (the swap
//! pause), and (2) the publish → handled p99 of the events sent in the second around the
//! rename, next to the p99 of those sent in the first [`STEADY`] (steady state, same run).
//! When the measurement is left out or fails the report prints [`NOT_MEASURED`] and the JSON has
//! `"swap": null`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use redis::AsyncCommands as _;
use redis::aio::MultiplexedConnection;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use watchtower_events::{ALERT_TRIGGERED, POSITION_UPDATED, naming};

use crate::fill::Fleet;
use crate::host_process::{HandlerSpec, Isolation};
use crate::host_run::{HostEnv, Hosts, clean_up};
use crate::latency::{produce, read_arrivals, sent_at};
use crate::stats::Percentiles;

/// The line the report prints while the swap pause cannot be measured.
pub const NOT_MEASURED: &str =
    "swap pause: not measured in this run (left out by --only, or the measurement failed)";

/// Events per second offered.
const RATE: u64 = 10_000;
/// How long events are offered.
const LENGTH: Duration = Duration::from_secs(6);
/// When the new build is renamed over the running one.
const SWAP_AT: Duration = Duration::from_secs(3);
/// The steady-state window: events sent in the first this-long.
const STEADY: Duration = Duration::from_secs(2);
/// Half the window around the swap.
const AROUND: Duration = Duration::from_millis(500);
/// The metadata key of the version that published an event.
const VERSION_METADATA: &str = "handler_version";
/// Name of the custom section that makes the second build.
const VARIANT_SECTION: &str = "watchtower-bench-variant";

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

/// One alert as the reader saw it, times on the run's clock.
struct Alert {
    sent: Duration,
    arrived: Duration,
    new_version: bool,
}

/// Measures one swap of `speed-alert` (from `components`) in the fresh `namespace`.
pub async fn measure(
    env: &HostEnv<'_>,
    components: &Path,
    namespace: &str,
    group: String,
    isolation: Isolation,
) -> anyhow::Result<SwapPause> {
    let source = crate::host_run::component(components, "speed-alert")?;
    let dir = tempfile::Builder::new()
        .prefix("swap")
        .tempdir_in(&env.dir)?;
    let deployed = dir.path().join("speed-alert.wasm");
    let old = std::fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
    std::fs::write(&deployed, &old)?;
    let new = variant(&old, "second build");
    let (old_label, new_label) = (version_label(&old), version_label(&new));
    ensure!(
        old_label != new_label,
        "the second build has the same label"
    );

    let handler = HandlerSpec {
        name: "speed-alert".to_owned(),
        component: deployed.clone(),
        events: vec![POSITION_UPDATED.to_owned()],
        group,
        isolation,
        concurrency: 1,
        ordering_key: None,
        config: vec![("speed_limit_kmh".to_owned(), "90".to_owned())],
    };
    let positions = naming::stream_key(namespace, POSITION_UPDATED);
    let alerts = naming::stream_key(namespace, ALERT_TRIGGERED);
    let mut conn = env.redis.connect().await?;
    let mut hosts = Hosts::start(env, namespace, "swap", std::slice::from_ref(&handler), 1)?;
    let result = async {
        hosts
            .wait_joined(&mut conn, &positions, &handler.group, 1)
            .await?;
        let clock = Instant::now();
        let (total_tx, total_rx) = watch::channel(None);
        let reader = tokio::spawn(read_alerts(
            env.redis.connect().await?,
            alerts.clone(),
            clock,
            new_label.clone(),
            total_rx,
        ));
        let swapper = tokio::spawn(async move {
            tokio::time::sleep(SWAP_AT).await;
            replace_by_rename(&deployed, &new)?;
            anyhow::Ok(clock.elapsed())
        });
        let mut fleet = Fleet::new(RATE);
        let sent = produce(&mut conn, &positions, &mut fleet, RATE, LENGTH, clock).await?;
        let swapped_at = swapper.await.context("swap task")??;
        let _ = total_tx.send(Some(sent));
        let seen = reader.await.context("alert reader task")??;
        hosts.check_running()?;
        summarize(&seen, swapped_at, &old_label, &new_label)
    }
    .await;
    let _ = hosts.stop().await;
    let _ = clean_up(
        &mut conn,
        namespace,
        &positions,
        &handler.group,
        &handler.name,
    )
    .await;
    let _: redis::RedisResult<()> = conn.del(&positions).await;
    result
}

/// The figures from the alerts of one run with the rename returning at `swapped_at`.
fn summarize(
    seen: &[Alert],
    swapped_at: Duration,
    old_label: &str,
    new_label: &str,
) -> anyhow::Result<SwapPause> {
    let first_new = seen
        .iter()
        .filter(|a| a.new_version)
        .map(|a| a.arrived)
        .min()
        .with_context(|| {
            format!(
                "no alert carried the new version {new_label} (old {old_label}); {} alerts \
                 arrived",
                seen.len()
            )
        })?;
    let p99 = |from: Duration, to: Duration| {
        let mut latencies: Vec<Duration> = seen
            .iter()
            .filter(|a| a.sent >= from && a.sent < to)
            .map(|a| a.arrived.saturating_sub(a.sent))
            .collect();
        Percentiles::of(&mut latencies).map(|p| p.p99_ms)
    };
    let steady = p99(Duration::ZERO, STEADY).context("no alerts in the steady window")?;
    let around = p99(swapped_at.saturating_sub(AROUND), swapped_at + AROUND)
        .context("no alerts around the swap")?;
    Ok(SwapPause {
        write_to_serving_ms: first_new.saturating_sub(swapped_at).as_secs_f64() * 1e3,
        p99_around_swap_ms: around,
        p99_steady_ms: steady,
    })
}

/// Reads `stream` from the start until `total` (once known) alerts have arrived, or
/// [`DRAIN_LIMIT`](crate::latency::DRAIN_LIMIT) after it became known.
async fn read_alerts(
    conn: MultiplexedConnection,
    stream: String,
    clock: Instant,
    new_label: String,
    total: watch::Receiver<Option<u64>>,
) -> anyhow::Result<Vec<Alert>> {
    let mut seen = Vec::new();
    read_arrivals(conn, &stream, clock, total, |arrived, entry| {
        let Some(sent) = sent_at(entry) else {
            return false;
        };
        let new_version = entry
            .get::<String>("metadata")
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|m| m.get(VERSION_METADATA)?.as_str().map(|v| v == new_label))
            .unwrap_or(false);
        seen.push(Alert {
            sent,
            arrived,
            new_version,
        });
        true
    })
    .await?;
    Ok(seen)
}

/// Writes `bytes` to a temporary file next to `path` and renames it over `path`: the host
/// never sees the file half-written.
fn replace_by_rename(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let temporary = path.with_file_name(".speed-alert.wasm.partial");
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("renaming {} over {}", temporary.display(), path.display()))
}

/// `component` with a custom section named [`VARIANT_SECTION`] holding `tag` appended: the
/// same behaviour, another digest.
fn variant(component: &[u8], tag: &str) -> Vec<u8> {
    let mut contents = Vec::new();
    push_leb128(&mut contents, VARIANT_SECTION.len());
    contents.extend_from_slice(VARIANT_SECTION.as_bytes());
    contents.extend_from_slice(tag.as_bytes());
    let mut bytes = component.to_vec();
    bytes.push(0);
    push_leb128(&mut bytes, contents.len());
    bytes.extend_from_slice(&contents);
    bytes
}

/// Appends `value` as unsigned LEB128.
fn push_leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// The host's label of a version: the first 12 hex digits of its sha256.
fn version_label(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(6)
        .fold(String::with_capacity(12), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_of_small_and_large_values() {
        let mut out = Vec::new();
        push_leb128(&mut out, 5);
        push_leb128(&mut out, 300);
        assert_eq!(out, [5, 0xac, 0x02]);
    }

    #[test]
    fn variant_appends_one_custom_section() {
        let base = b"\0asm\x0d\0\x01\0".to_vec();
        let bytes = variant(&base, "x");
        assert_eq!(&bytes[..base.len()], &base[..]);
        let section = &bytes[base.len()..];
        assert_eq!(section[0], 0);
        assert_eq!(usize::from(section[1]), section.len() - 2);
        assert_eq!(usize::from(section[2]), VARIANT_SECTION.len());
        assert_ne!(version_label(&base), version_label(&bytes));
        assert_eq!(version_label(&base).len(), 12);
    }
}
