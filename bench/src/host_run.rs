//! The host's throughput: one or more `watchtower run` processes in one fresh consumer group
//! drain a pre-filled stream, and the clock runs until the group has nothing pending and no
//! lag.
//!
//! The clock starts when every process has joined the group (its consumer appears in
//! `XINFO GROUPS` with its first read), not when the processes are spawned: compiling the
//! component is a start-up cost, not a per-event one. Events handled before that moment (by
//! the first process of two, while the second still compiles) are left out of the rate, and
//! CPU time is counted over the same window, so events/s and CPU µs/event describe the same
//! events.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use redis::AsyncCommands as _;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamInfoGroup, StreamInfoGroupsReply};
use watchtower_events::{POSITION_UPDATED, naming};

use crate::host_process::{HandlerSpec, HostProcess, HostSpec, Isolation};
use crate::procfs;
use crate::redis_server::RedisServer;
use crate::redis_stats;
use crate::report::Sample;

/// How often the group is looked at while a host works.
const POLL: Duration = Duration::from_millis(2);
/// How long hosts may take to compile their components and join the group.
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long a host gets to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The host refused its config because it lacks a feature the scenario needs (a key it does
/// not know yet); the scenario is reported as unsupported rather than failed.
#[derive(Debug)]
pub struct Unsupported(pub String);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unsupported by this host: {}", self.0)
    }
}

impl std::error::Error for Unsupported {}

/// Where hosts come from and where their files go.
pub struct HostEnv<'a> {
    /// The private Redis.
    pub redis: &'a RedisServer,
    /// The `watchtower` binary.
    pub binary: PathBuf,
    /// Config files and logs of the hosts.
    pub dir: PathBuf,
}

/// The processes of one scenario, stopped (gracefully) by [`Hosts::stop`] and killed if
/// dropped.
pub struct Hosts {
    processes: Vec<HostProcess>,
}

impl Hosts {
    /// Starts `count` hosts running `handlers`, consumer names `{prefix}-1`, `{prefix}-2`, …
    pub fn start(
        env: &HostEnv<'_>,
        namespace: &str,
        prefix: &str,
        handlers: &[HandlerSpec],
        count: usize,
    ) -> anyhow::Result<Hosts> {
        let processes = (1..=count)
            .map(|n| {
                let spec = HostSpec {
                    redis_url: env.redis.url(),
                    namespace: namespace.to_owned(),
                    consumer_name: format!("{prefix}-{n}"),
                    handlers: handlers.to_vec(),
                };
                HostProcess::start(&env.binary, &env.dir, &spec)
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Hosts { processes })
    }

    /// Process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(HostProcess::pid).collect()
    }

    /// Fails if a host has exited: [`Unsupported`] when its last words name `isolation` (a
    /// host from before that key), otherwise an error with the end of its log.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        for host in &mut self.processes {
            if let Some(status) = host.exited()? {
                let log = host.log();
                if let Some(line) = log.lines().rev().find(|l| l.contains("isolation")) {
                    return Err(Unsupported(line.trim().to_owned()).into());
                }
                bail!(
                    "the host exited ({status}); the end of its log:\n{}",
                    host.log_tail(15)
                );
            }
        }
        Ok(())
    }

    /// CPU time of all processes together.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        self.pids().into_iter().map(procfs::cpu_time).sum()
    }

    /// The highest `VmHWM` (peak resident set) of the processes, bytes.
    pub fn peak_rss(&self) -> anyhow::Result<u64> {
        let mut peak = 0;
        for pid in self.pids() {
            peak = peak.max(procfs::memory(pid)?.peak);
        }
        Ok(peak)
    }

    /// The current resident set of the first process, bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        let pid = self.pids().first().copied().unwrap_or_default();
        Ok(procfs::memory(pid)?.rss)
    }

    /// Stops every process (SIGTERM, then SIGKILL after a grace period). Returns what was
    /// unusual: a non-zero exit status or a stop that needed the kill.
    pub async fn stop(self) -> anyhow::Result<Vec<String>> {
        let mut notes = Vec::new();
        for host in self.processes {
            let pid = host.pid();
            match host.stop(STOP_GRACE).await? {
                (_, None) => notes.push(format!(
                    "host {pid} did not stop within {STOP_GRACE:?} of SIGTERM and was killed"
                )),
                (status, Some(_)) if !status.success() => {
                    notes.push(format!("host {pid} exited with {status} on SIGTERM"));
                }
                _ => {}
            }
        }
        Ok(notes)
    }

    /// Polls until the group has at least `consumers` consumers on `stream`.
    pub async fn wait_joined(
        &mut self,
        conn: &mut MultiplexedConnection,
        stream: &str,
        group: &str,
        consumers: usize,
    ) -> anyhow::Result<StreamInfoGroup> {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            self.check_running()?;
            if let Some(info) = group_info(conn, stream, group).await
                && info.consumers >= consumers
            {
                return Ok(info);
            }
            if Instant::now() > deadline {
                bail!("the hosts did not join group {group} on {stream} within {START_LIMIT:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// The group's figures, or `None` while the stream or the group does not exist.
pub async fn group_info(
    conn: &mut MultiplexedConnection,
    stream: &str,
    group: &str,
) -> Option<StreamInfoGroup> {
    let reply: StreamInfoGroupsReply = conn.xinfo_groups(stream).await.ok()?;
    reply.groups.into_iter().find(|g| g.name == group)
}

/// Entries of the group acknowledged so far: read and no longer pending.
fn acknowledged(info: &StreamInfoGroup) -> u64 {
    info.entries_read.unwrap_or(0).saturating_sub(info.pending) as u64
}

fn drained(info: &StreamInfoGroup, events: u64) -> bool {
    let read_all = match info.lag {
        Some(lag) => lag == 0,
        None => info.entries_read.unwrap_or(0) as u64 >= events,
    };
    info.pending == 0 && read_all
}

/// One throughput run: `processes` hosts running `handler` drain `events` entries of
/// `namespace`'s position stream.
pub async fn drain(
    env: &HostEnv<'_>,
    namespace: &str,
    handler: &HandlerSpec,
    processes: usize,
    events: u64,
) -> anyhow::Result<Sample> {
    let stream = naming::stream_key(namespace, POSITION_UPDATED);
    let group = &handler.group;
    let mut conn = env.redis.connect().await?;
    let mut hosts = Hosts::start(
        env,
        namespace,
        "bench",
        std::slice::from_ref(handler),
        processes,
    )?;

    let joined = hosts
        .wait_joined(&mut conn, &stream, group, processes)
        .await?;
    let started = Instant::now();
    let acked_at_start = acknowledged(&joined);
    let cpu_at_start = (hosts.cpu_time()?, procfs::cpu_time(env.redis.pid())?);
    redis_stats::reset(&mut conn).await?;

    let limit = Duration::from_secs(120) + Duration::from_millis(events / 2);
    let finished = loop {
        hosts.check_running()?;
        if let Some(info) = group_info(&mut conn, &stream, group).await {
            if drained(&info, events) {
                break info;
            }
            if started.elapsed() > limit {
                bail!(
                    "the hosts acknowledged {} of {events} entries in {limit:?}",
                    acknowledged(&info)
                );
            }
        }
        tokio::time::sleep(POLL).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let host_cpu = hosts.cpu_time()?.saturating_sub(cpu_at_start.0);
    let redis_cpu = procfs::cpu_time(env.redis.pid())?.saturating_sub(cpu_at_start.1);
    let peak_rss = hosts.peak_rss()?;
    let measured = events.saturating_sub(acked_at_start);
    let redis_commands = redis_stats::per_event(&mut conn, measured).await?;
    let mut notes = hosts.stop().await?;

    ensure!(
        acknowledged(&finished) == events,
        "the group acknowledged {} entries, the stream holds {events}",
        acknowledged(&finished)
    );
    if measured < events / 2 {
        notes.push(format!(
            "only {measured} of {events} events were handled after every host had joined"
        ));
    }
    let dead = dead_letters(&mut conn, namespace, &handler.name).await?;
    if dead > 0 {
        notes.push(format!("{dead} entries were dead-lettered"));
    }
    clean_up(&mut conn, namespace, &stream, group, &handler.name).await?;

    let measured_f = measured.max(1) as f64;
    Ok(Sample {
        events: measured,
        seconds,
        events_per_sec: measured_f / seconds,
        cpu_us_per_event: Some(host_cpu.as_secs_f64() * 1e6 / measured_f),
        redis_cpu_us_per_event: Some(redis_cpu.as_secs_f64() * 1e6 / measured_f),
        peak_rss_mb: Some(peak_rss as f64 / (1024.0 * 1024.0)),
        redis_commands,
        notes,
    })
}

async fn dead_letters(
    conn: &mut MultiplexedConnection,
    namespace: &str,
    handler: &str,
) -> anyhow::Result<u64> {
    Ok(conn.xlen(naming::dlq_key(namespace, handler)).await?)
}

/// Leaves Redis as the fill left it: the group gone, and whatever the handler wrote deleted,
/// so runs do not pile up alerts in memory.
pub async fn clean_up(
    conn: &mut MultiplexedConnection,
    namespace: &str,
    stream: &str,
    group: &str,
    handler: &str,
) -> anyhow::Result<()> {
    let _: redis::RedisResult<()> = conn.xgroup_destroy(stream, group).await;
    let keys = [
        naming::dlq_key(namespace, handler),
        naming::kv_key(namespace, handler),
        format!("{namespace}:redrive:{handler}"),
        naming::stream_key(namespace, watchtower_events::ALERT_TRIGGERED),
        naming::stream_key(namespace, watchtower_events::ERROR_OCCURRED),
    ];
    let () = conn.del(&keys).await?;
    Ok(())
}

/// The component `name.wasm` in `dir`, or an error telling how to build it.
pub fn component(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}.wasm"));
    ensure!(
        path.is_file(),
        "{} is missing: run `just guests`",
        path.display()
    );
    Ok(std::fs::canonicalize(path)?)
}

/// Starts a host whose handler says `isolation = "reuse"`: `None` if it runs, the host's
/// complaint if it refuses the key.
pub async fn probe_isolation(
    env: &HostEnv<'_>,
    components: &Path,
) -> anyhow::Result<Option<String>> {
    let namespace = "bench_probe";
    let handler = HandlerSpec {
        name: "noop".to_owned(),
        component: component(components, "noop")?,
        events: vec![POSITION_UPDATED.to_owned()],
        group: "bench-probe".to_owned(),
        isolation: Isolation::Reuse,
        concurrency: 1,
        ordering_key: None,
        config: Vec::new(),
    };
    let stream = naming::stream_key(namespace, POSITION_UPDATED);
    let mut conn = env.redis.connect().await?;
    let mut hosts = Hosts::start(env, namespace, "probe", &[handler], 1)?;
    let joined = hosts
        .wait_joined(&mut conn, &stream, "bench-probe", 1)
        .await;
    hosts.stop().await?;
    let _ = clean_up(&mut conn, namespace, &stream, "bench-probe", "noop").await;
    match joined {
        Ok(_) => Ok(None),
        Err(error) => match error.downcast_ref::<Unsupported>() {
            Some(unsupported) => Ok(Some(unsupported.0.clone())),
            None => Err(error.context("starting a host to see what it supports")),
        },
    }
}
