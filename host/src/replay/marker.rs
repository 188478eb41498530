//! Committing a replay's effects so that replaying the same entries again applies nothing.
//!
//! Two things make a `--commit` replay safe to repeat or to resume after an interruption:
//!
//! - **A marker per entry.** The hash `{namespace}:replayed:{handler}` has one field per
//!   replayed entry, `{event_type}/{entry_id}`, whose value is the component version that
//!   replayed it. The script below sets the marker with `HSETNX` and applies the entry's
//!   effects only if the marker was new, all in one atomic step, so two replays of the same
//!   range (even running at the same time) apply each entry's effects once. The marker takes
//!   the place the `XACK` has in the live commit: the live group is never touched.
//! - **Deterministic event ids.** An event a replayed call publishes gets an id derived from
//!   the handler, the source stream, the source entry and its position among the call's
//!   publishes (UUID v5), instead of a fresh UUID v7, plus the metadata `replay_of` naming
//!   the source entry. Consumers that drop duplicate event ids thus drop a second copy even
//!   where the marker cannot help (its hash was deleted, or on a cluster, see below).
//!
//! Like the live commit, the script touches keys in several hash slots; on a Redis Cluster
//! it becomes "effects first, then marker", with the deterministic ids as the guard.

use std::borrow::Cow;

use redis::aio::ConnectionLike;
use redis::{RedisResult, Script};
use uuid::Uuid;
use watchtower_events::wire;

use crate::wasm::{Effects, PendingPublish};

/// Namespace of the UUID v5 ids of events published by replays.
const REPLAY_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5e1d_c0de_7a2b_4c1e_9f3a_77d0_aa41_b6e2);

/// Metadata key naming the entry a replayed call was handling when it published an event.
pub const META_REPLAY_OF: &str = "replay_of";

/// The hash of replay markers of `handler`.
pub fn replayed_key(namespace: &str, handler: &str) -> String {
    format!("{namespace}:replayed:{handler}")
}

/// The marker field of one source entry.
pub fn marker_field(event_type: &str, entry_id: &str) -> String {
    format!("{event_type}/{entry_id}")
}

/// The id of the `index`-th event (from 0) that `handler` publishes while replaying entry
/// `entry_id` of `stream`: the same on every replay of that entry.
pub fn replay_event_id(handler: &str, stream: &str, entry_id: &str, index: usize) -> String {
    let name = format!("{handler}\n{stream}\n{entry_id}\n{index}");
    Uuid::new_v5(&REPLAY_ID_NAMESPACE, name.as_bytes()).to_string()
}

/// `effects` with every published event renamed to its replay id and tagged `replay_of`.
///
/// The guest saw the id `publish` returned during the call; only the committed copy carries
/// the replay id. Entries that are not events in the wire format (none are published by a
/// call) are left as they are.
pub fn with_replay_ids(
    mut effects: Effects,
    namespace: &str,
    handler: &str,
    stream: &str,
    entry_id: &str,
) -> Effects {
    for (index, publish) in effects.publishes.iter_mut().enumerate() {
        let Ok(mut envelope) = wire::decode(&publish.fields, None) else {
            continue;
        };
        envelope.event_id = replay_event_id(handler, stream, entry_id, index);
        envelope
            .metadata
            .insert(META_REPLAY_OF.to_owned(), format!("{stream}/{entry_id}"));
        *publish = PendingPublish::event(namespace, &envelope);
    }
    effects
}

/// Which of `fields` are already marked in `key`, in order.
pub async fn already_replayed<C: ConnectionLike>(
    conn: &mut C,
    key: &str,
    fields: &[String],
) -> RedisResult<Vec<bool>> {
    if fields.is_empty() {
        return Ok(Vec::new());
    }
    let values: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(key)
        .arg(fields)
        .query_async(conn)
        .await?;
    Ok(values.into_iter().map(|v| v.is_some()).collect())
}

/// Marks entries and applies the effects of those whose marker is new.
///
/// KEYS: 1 = marker hash, 2 = the handler's kv hash, 3.. = streams published to.
/// ARGV: marker value, entry count, then per entry: marker field, publish count, per publish
/// (index into KEYS, field count, fields…), kv op count, per op (`S` key value | `D` key).
/// Returns one integer per entry: 1 = applied now, 0 = marked before, nothing applied.
const MARK_AND_APPLY: &str = r"
local marker_value = ARGV[1]
local at = 3

local function take()
  local value = ARGV[at]
  at = at + 1
  return value
end

local results = {}
for e = 1, tonumber(ARGV[2]) do
  local fresh = redis.call('HSETNX', KEYS[1], take(), marker_value) == 1
  for _ = 1, tonumber(take()) do
    local stream = KEYS[tonumber(take())]
    local fields = {}
    for _ = 1, tonumber(take()) do
      fields[#fields + 1] = take()
    end
    if fresh then
      redis.call('XADD', stream, '*', unpack(fields))
    end
  end
  for _ = 1, tonumber(take()) do
    local op, name = take(), take()
    if op == 'S' then
      local value = take()
      if fresh then redis.call('HSET', KEYS[2], name, value) end
    elseif fresh then
      redis.call('HDEL', KEYS[2], name)
    end
  end
  results[e] = fresh and 1 or 0
end
return results
";

/// One replayed entry whose call succeeded: its marker field and its effects.
#[derive(Debug)]
pub struct Marked {
    /// [`marker_field`] of the entry.
    pub field: String,
    /// What the call asked to do, with replay ids.
    pub effects: Effects,
}

/// Commits replayed entries of one handler.
pub struct MarkerCommitter {
    script: Script,
    markers: String,
    kv_key: String,
    version: String,
}

impl MarkerCommitter {
    /// Marks in `markers`, writes kv to `kv_key`; markers hold `version`.
    pub fn new(markers: String, kv_key: String, version: String) -> Self {
        MarkerCommitter {
            script: Script::new(MARK_AND_APPLY),
            markers,
            kv_key,
            version,
        }
    }

    /// Marks every entry of `batch` and applies the effects of those not marked before, in
    /// one atomic step. Returns, per entry, whether its effects were applied.
    pub async fn commit<C: ConnectionLike>(
        &self,
        conn: &mut C,
        batch: &[Marked],
    ) -> RedisResult<Vec<bool>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut streams: Vec<&str> = Vec::new();
        let mut invocation = self.script.prepare_invoke();
        invocation.key(&self.markers).key(&self.kv_key);
        invocation.arg(&self.version).arg(batch.len());
        for marked in batch {
            invocation
                .arg(&marked.field)
                .arg(marked.effects.publishes.len());
            for publish in &marked.effects.publishes {
                let slot = streams
                    .iter()
                    .position(|s| *s == publish.stream)
                    .unwrap_or_else(|| {
                        streams.push(&publish.stream);
                        streams.len() - 1
                    });
                // Lua's KEYS is 1-based and its first two are the hashes.
                invocation.arg(slot + 3).arg(publish.fields.len() * 2);
                for (name, value) in &publish.fields {
                    invocation.arg(Cow::as_ref(name)).arg(value);
                }
            }
            invocation.arg(marked.effects.kv.len());
            for (name, value) in &marked.effects.kv {
                match value {
                    Some(value) => invocation.arg("S").arg(name).arg(value),
                    None => invocation.arg("D").arg(name),
                };
            }
        }
        for stream in streams {
            invocation.key(stream);
        }
        let applied: Vec<i64> = invocation.invoke_async(conn).await?;
        Ok(applied.into_iter().map(|n| n == 1).collect())
    }
}

#[cfg(test)]
mod tests {
    use watchtower_events::{Envelope, FIELD_EVENT_ID, FIELD_METADATA};

    use super::*;

    #[test]
    fn replay_ids_are_stable_and_distinct() {
        let a = replay_event_id("speed-alert", "ns:events:position.updated", "1-0", 0);
        assert_eq!(
            a,
            replay_event_id("speed-alert", "ns:events:position.updated", "1-0", 0)
        );
        for other in [
            replay_event_id("speed-alert", "ns:events:position.updated", "1-0", 1),
            replay_event_id("speed-alert", "ns:events:position.updated", "2-0", 0),
            replay_event_id("trip-tracker", "ns:events:position.updated", "1-0", 0),
        ] {
            assert_ne!(a, other);
        }
        assert_eq!(Uuid::parse_str(&a).map(|u| u.get_version_num()), Ok(5));
    }

    #[test]
    fn published_events_get_replay_ids_and_name_their_source() {
        let envelope = Envelope::new("live-id", "alert.triggered", "{}");
        let effects = Effects {
            publishes: vec![PendingPublish::event("ns", &envelope)],
            kv: Default::default(),
        };
        let stream = "ns:events:position.updated";
        let renamed = with_replay_ids(effects, "ns", "speed-alert", stream, "7-0");
        let publish = &renamed.publishes[0];
        assert_eq!(publish.stream, "ns:events:alert.triggered");
        let field = |name: &str| {
            publish
                .fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let expected = replay_event_id("speed-alert", stream, "7-0", 0);
        assert_eq!(publish.event_id, expected);
        assert_eq!(field(FIELD_EVENT_ID), Some(expected));
        let metadata = field(FIELD_METADATA).unwrap_or_default();
        assert!(metadata.contains(r#""replay_of":"ns:events:position.updated/7-0""#));
    }
}
