//! A snapshot of the event streams of a namespace: length, and per consumer group its
//! consumers, pending entries and lag. Used by `watchtower status` (and the demo).

use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};
use serde::Serialize;

use crate::redis::reader::text;

/// One stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamStatus {
    /// Stream key.
    pub stream: String,
    /// Entries in the stream (`XLEN`).
    pub length: u64,
    /// Its consumer groups.
    pub groups: Vec<GroupStatus>,
}

/// One consumer group of a stream.
#[derive(Debug, Clone, Serialize)]
pub struct GroupStatus {
    /// Group name.
    pub name: String,
    /// Consumers that joined it.
    pub consumers: u64,
    /// Entries delivered but not acknowledged.
    pub pending: u64,
    /// Entries not yet delivered to the group; `None` when Redis cannot tell (after
    /// deletions or trimming).
    pub lag: Option<u64>,
    /// Id of the last entry delivered to the group.
    pub last_delivered_id: String,
}

/// The status of every stream matching `{namespace}:events:*`, sorted by key.
pub async fn collect<C: ConnectionLike>(
    conn: &mut C,
    namespace: &str,
) -> RedisResult<Vec<StreamStatus>> {
    let pattern = format!("{namespace}:events:*");
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .arg("TYPE")
            .arg("stream")
            .query_async(conn)
            .await?;
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();

    let mut out = Vec::with_capacity(keys.len());
    for stream in keys {
        let length: u64 = redis::cmd("XLEN").arg(&stream).query_async(conn).await?;
        let groups: Value = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&stream)
            .query_async(conn)
            .await?;
        out.push(StreamStatus {
            stream,
            length,
            groups: parse_groups(groups),
        });
    }
    Ok(out)
}

/// `XINFO GROUPS` replies with one flat `[name, value, …]` array (RESP2) or map per group.
fn parse_groups(reply: Value) -> Vec<GroupStatus> {
    let Value::Array(groups) = reply else {
        return Vec::new();
    };
    groups
        .into_iter()
        .map(|group| {
            let pairs: Vec<(Value, Value)> = match group {
                Value::Array(flat) => {
                    let mut it = flat.into_iter();
                    std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
                }
                Value::Map(map) => map,
                _ => Vec::new(),
            };
            let mut status = GroupStatus {
                name: String::new(),
                consumers: 0,
                pending: 0,
                lag: None,
                last_delivered_id: String::new(),
            };
            for (key, value) in pairs {
                let key = text(&key).unwrap_or_default();
                match key.as_str() {
                    "name" => status.name = text(&value).unwrap_or_default(),
                    "consumers" => status.consumers = as_u64(&value).unwrap_or(0),
                    "pending" => status.pending = as_u64(&value).unwrap_or(0),
                    "lag" => status.lag = as_u64(&value),
                    "last-delivered-id" => {
                        status.last_delivered_id = text(&value).unwrap_or_default()
                    }
                    _ => {}
                }
            }
            status
        })
        .collect()
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        _ => text(v).and_then(|s| s.parse().ok()),
    }
}
