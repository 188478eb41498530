//! Publish → handled latency at a fixed offered rate.
//!
//! A paced producer appends positions that are all above the speed limit, each stamped with
//! the instant it is sent (nanoseconds on this program's monotonic clock, in the
//! `correlation_id`). For every one of them `speed-alert` publishes an alert, which inherits
//! the correlation id and becomes visible only when the host commits it together with the
//! acknowledgement of the position. A reader blocked on the alert stream takes the time each
//! alert arrives: latency = arrival − sending, so it covers the host reading the entry,
//! handling it and committing, plus one Redis hop to the reader.
//!
//! The producer is open-loop: it sends on schedule whether or not the host keeps up, so a
//! host that falls behind shows as latency, not as a slower producer. Events sent during
//! the warm-up are handled but not counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use redis::AsyncCommands as _;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use watchtower_events::{ALERT_TRIGGERED, POSITION_UPDATED, naming, wire};

use crate::fill::{Fleet, Speeding};
use crate::host_process::HandlerSpec;
use crate::host_run::{HostEnv, Hosts, clean_up};
use crate::procfs;
use crate::report::Sample;
use crate::stats::Percentiles;

/// The producer's pacing interval; each tick sends what the schedule says is due.
const TICK: Duration = Duration::from_millis(1);
/// How long the reader waits for the last alerts once the producer is done.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(15);

/// One offered rate and how long to offer it.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// Events per second.
    pub rate: u64,
    /// Sent first, not counted.
    pub warmup: Duration,
    /// Sent and counted.
    pub measure: Duration,
}

/// What one rate measured.
pub struct Measured {
    /// Achieved rate, host CPU and memory over the measured phase.
    pub sample: Sample,
    /// Publish → handled percentiles of the events sent in the measured phase.
    pub latency: Option<Percentiles>,
}

/// Runs one host with `handler` (a `speed-alert` component) in the fresh `namespace` and
/// offers `phase.rate` events per second.
pub async fn run(
    env: &HostEnv<'_>,
    namespace: &str,
    handler: &HandlerSpec,
    phase: Phase,
) -> anyhow::Result<Measured> {
    let positions = naming::stream_key(namespace, POSITION_UPDATED);
    let alerts = naming::stream_key(namespace, ALERT_TRIGGERED);
    let mut conn = env.redis.connect().await?;
    let mut hosts = Hosts::start(env, namespace, "latency", std::slice::from_ref(handler), 1)?;
    hosts
        .wait_joined(&mut conn, &positions, &handler.group, 1)
        .await?;

    let clock = Instant::now();
    let measure_from = phase.warmup;
    let (total_tx, total_rx) = watch::channel(None);
    let arrived = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn(read_alerts(
        env.redis.connect().await?,
        alerts.clone(),
        clock,
        measure_from,
        total_rx,
        arrived.clone(),
    ));

    let mut pacer = Pacer::new(&positions, phase.rate, clock);
    let warmup_sent = pacer.send_for(&mut conn, phase.warmup).await?;
    let cpu_at_start = (hosts.cpu_time()?, procfs::cpu_time(env.redis.pid())?);
    crate::redis_stats::reset(&mut conn).await?;
    let measure_started = Instant::now();
    let sent = pacer.send_for(&mut conn, phase.measure).await?;
    let seconds = measure_started.elapsed().as_secs_f64();
    let backlog = (warmup_sent + sent).saturating_sub(arrived.load(Ordering::Relaxed));
    let _ = total_tx.send(Some(warmup_sent + sent));
    let (received, mut latencies) = reader.await.context("alert reader task")??;
    let host_cpu = hosts.cpu_time()?.saturating_sub(cpu_at_start.0);
    let redis_cpu = procfs::cpu_time(env.redis.pid())?.saturating_sub(cpu_at_start.1);
    let peak_rss = hosts.peak_rss()?;
    let redis_commands = crate::redis_stats::per_event(&mut conn, sent).await?;
    hosts.check_running()?;
    let mut notes = hosts.stop().await?;
    clean_up(
        &mut conn,
        namespace,
        &positions,
        &handler.group,
        &handler.name,
    )
    .await?;
    let () = conn.del(&positions).await?;

    let achieved = sent as f64 / seconds;
    if achieved < phase.rate as f64 * 0.95 {
        notes.push(format!(
            "the producer reached only {achieved:.0} of {} events/s offered: the machine was \
             saturated",
            phase.rate
        ));
    }
    if backlog > phase.rate / 10 {
        notes.push(format!(
            "the host fell behind: {backlog} events were not handled yet when sending stopped"
        ));
    }
    let missing = (warmup_sent + sent).saturating_sub(received);
    if missing > 0 {
        notes.push(format!(
            "{missing} alerts had not arrived {DRAIN_LIMIT:?} after the last event was sent"
        ));
    }
    let per_event = |cpu: Duration| cpu.as_secs_f64() * 1e6 / sent.max(1) as f64;
    Ok(Measured {
        sample: Sample {
            events: sent,
            seconds,
            events_per_sec: achieved,
            cpu_us_per_event: Some(per_event(host_cpu)),
            redis_cpu_us_per_event: Some(per_event(redis_cpu)),
            peak_rss_mb: Some(peak_rss as f64 / (1024.0 * 1024.0)),
            redis_commands,
            notes,
        },
        latency: Percentiles::of(&mut latencies),
    })
}

/// The latency floor: the same producer and reader, no host, the reader reading the
/// positions themselves. Every latency row pays this path (producer → Redis → a blocked
/// reader) once; what a host row adds above it is the host's read, call and commit.
pub async fn floor(env: &HostEnv<'_>, namespace: &str, phase: Phase) -> anyhow::Result<Measured> {
    let positions = naming::stream_key(namespace, POSITION_UPDATED);
    let mut conn = env.redis.connect().await?;
    let clock = Instant::now();
    let (total_tx, total_rx) = watch::channel(None);
    let arrived = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn(read_alerts(
        env.redis.connect().await?,
        positions.clone(),
        clock,
        phase.warmup,
        total_rx,
        arrived,
    ));
    let mut pacer = Pacer::new(&positions, phase.rate, clock);
    let warmup_sent = pacer.send_for(&mut conn, phase.warmup).await?;
    let redis_at_start = procfs::cpu_time(env.redis.pid())?;
    let measure_started = Instant::now();
    let sent = pacer.send_for(&mut conn, phase.measure).await?;
    let seconds = measure_started.elapsed().as_secs_f64();
    let _ = total_tx.send(Some(warmup_sent + sent));
    let (_, mut latencies) = reader.await.context("position reader task")??;
    let redis_cpu = procfs::cpu_time(env.redis.pid())?.saturating_sub(redis_at_start);
    let () = conn.del(&positions).await?;
    Ok(Measured {
        sample: Sample {
            events: sent,
            seconds,
            events_per_sec: sent as f64 / seconds,
            cpu_us_per_event: None,
            redis_cpu_us_per_event: Some(redis_cpu.as_secs_f64() * 1e6 / sent.max(1) as f64),
            peak_rss_mb: None,
            redis_commands: Default::default(),
            notes: Vec::new(),
        },
        latency: Percentiles::of(&mut latencies),
    })
}

/// The paced producer of one latency phase: positions of a fleet sized for `rate`.
struct Pacer<'a> {
    stream: &'a str,
    fleet: Fleet,
    rate: u64,
    clock: Instant,
}

impl<'a> Pacer<'a> {
    fn new(stream: &'a str, rate: u64, clock: Instant) -> Self {
        Pacer {
            stream,
            fleet: Fleet::new(rate),
            rate,
            clock,
        }
    }

    /// Sends for `length` (see [`produce`]); returns how many were sent.
    async fn send_for(
        &mut self,
        conn: &mut MultiplexedConnection,
        length: Duration,
    ) -> anyhow::Result<u64> {
        produce(
            conn,
            self.stream,
            &mut self.fleet,
            self.rate,
            length,
            self.clock,
        )
        .await
    }
}

/// Sends `rate` positions per second for `length`, each stamped in its `correlation_id`
/// with the nanoseconds since `clock` at which its pipeline was sent. Returns how many.
pub async fn produce(
    conn: &mut MultiplexedConnection,
    stream: &str,
    fleet: &mut Fleet,
    rate: u64,
    length: Duration,
    clock: Instant,
) -> anyhow::Result<u64> {
    let total = (rate as f64 * length.as_secs_f64()) as u64;
    let started = Instant::now();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut sent = 0u64;
    while sent < total {
        ticks.tick().await;
        let due = ((rate as f64 * started.elapsed().as_secs_f64()) as u64).min(total);
        if due <= sent {
            continue;
        }
        let payloads: Vec<String> = (sent..due)
            .map(|_| fleet.next_payload(Speeding::Always))
            .collect();
        let stamp = clock.elapsed().as_nanos().to_string();
        let mut pipe = redis::pipe();
        for data in payloads {
            let envelope = crate::fill::envelope(data).with_correlation_id(stamp.clone());
            pipe.xadd(stream, "*", &wire::encode(&envelope)).ignore();
        }
        pipe.query_async::<()>(conn)
            .await
            .with_context(|| format!("XADD to {stream}"))?;
        sent = due;
    }
    Ok(sent)
}

/// Reads `stream` from the start until `total` (once known) alerts have arrived, or
/// [`DRAIN_LIMIT`] after it became known. Returns how many arrived and the latencies of those
/// whose event was sent at or after `measure_from` on `clock`. `arrived_count` follows the
/// count as it grows.
async fn read_alerts(
    conn: MultiplexedConnection,
    stream: String,
    clock: Instant,
    measure_from: Duration,
    total: watch::Receiver<Option<u64>>,
    arrived_count: Arc<AtomicU64>,
) -> anyhow::Result<(u64, Vec<Duration>)> {
    let mut latencies = Vec::new();
    let mut received = 0u64;
    let counted = read_arrivals(conn, &stream, clock, total, |arrived, entry| {
        received += 1;
        arrived_count.store(received, Ordering::Relaxed);
        if let Some(sent) = sent_at(entry).filter(|sent| *sent >= measure_from) {
            latencies.push(arrived.saturating_sub(sent));
        }
        true
    })
    .await?;
    Ok((counted, latencies))
}

/// Reads `stream` from the start and hands every entry to `take` with the time its reply
/// arrived on `clock`, until `total` (once known) entries were counted (`take` says whether
/// an entry counts), or [`DRAIN_LIMIT`] after `total` became known. Returns the count.
pub async fn read_arrivals(
    mut conn: MultiplexedConnection,
    stream: &str,
    clock: Instant,
    total: watch::Receiver<Option<u64>>,
    mut take: impl FnMut(Duration, &StreamId) -> bool,
) -> anyhow::Result<u64> {
    let options = StreamReadOptions::default().count(2_000).block(50);
    let mut after = "0-0".to_owned();
    let mut counted = 0u64;
    let mut give_up_at = None;
    loop {
        let raw: redis::Value = conn
            .xread_options(&[stream], &[&after], &options)
            .await
            .with_context(|| format!("XREAD of {stream}"))?;
        // The arrival time is taken before the reply is turned into entries.
        let arrived = clock.elapsed();
        let reply: Option<StreamReadReply> = redis::from_redis_value(raw)?;
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            if take(arrived, &entry) {
                counted += 1;
            }
            after = entry.id;
        }
        let expected = *total.borrow();
        if let Some(expected) = expected {
            if counted >= expected {
                break;
            }
            let deadline = *give_up_at.get_or_insert_with(|| Instant::now() + DRAIN_LIMIT);
            if Instant::now() > deadline {
                break;
            }
        }
    }
    Ok(counted)
}

/// When the event behind `entry` was sent: the producer's stamp in its correlation id.
pub fn sent_at(entry: &StreamId) -> Option<Duration> {
    entry
        .get::<String>(watchtower_events::FIELD_CORRELATION_ID)
        .and_then(|text| text.parse::<u64>().ok())
        .map(Duration::from_nanos)
}
