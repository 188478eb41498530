//! Taking entries over: from dead consumers (`XAUTOCLAIM` of entries idle longer than
//! `claim_idle_ms`), from this consumer itself for a retry (`XCLAIM`, which counts a delivery),
//! and keeping entries this consumer holds back from looking idle (`XCLAIM … JUSTID`).
//! Also removes consumers that are gone and own nothing.

use std::collections::HashSet;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{RedisResult, Script, Value};

use super::reader::{StreamEntry, fill_delivery_counts, parse_entries, text};

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Claims up to `count` entries of `group` idle longer than `min_idle` (whoever holds them)
/// for `consumer`, with their delivery counts. Entries deleted from the stream while pending
/// are dropped from the group by Redis and not returned.
pub async fn autoclaim<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    group: &str,
    consumer: &str,
    min_idle: Duration,
    count: usize,
) -> RedisResult<Vec<StreamEntry>> {
    let mut claimed = Vec::new();
    let mut cursor = "0-0".to_owned();
    loop {
        let reply: Value = redis::cmd("XAUTOCLAIM")
            .arg(stream)
            .arg(group)
            .arg(consumer)
            .arg(millis(min_idle))
            .arg(&cursor)
            .arg("COUNT")
            .arg(count - claimed.len())
            .query_async(conn)
            .await?;
        let Value::Array(parts) = reply else { break };
        let mut parts = parts.into_iter();
        let next = parts.next().as_ref().and_then(text).unwrap_or_default();
        if let Some(list) = parts.next() {
            parse_entries(list, &mut claimed);
        }
        if next.is_empty() || next == "0-0" || claimed.len() >= count {
            break;
        }
        cursor = next;
    }
    fill_delivery_counts(conn, stream, group, consumer, &mut claimed).await?;
    Ok(claimed)
}

/// Claims `ids` for `consumer` again before a retry, which counts as a delivery (so attempts
/// survive restarts). Returns the ids that were still pending; the others were acknowledged
/// or deleted meanwhile and must not be handled again.
pub async fn claim_for_retry<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    group: &str,
    consumer: &str,
    ids: &[&str],
) -> RedisResult<HashSet<String>> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let reply: Value = redis::cmd("XCLAIM")
        .arg(stream)
        .arg(group)
        .arg(consumer)
        .arg(0)
        .arg(ids)
        .query_async(conn)
        .await?;
    let mut entries = Vec::new();
    parse_entries(reply, &mut entries);
    Ok(entries.into_iter().map(|e| e.id).collect())
}

/// Resets the idle time of `ids` held by `consumer` without counting a delivery, so that
/// entries waiting behind a retry are not taken over by another consumer.
pub async fn touch<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    group: &str,
    consumer: &str,
    ids: &[&str],
) -> RedisResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let _: Value = redis::cmd("XCLAIM")
        .arg(stream)
        .arg(group)
        .arg(consumer)
        .arg(0)
        .arg(ids)
        .arg("JUSTID")
        .query_async(conn)
        .await?;
    Ok(())
}

/// Deletes consumers other than ARGV[2] that own no pending entry and were idle longer than
/// ARGV[3] ms. Checked and deleted in one script, so a consumer cannot gain an entry between
/// the check and the deletion (deleting a consumer drops its pending entries).
const REMOVE_IDLE_CONSUMERS: &str = r#"
local removed = {}
local consumers = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
for _, c in ipairs(consumers) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['name'] ~= ARGV[2] and tonumber(info['pending']) == 0
      and tonumber(info['idle']) > tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed[#removed + 1] = info['name']
  end
end
return removed
"#;

/// Removes the consumers of `group` that own nothing and were idle longer than `grace`
/// (never `me`). Returns their names.
pub async fn remove_idle_consumers<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    group: &str,
    me: &str,
    grace: Duration,
) -> RedisResult<Vec<String>> {
    Script::new(REMOVE_IDLE_CONSUMERS)
        .key(stream)
        .arg(group)
        .arg(me)
        .arg(millis(grace))
        .invoke_async(conn)
        .await
}
