//! Consumer groups from the outside: creating one and reading without acknowledging (what a
//! host that died leaves behind), and the group state tests assert on, from `XINFO` and
//! `XPENDING`.
//!
//! The `wait_*` helpers wrap [`eventually`] around the checks tests repeat. A group "has
//! finished with" an entry once the entry was delivered and is no longer pending, or is
//! pending on purpose (a failed call); because the host acknowledges in the same transaction
//! that commits a call's effects, those effects are visible by then.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::{
    StreamInfoConsumersReply, StreamInfoGroup, StreamInfoGroupsReply, StreamPendingCountReply,
};

use crate::wait::{PATIENCE, eventually};

/// `XGROUP CREATE stream group start MKSTREAM`, as an operator (or a host that died) would.
pub async fn create_group(con: &mut MultiplexedConnection, stream: &str, group: &str, start: &str) {
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg(start)
        .arg("MKSTREAM")
        .query_async(con)
        .await
        .unwrap_or_else(|err| panic!("XGROUP CREATE {stream} {group} {start}: {err}"));
}

/// `XGROUP CREATECONSUMER stream group consumer`: a consumer that joined the group and was
/// never handed anything (a read that finds nothing new does not register one).
pub async fn create_consumer(
    con: &mut MultiplexedConnection,
    stream: &str,
    group: &str,
    consumer: &str,
) {
    let created: i64 = redis::cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg(stream)
        .arg(group)
        .arg(consumer)
        .query_async(con)
        .await
        .unwrap_or_else(|err| panic!("XGROUP CREATECONSUMER {stream} {group} {consumer}: {err}"));
    assert_eq!(created, 1, "{consumer} is new in {group}");
}

/// `XGROUP DESTROY stream group`: the group and its pending entries are gone, as when an
/// operator deletes it by mistake.
pub async fn destroy_group(con: &mut MultiplexedConnection, stream: &str, group: &str) {
    let destroyed: i64 = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(stream)
        .arg(group)
        .query_async(con)
        .await
        .unwrap_or_else(|err| panic!("XGROUP DESTROY {stream} {group}: {err}"));
    assert_eq!(destroyed, 1, "{group} existed on {stream}");
}

/// `XREADGROUP GROUP group consumer COUNT count STREAMS stream >` without acknowledging: the
/// entries become pending for `consumer`, as if it had died right after reading. Returns
/// their ids.
pub async fn read_without_ack(
    con: &mut MultiplexedConnection,
    stream: &str,
    group: &str,
    consumer: &str,
    count: usize,
) -> Vec<String> {
    let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(stream)
        .arg(">")
        .query_async(con)
        .await
        .unwrap_or_else(|err| panic!("XREADGROUP {group} {consumer} on {stream}: {err}"));
    reply
        .keys
        .into_iter()
        .flat_map(|key| key.ids)
        .map(|entry| entry.id)
        .collect()
}

/// The state of `group` on `stream` from `XINFO GROUPS`; `Err` says what is missing, so it
/// can be a condition of [`eventually`].
pub async fn group_info(
    con: &mut MultiplexedConnection,
    stream: &str,
    group: &str,
) -> Result<StreamInfoGroup, String> {
    let reply: StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(con)
        .await
        .map_err(|err| format!("XINFO GROUPS {stream}: {err}"))?;
    let names: Vec<String> = reply.groups.iter().map(|g| g.name.clone()).collect();
    reply
        .groups
        .into_iter()
        .find(|g| g.name == group)
        .ok_or_else(|| format!("{stream} has no group {group} (groups: {names:?})"))
}

/// The consumers of `group` with their pending counts, sorted by name.
pub async fn consumers(
    con: &mut MultiplexedConnection,
    stream: &str,
    group: &str,
) -> Vec<(String, usize)> {
    let reply: StreamInfoConsumersReply = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(stream)
        .arg(group)
        .query_async(con)
        .await
        .unwrap_or_else(|err| panic!("XINFO CONSUMERS {stream} {group}: {err}"));
    let mut consumers: Vec<(String, usize)> = reply
        .consumers
        .into_iter()
        .map(|c| (c.name, c.pending))
        .collect();
    consumers.sort();
    consumers
}

/// The ids pending in `group` (delivered, not acknowledged), oldest first, with their
/// consumers.
pub async fn pending(
    con: &mut MultiplexedConnection,
    stream: &str,
    group: &str,
) -> Vec<(String, String)> {
    let reply: StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .arg("-")
        .arg("+")
        .arg(100_000)
        .query_async(con)
        .await
        .unwrap_or_else(|err| panic!("XPENDING {stream} {group}: {err}"));
    reply.ids.into_iter().map(|p| (p.id, p.consumer)).collect()
}

/// One pending entry as `XPENDING` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The entry id.
    pub id: String,
    /// The consumer holding it.
    pub consumer: String,
    /// Milliseconds since it was last delivered.
    pub idle_ms: u64,
    /// How often it has been delivered.
    pub deliveries: u64,
}

/// The entries pending in `group` with their owners, idle times and delivery counts,
/// oldest first.
pub async fn pending_details(
    con: &mut MultiplexedConnection,
    stream: &str,
    group: &str,
) -> Vec<Pending> {
    try_pending_details(con, stream, group)
        .await
        .unwrap_or_else(|err| panic!("{err}"))
}

/// [`pending_details`], with a missing group or stream as `Err` rather than a panic.
async fn try_pending_details(
    con: &mut MultiplexedConnection,
    stream: &str,
    group: &str,
) -> Result<Vec<Pending>, String> {
    let reply: StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .arg("-")
        .arg("+")
        .arg(100_000)
        .query_async(con)
        .await
        .map_err(|err| format!("XPENDING {stream} {group}: {err}"))?;
    Ok(reply
        .ids
        .into_iter()
        .map(|p| Pending {
            id: p.id,
            consumer: p.consumer,
            idle_ms: p.last_delivered_ms as u64,
            deliveries: p.times_delivered as u64,
        })
        .collect())
}

/// Waits until entry `id` has been pending in `group` for at least `idle_ms`: a call
/// handling it has been running that long. Returns its state.
pub async fn wait_until_in_flight_for(
    con: &MultiplexedConnection,
    stream: &str,
    group: &str,
    id: &str,
    idle_ms: u64,
) -> Pending {
    let what = format!("entry {id} pending in {group} for {idle_ms} ms");
    eventually(PATIENCE, &what, || {
        let mut con = con.clone();
        async move {
            // The host may not have created the group yet.
            let all = try_pending_details(&mut con, stream, group).await?;
            match all.into_iter().find(|p| p.id == id) {
                Some(p) if p.idle_ms >= idle_ms => Ok(p),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await
}

/// The ids pending in `group`, oldest first.
pub async fn pending_ids(
    con: &mut MultiplexedConnection,
    stream: &str,
    group: &str,
) -> Vec<String> {
    pending(con, stream, group)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

/// Orders entry ids (`ms-seq`) numerically.
pub fn id_key(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    let number = |part: &str| {
        part.parse::<u64>()
            .unwrap_or_else(|_| panic!("not a stream entry id: {id}"))
    };
    (number(ms), number(seq))
}

/// Waits until `group` exists on `stream` (a host creates its groups as it starts).
pub async fn wait_for_group(con: &MultiplexedConnection, stream: &str, group: &str) {
    eventually(PATIENCE, &format!("group {group} on {stream}"), || {
        let mut con = con.clone();
        async move { group_info(&mut con, stream, group).await.map(|_| ()) }
    })
    .await;
}

/// Waits until `group` has been handed every entry up to `last_id` and exactly `expected`
/// are still pending: the host has finished with everything up to `last_id`, the failures
/// staying pending and the rest acknowledged (and, so, committed).
pub async fn wait_for_pending(
    con: &MultiplexedConnection,
    stream: &str,
    group: &str,
    last_id: &str,
    expected: &[String],
) {
    wait_for_pending_within(PATIENCE, con, stream, group, last_id, expected).await;
}

/// [`wait_for_pending`] with a deadline of the caller's choosing, for large batches.
pub async fn wait_for_pending_within(
    deadline: Duration,
    con: &MultiplexedConnection,
    stream: &str,
    group: &str,
    last_id: &str,
    expected: &[String],
) {
    let mut expected = expected.to_vec();
    expected.sort_by_key(|id| id_key(id));
    let what = format!("group {group} on {stream} to reach {last_id} with pending {expected:?}");
    eventually(deadline, &what, || {
        let mut con = con.clone();
        let expected = expected.clone();
        async move {
            // The summary first: cheap, and enough while the host is still busy.
            let info = group_info(&mut con, stream, group).await?;
            if id_key(&info.last_delivered_id) < id_key(last_id) || info.pending != expected.len() {
                return Err(format!(
                    "last delivered {}, {} pending",
                    info.last_delivered_id, info.pending
                ));
            }
            let pending = pending_ids(&mut con, stream, group).await;
            if pending == expected {
                Ok(())
            } else {
                Err(format!("pending {pending:?}"))
            }
        }
    })
    .await;
}

/// Waits until `group` has delivered every entry up to `id` to some consumer (handled or
/// not): the host has read that far.
pub async fn wait_for_delivery(con: &MultiplexedConnection, stream: &str, group: &str, id: &str) {
    let what = format!("group {group} on {stream} to deliver {id}");
    eventually(PATIENCE, &what, || {
        let mut con = con.clone();
        async move {
            let info = group_info(&mut con, stream, group).await?;
            if id_key(&info.last_delivered_id) >= id_key(id) {
                Ok(())
            } else {
                Err(format!("last delivered {}", info.last_delivered_id))
            }
        }
    })
    .await;
}

/// [`wait_until_drained`] with a deadline of the caller's choosing, for large batches.
pub async fn wait_until_drained_within(
    deadline: Duration,
    con: &MultiplexedConnection,
    stream: &str,
    group: &str,
    last_id: &str,
) {
    wait_for_pending_within(deadline, con, stream, group, last_id, &[]).await;
}

/// Waits until `group` has handled and acknowledged every entry up to `last_id`.
pub async fn wait_until_drained(
    con: &MultiplexedConnection,
    stream: &str,
    group: &str,
    last_id: &str,
) {
    wait_for_pending(con, stream, group, last_id, &[]).await;
}
