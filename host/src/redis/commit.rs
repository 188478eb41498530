//! The commit: a handler's buffered effects and the `XACK` of the entries that produced
//! them, applied as one atomic unit on the Redis server.
//!
//! The unit is a server-side script rather than a bare `MULTI/EXEC` because it can do one
//! thing a transaction cannot: apply an entry's effects only if its `XACK` acknowledged it.
//! If the entry is no longer pending in the group (another consumer took it over and
//! committed first), the script acknowledges nothing and discards the effects, so effects
//! are applied exactly once per entry on one Redis node even when two consumers handled it.
//! Like `MULTI/EXEC`, the script runs without any other command interleaving.
//!
//! On a Redis Cluster the keys of one commit live in several slots; that deployment will
//! swap this for "effects first, then ack" with deterministic event ids behind the same
//! [`Committer::commit`] call.

use redis::aio::ConnectionLike;
use redis::{RedisResult, Script};

use crate::wasm::Effects;

/// Acks the entries and, only where an entry's ack took, applies its effects.
///
/// Entries without effects need no such guard, so they are acknowledged together by one
/// `XACK` (Lua's `unpack` is limited in size, hence the chunks); entries with effects are
/// acknowledged one by one, each gating its own effects.
///
/// KEYS: 1 = source stream, 2 = the handler's kv hash, 3.. = streams published to.
/// ARGV: group, count of plain entries, their ids, count of entries with effects, then per
/// such entry: id, publish count, per publish (key index, field count, fields…), kv op
/// count, per op (`S` key value | `D` key).
/// Returns how many plain entries were acknowledged, then one integer per entry with
/// effects: 1 = committed, 0 = was not pending, nothing applied.
const COMMIT_SCRIPT: &str = r#"
local group = ARGV[1]
local plain = tonumber(ARGV[2])
local acked = 0
local chunk = 1000
for first = 3, 2 + plain, chunk do
  local last = math.min(first + chunk - 1, 2 + plain)
  acked = acked + redis.call('XACK', KEYS[1], group, unpack(ARGV, first, last))
end
local i = 3 + plain
local n = tonumber(ARGV[i])
i = i + 1
local results = {acked}
for e = 1, n do
  local id = ARGV[i]
  local apply = redis.call('XACK', KEYS[1], group, id) == 1
  local pubs = tonumber(ARGV[i + 1])
  i = i + 2
  for p = 1, pubs do
    local key = KEYS[tonumber(ARGV[i])]
    local nf = tonumber(ARGV[i + 1])
    i = i + 2
    if apply then
      redis.call('XADD', key, '*', unpack(ARGV, i, i + nf - 1))
    end
    i = i + nf
  end
  local ops = tonumber(ARGV[i])
  i = i + 1
  for o = 1, ops do
    if ARGV[i] == 'S' then
      if apply then redis.call('HSET', KEYS[2], ARGV[i + 1], ARGV[i + 2]) end
      i = i + 3
    else
      if apply then redis.call('HDEL', KEYS[2], ARGV[i + 1]) end
      i = i + 2
    end
  end
  results[e + 1] = apply and 1 or 0
end
return results
"#;

/// One entry to acknowledge and the effects its successful call produced.
#[derive(Debug)]
pub struct CommitItem<'a> {
    /// The stream entry id.
    pub entry_id: &'a str,
    /// Its buffered effects (empty for an entry that only needs its ack).
    pub effects: &'a Effects,
}

/// Commits effects with acknowledgements for one (handler, stream) pair.
pub struct Committer {
    script: Script,
    stream: String,
    group: String,
    kv_key: String,
}

impl Committer {
    /// A committer for entries of `stream` read through `group`, writing kv to `kv_key`.
    pub fn new(stream: String, group: String, kv_key: String) -> Self {
        Committer {
            script: Script::new(COMMIT_SCRIPT),
            stream,
            group,
            kv_key,
        }
    }

    /// Commits `items` atomically. Returns, per item, whether it was committed (`false`:
    /// the entry was no longer pending, so its effects were dropped). An error means
    /// nothing can be assumed committed; the entries stay pending and are handled again.
    ///
    /// Items without effects are acknowledged together and only their number comes back:
    /// when some of them were no longer pending, the first ones are reported committed and
    /// the rest not. Nothing of theirs is lost either way; only which of them another
    /// consumer acknowledged first is not known.
    pub async fn commit<C: ConnectionLike>(
        &self,
        conn: &mut C,
        items: &[CommitItem<'_>],
    ) -> RedisResult<Vec<bool>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let (guarded, plain): (Vec<_>, Vec<_>) = items
            .iter()
            .enumerate()
            .partition(|(_, item)| !item.effects.is_empty());
        let mut invocation = self.script.prepare_invoke();
        invocation.key(&self.stream).key(&self.kv_key);
        let mut publish_keys: Vec<&str> = Vec::new();
        invocation.arg(&self.group).arg(plain.len());
        for (_, item) in &plain {
            invocation.arg(item.entry_id);
        }
        invocation.arg(guarded.len());
        for (_, item) in &guarded {
            invocation
                .arg(item.entry_id)
                .arg(item.effects.publishes.len());
            for publish in &item.effects.publishes {
                let index = match publish_keys.iter().position(|k| *k == publish.stream) {
                    Some(i) => i,
                    None => {
                        publish_keys.push(&publish.stream);
                        publish_keys.len() - 1
                    }
                };
                // KEYS is 1-based in Lua and the first two are fixed.
                invocation.arg(index + 3).arg(publish.fields.len() * 2);
                for (field, value) in &publish.fields {
                    invocation.arg(field.as_ref()).arg(value);
                }
            }
            invocation.arg(item.effects.kv.len());
            for (key, value) in &item.effects.kv {
                match value {
                    Some(value) => invocation.arg("S").arg(key).arg(value),
                    None => invocation.arg("D").arg(key),
                };
            }
        }
        for key in &publish_keys {
            invocation.key(*key);
        }
        let reply: Vec<i64> = invocation.invoke_async(conn).await?;
        let mut applied = vec![false; items.len()];
        let plain_acked = reply.first().copied().unwrap_or(0);
        for (n, (index, _)) in plain.iter().enumerate() {
            applied[*index] = i64::try_from(n).is_ok_and(|n| n < plain_acked);
        }
        for ((index, _), result) in guarded.iter().zip(reply.iter().skip(1)) {
            applied[*index] = *result == 1;
        }
        Ok(applied)
    }
}
