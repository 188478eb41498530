//! The stream figures of `GET /metrics`, read from Redis by one task on an interval: each
//! consumed stream's length, its group's pending entries, lag and oldest pending entry's idle
//! time, and each handler's dead letters.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use redis::RedisResult;
use redis::aio::ConnectionManager;
use redis::streams::{StreamInfoGroupsReply, StreamPendingCountReply};
use tokio_util::sync::CancellationToken;
use watchtower_events::{dlq_key, stream_key};

use super::{GroupLabels, HandlerLabels, Metrics, StreamLabels, lock};
use crate::redis::dlq::redrive_key;
use crate::registry::{HandlerEntry, HandlerRegistry};

impl Metrics {
    /// Replaces every Redis-side gauge with `figures`: streams and groups that are no
    /// longer consumed (a handler removed by a config reload) disappear.
    fn refill_redis_figures(&self, figures: RedisFigures) {
        let _refill = lock(&self.refill);
        self.stream_length.clear();
        self.group_pending.clear();
        self.group_lag.clear();
        self.group_oldest_idle.clear();
        self.dead_letters.clear();
        for (stream, length) in figures.streams {
            self.stream_length
                .get_or_create(&StreamLabels { stream })
                .set(gauge_value(length));
        }
        for group in figures.groups {
            let labels = GroupLabels {
                stream: group.stream,
                group: group.group,
            };
            self.group_pending
                .get_or_create(&labels)
                .set(gauge_value(group.pending));
            if let Some(lag) = group.lag {
                self.group_lag.get_or_create(&labels).set(gauge_value(lag));
            }
            self.group_oldest_idle
                .get_or_create(&labels)
                .set(group.oldest_idle.as_secs_f64());
        }
        for (handler, letters) in figures.dead_letters {
            self.dead_letters
                .get_or_create(&HandlerLabels {
                    handler: handler.into(),
                })
                .set(gauge_value(letters));
        }
    }
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What one poll read from Redis.
#[derive(Debug, Default)]
struct RedisFigures {
    streams: Vec<(String, u64)>,
    groups: Vec<GroupFigures>,
    dead_letters: Vec<(String, u64)>,
}

#[derive(Debug)]
struct GroupFigures {
    stream: String,
    group: String,
    pending: u64,
    lag: Option<u64>,
    oldest_idle: Duration,
}

/// Reads the stream figures of the handlers in `registry` every `interval` until `cancel`
/// fires: each consumed stream's length, its group's pending count, lag and oldest pending
/// entry's idle time, and each handler's dead-letter count. A Redis outage is logged once;
/// the last figures stay until a poll succeeds again.
pub async fn poll_redis(
    metrics: Arc<Metrics>,
    registry: Arc<HandlerRegistry>,
    mut conn: ConnectionManager,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let handlers = registry.list();
        let read = tokio::select! {
            _ = cancel.cancelled() => return,
            read = read_figures(&mut conn, &handlers) => read,
        };
        match read {
            Ok(figures) => {
                if failing {
                    tracing::info!("metrics: reading stream figures from Redis again");
                    failing = false;
                }
                metrics.refill_redis_figures(figures);
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(
                        "metrics: cannot read stream figures from Redis, keeping the last \
                         ones: {error}"
                    );
                    failing = true;
                }
            }
        }
    }
}

/// The figures of every stream and group `handlers` consume. A stream or group that does
/// not exist yet (Redis answers with an error reply) is left out; a failed connection
/// fails the whole poll.
async fn read_figures(
    conn: &mut ConnectionManager,
    handlers: &[Arc<HandlerEntry>],
) -> RedisResult<RedisFigures> {
    let mut figures = RedisFigures::default();
    let mut streams_seen = BTreeSet::new();
    let mut groups_seen = BTreeSet::new();
    for handler in handlers {
        let namespace = &handler.context.namespace;
        let group = &handler.config.group;
        let streams = handler
            .config
            .events
            .iter()
            .map(|event_type| stream_key(namespace, event_type))
            .chain([redrive_key(namespace, handler.name())]);
        for stream in streams {
            if streams_seen.insert(stream.clone()) {
                let length: u64 = redis::cmd("XLEN").arg(&stream).query_async(conn).await?;
                figures.streams.push((stream.clone(), length));
            }
            if groups_seen.insert((stream.clone(), group.clone()))
                && let Some(found) = absent_if_missing(group_figures(conn, &stream, group).await)?
            {
                figures.groups.push(found);
            }
        }
        let letters: u64 = redis::cmd("XLEN")
            .arg(dlq_key(namespace, handler.name()))
            .query_async(conn)
            .await?;
        figures
            .dead_letters
            .push((handler.name().to_owned(), letters));
    }
    Ok(figures)
}

/// `XINFO GROUPS` for the group's pending count and lag, and the extended `XPENDING` for
/// the idle time of its oldest pending entry; `None` if the group is not there (yet).
async fn group_figures(
    conn: &mut ConnectionManager,
    stream: &str,
    group: &str,
) -> RedisResult<Option<GroupFigures>> {
    let info: StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(conn)
        .await?;
    let Some(found) = info.groups.into_iter().find(|g| g.name == group) else {
        return Ok(None);
    };
    let oldest_idle = if found.pending > 0 {
        let oldest: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(stream)
            .arg(group)
            .arg("-")
            .arg("+")
            .arg(1)
            .query_async(conn)
            .await?;
        oldest.ids.first().map_or(Duration::ZERO, |entry| {
            Duration::from_millis(u64::try_from(entry.last_delivered_ms).unwrap_or(u64::MAX))
        })
    } else {
        Duration::ZERO
    };
    Ok(Some(GroupFigures {
        stream: stream.to_owned(),
        group: group.to_owned(),
        pending: u64::try_from(found.pending).unwrap_or(u64::MAX),
        lag: found.lag.and_then(|lag| u64::try_from(lag).ok()),
        oldest_idle,
    }))
}

/// A reply error from the server (no such stream or group) means "nothing to report";
/// anything else (a dropped connection, a timeout) is a failed poll.
fn absent_if_missing<T>(result: RedisResult<Option<T>>) -> RedisResult<Option<T>> {
    match result {
        Err(error) if error.code().is_some() => Ok(None),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(metrics: &Metrics) -> String {
        metrics.encode(&[]).unwrap()
    }

    #[test]
    fn redis_figures_replace_the_previous_ones() {
        let metrics = Metrics::new();
        let group = |stream: &str, lag| GroupFigures {
            stream: stream.into(),
            group: "g".into(),
            pending: 2,
            lag,
            oldest_idle: Duration::from_millis(1500),
        };
        metrics.refill_redis_figures(RedisFigures {
            streams: vec![("ns:events:a.b".into(), 7)],
            groups: vec![group("ns:events:a.b", Some(3))],
            dead_letters: vec![("h".into(), 1)],
        });
        let text = text(&metrics);
        assert!(
            text.contains(r#"watchtower_stream_length{stream="ns:events:a.b"} 7"#),
            "{text}"
        );
        assert!(
            text.contains(r#"watchtower_group_lag{stream="ns:events:a.b",group="g"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"watchtower_group_oldest_pending_idle_seconds{stream="ns:events:a.b",group="g"} 1.5"#),
            "{text}"
        );
        assert!(
            text.contains(r#"watchtower_dead_letters{handler="h"} 1"#),
            "{text}"
        );

        metrics.refill_redis_figures(RedisFigures {
            streams: vec![("ns:events:c.d".into(), 0)],
            groups: vec![group("ns:events:c.d", None)],
            dead_letters: Vec::new(),
        });
        let text = self::text(&metrics);
        assert!(!text.contains("a.b"), "{text}");
        assert!(
            !text.contains("watchtower_group_lag{"),
            "lag absent when unknown: {text}"
        );
        assert!(
            text.contains(r#"watchtower_group_pending{stream="ns:events:c.d",group="g"} 2"#),
            "{text}"
        );
    }
}
