//! The ceiling: the fastest a plain consumer drains a stream through a consumer group on
//! this machine, with no handler, no decoding beyond redis-rs's reply and no commit beyond
//! the acknowledgement. Every Watchtower figure is a ratio to this one, taken in the same run.
//!
//! Each consumer is one task on a connection of its own doing one round trip per batch: the
//! `XACK` of the batch it just received, pipelined with the `XREADGROUP COUNT 500` of the next.
//! It stops when a read comes back empty.

use std::time::Instant;

use anyhow::{Context as _, ensure};
use redis::AsyncCommands as _;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamReadOptions, StreamReadReply};

use crate::procfs;
use crate::redis_server::RedisServer;
use crate::report::Sample;

/// Entries per `XREADGROUP`.
pub const BATCH: usize = 500;

/// Drains `stream` (holding `events` entries) with `consumers` consumers in the fresh group
/// `group`, and returns how fast that went.
pub async fn run(
    redis: &RedisServer,
    stream: &str,
    group: &str,
    consumers: usize,
    events: u64,
) -> anyhow::Result<Sample> {
    let mut admin = redis.connect().await?;
    let () = admin
        .xgroup_create(stream, group, "0")
        .await
        .with_context(|| format!("creating group {group} on {stream}"))?;
    let mut conns = Vec::with_capacity(consumers);
    for _ in 0..consumers {
        conns.push(redis.connect().await?);
    }

    crate::redis_stats::reset(&mut admin).await?;
    let cpu_before = (procfs::own_cpu_time()?, procfs::cpu_time(redis.pid())?);
    let started = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(n, conn)| {
            let (stream, group) = (stream.to_owned(), group.to_owned());
            tokio::spawn(async move { consume(conn, &stream, &group, &format!("c{n}")).await })
        })
        .collect();
    let mut handled = 0u64;
    for task in futures::future::join_all(tasks).await {
        handled += task.context("ceiling consumer task")??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let own_cpu = procfs::own_cpu_time()?.saturating_sub(cpu_before.0);
    let redis_cpu = procfs::cpu_time(redis.pid())?.saturating_sub(cpu_before.1);

    ensure!(
        handled == events,
        "the ceiling consumers received {handled} entries, the stream holds {events}"
    );
    let pending: redis::streams::StreamPendingReply = admin.xpending(stream, group).await?;
    ensure!(
        pending.count() == 0,
        "{} entries still pending after the ceiling run",
        pending.count()
    );
    let redis_commands = crate::redis_stats::per_event(&mut admin, events).await?;
    let () = admin.xgroup_destroy(stream, group).await?;

    let per_event = |cpu: std::time::Duration| cpu.as_secs_f64() * 1e6 / events as f64;
    Ok(Sample {
        events,
        seconds,
        events_per_sec: events as f64 / seconds,
        cpu_us_per_event: Some(per_event(own_cpu)),
        redis_cpu_us_per_event: Some(per_event(redis_cpu)),
        peak_rss_mb: None,
        redis_commands,
        notes: Vec::new(),
    })
}

/// One consumer's loop; returns how many entries it received.
async fn consume(
    mut conn: MultiplexedConnection,
    stream: &str,
    group: &str,
    name: &str,
) -> anyhow::Result<u64> {
    let options = StreamReadOptions::default().group(group, name).count(BATCH);
    let mut to_ack: Vec<String> = Vec::new();
    let mut received = 0u64;
    loop {
        let mut pipe = redis::pipe();
        if !to_ack.is_empty() {
            pipe.xack(stream, group, &to_ack).ignore();
        }
        pipe.xread_options(&[stream], &[">"], &options);
        let (reply,): (Option<StreamReadReply>,) = pipe.query_async(&mut conn).await?;
        to_ack.clear();
        let entries = reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids);
        for entry in entries {
            to_ack.push(entry.id);
        }
        if to_ack.is_empty() {
            return Ok(received);
        }
        received += to_ack.len() as u64;
    }
}
