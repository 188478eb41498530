//! Everything a namespace holds in Redis, as text that two snapshots can be compared by: how
//! a test shows that something (a dry run, a refused reload) committed nothing.
//!
//! A snapshot has every stream with its entries, its groups (position, pending entries and
//! who holds them, consumers), and every hash with its fields. Idle times are left out: they
//! change on their own.

use std::collections::BTreeMap;

use redis::aio::MultiplexedConnection;
use redis::streams::StreamInfoGroupsReply;

use crate::groups::{consumers, pending};
use crate::streams::{entries, keys};

/// Key → what it holds, rendered as text.
pub type Snapshot = BTreeMap<String, String>;

/// Takes a snapshot of every key under `{ns}:`.
pub async fn snapshot(con: &mut MultiplexedConnection, ns: &str) -> Snapshot {
    let mut state = Snapshot::new();
    for key in keys(con, &format!("{ns}:*")).await {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(con)
            .await
            .unwrap_or_else(|err| panic!("TYPE {key}: {err}"));
        let text = match kind.as_str() {
            "stream" => stream_state(con, &key).await,
            "hash" => {
                let fields: BTreeMap<String, String> = redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(con)
                    .await
                    .unwrap_or_else(|err| panic!("HGETALL {key}: {err}"));
                format!("{fields:?}")
            }
            other => format!("a {other}"),
        };
        state.insert(key, text);
    }
    state
}

async fn stream_state(con: &mut MultiplexedConnection, stream: &str) -> String {
    let mut text = String::new();
    for entry in entries(con, stream).await {
        let fields: BTreeMap<&String, &String> = entry.fields.iter().collect();
        text.push_str(&format!("{} {fields:?}\n", entry.id));
    }
    let groups: StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(con)
        .await
        .unwrap_or_else(|err| panic!("XINFO GROUPS {stream}: {err}"));
    for group in groups.groups {
        text.push_str(&format!(
            "group {}: last delivered {}, entries read {:?}, pending {:?}, consumers {:?}\n",
            group.name,
            group.last_delivered_id,
            group.entries_read,
            pending(con, stream, &group.name).await,
            consumers(con, stream, &group.name).await,
        ));
    }
    text
}

/// Panics listing the keys that differ unless `before` and `after` are the same.
pub fn assert_unchanged(before: &Snapshot, after: &Snapshot, what: &str) {
    let mut differences = Vec::new();
    for key in before
        .keys()
        .chain(after.keys().filter(|k| !before.contains_key(*k)))
    {
        let (was, is) = (before.get(key), after.get(key));
        if was != is {
            differences.push(format!("{key}:\n  before: {was:?}\n  after:  {is:?}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{what} changed Redis:\n{}",
        differences.join("\n")
    );
}
