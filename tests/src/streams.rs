//! Stream entries and handler state, the way publishers and operators see them: entries in
//! the wire format going in and coming out, kv hashes read with `HGETALL`.
//!
//! [`publish`] goes through `watchtower_events::wire::encode`, as a Rust service would;
//! [`xadd`] writes field lists spelled out by hand, as redis-cli or a Python service would.
//! Consumer-group state lives in [`crate::groups`].

use std::collections::HashMap;

use redis::aio::MultiplexedConnection;
use redis::streams::StreamRangeReply;
use serde_json::Value;
use watchtower_events::Envelope;

use crate::wait::{PATIENCE, eventually};

/// A fixed timestamp for events built by tests; the host does not care how old an event is.
pub const TIMESTAMP: &str = "2026-12-04T15:09:01.123Z";

/// A UUID-shaped event id, distinct for each `n`.
pub fn event_id(n: u64) -> String {
    format!("0193a5b0-0000-7000-8000-{n:012x}")
}

/// An event a test publishes.
#[derive(Debug, Clone)]
pub struct Event {
    /// The `event_id` field.
    pub event_id: String,
    /// The `event_type` field, which also picks the stream.
    pub event_type: String,
    /// The payload.
    pub data: Value,
    /// The `correlation_id` field, if any.
    pub correlation_id: Option<String>,
}

impl Event {
    /// An event without correlation id.
    pub fn new(event_id: impl Into<String>, event_type: impl Into<String>, data: Value) -> Event {
        Event {
            event_id: event_id.into(),
            event_type: event_type.into(),
            data,
            correlation_id: None,
        }
    }

    /// This event with a correlation id.
    pub fn with_correlation_id(mut self, correlation_id: impl Into<String>) -> Event {
        self.correlation_id = Some(correlation_id.into());
        self
    }

    /// The entry's fields, encoded by `watchtower-events`.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut envelope = Envelope::new(&self.event_id, &self.event_type, self.data.to_string());
        envelope.timestamp = TIMESTAMP.to_owned();
        if let Some(correlation_id) = &self.correlation_id {
            envelope = envelope.with_correlation_id(correlation_id);
        }
        watchtower_events::encode(&envelope)
    }
}

/// Appends `event` to `{ns}:events:{type}`; returns the entry id.
pub async fn publish(con: &mut MultiplexedConnection, ns: &str, event: &Event) -> String {
    let stream = watchtower_events::stream_key(ns, &event.event_type);
    xadd(con, &stream, &event.fields()).await
}

/// Appends all `events` in one pipeline, in order; returns their entry ids.
pub async fn publish_all(
    con: &mut MultiplexedConnection,
    ns: &str,
    events: &[Event],
) -> Vec<String> {
    let mut pipe = redis::pipe();
    for event in events {
        let stream = watchtower_events::stream_key(ns, &event.event_type);
        pipe.cmd("XADD").arg(stream).arg("*").arg(event.fields());
    }
    pipe.query_async(con)
        .await
        .unwrap_or_else(|err| panic!("pipelined XADD of {} events: {err}", events.len()))
}

/// `XADD stream * field value …` with exactly the given fields; returns the entry id.
pub async fn xadd<K: AsRef<str>, V: AsRef<str>>(
    con: &mut MultiplexedConnection,
    stream: &str,
    fields: &[(K, V)],
) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg("*");
    for (field, value) in fields {
        cmd.arg(field.as_ref()).arg(value.as_ref());
    }
    cmd.query_async(con)
        .await
        .unwrap_or_else(|err| panic!("XADD to {stream}: {err}"))
}

/// One stream entry as read back.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The entry id.
    pub id: String,
    /// Its fields.
    pub fields: HashMap<String, String>,
}

impl Entry {
    /// The value of `field`; panics naming the entry if it is missing.
    pub fn field(&self, field: &str) -> &str {
        match self.fields.get(field) {
            Some(value) => value,
            None => panic!(
                "entry {} has no `{field}` field: {:?}",
                self.id, self.fields
            ),
        }
    }

    /// The `data` field parsed as JSON.
    pub fn data(&self) -> Value {
        let text = self.field("data");
        serde_json::from_str(text)
            .unwrap_or_else(|err| panic!("entry {}: `data` is not JSON ({err}): {text}", self.id))
    }
}

/// Every entry of `stream`, oldest first (none if the stream does not exist).
pub async fn entries(con: &mut MultiplexedConnection, stream: &str) -> Vec<Entry> {
    let reply: StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(con)
        .await
        .unwrap_or_else(|err| panic!("XRANGE {stream}: {err}"));
    reply
        .ids
        .into_iter()
        .map(|entry| {
            let fields = entry
                .map
                .iter()
                .map(|(field, value)| {
                    let text = redis::from_redis_value_ref::<String>(value).unwrap_or_else(|err| {
                        panic!(
                            "{stream} {}: field {field} is not a string: {err}",
                            entry.id
                        )
                    });
                    (field.clone(), text)
                })
                .collect();
            Entry {
                id: entry.id,
                fields,
            }
        })
        .collect()
}

/// `XLEN stream` (0 if it does not exist).
pub async fn stream_len(con: &mut MultiplexedConnection, stream: &str) -> usize {
    redis::cmd("XLEN")
        .arg(stream)
        .query_async(con)
        .await
        .unwrap_or_else(|err| panic!("XLEN {stream}: {err}"))
}

/// The keys matching `pattern` (`KEYS`; test servers hold only a test's keys), sorted.
pub async fn keys(con: &mut MultiplexedConnection, pattern: &str) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(con)
        .await
        .unwrap_or_else(|err| panic!("KEYS {pattern}: {err}"));
    keys.sort();
    keys
}

/// A handler's kv state: `HGETALL {ns}:kv:{handler}`.
pub async fn kv(
    con: &mut MultiplexedConnection,
    ns: &str,
    handler: &str,
) -> HashMap<String, String> {
    let key = watchtower_events::kv_key(ns, handler);
    redis::cmd("HGETALL")
        .arg(&key)
        .query_async(con)
        .await
        .unwrap_or_else(|err| panic!("HGETALL {key}: {err}"))
}

/// Waits until field `field` of hash `key` is `value`.
pub async fn wait_for_field(con: &MultiplexedConnection, key: &str, field: &str, value: &str) {
    let what = format!("HGET {key} {field} == {value:?}");
    eventually(PATIENCE, &what, || {
        let mut con = con.clone();
        async move {
            let current: Option<String> = redis::cmd("HGET")
                .arg(key)
                .arg(field)
                .query_async(&mut con)
                .await
                .map_err(|err| format!("HGET: {err}"))?;
            match current {
                Some(current) if current == value => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
}
