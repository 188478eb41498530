//! `XREADGROUP`: the consumer's own pending entries (after a given id) or new entries, parsed
//! straight from the reply so that field order and duplicates survive for the wire decoder.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};

/// One stream entry as read.
#[derive(Debug, Clone)]
pub struct StreamEntry {
    /// Entry id, e.g. `1733325000000-0`.
    pub id: String,
    /// Field/value pairs in stream order; `None` when the entry was deleted (`XDEL`) while
    /// it was pending.
    pub fields: Option<Vec<(String, Vec<u8>)>>,
    /// How many times the group has delivered this entry, this delivery included.
    pub delivery_count: u32,
}

impl StreamEntry {
    /// Bytes of all field names and values (the size `max_entry_bytes` limits).
    pub fn size(&self) -> usize {
        self.fields
            .iter()
            .flatten()
            .map(|(k, v)| k.len() + v.len())
            .sum()
    }
}

/// Which entries to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadFrom {
    /// This consumer's pending entries with ids greater than the given one (`0` = all).
    OwnPending(String),
    /// Entries never delivered to the group (`>`), waiting up to the given time for some
    /// (`None`: answer at once).
    New(Option<Duration>),
}

/// Reads up to `count` entries of `stream` for `consumer` in `group`.
pub async fn read_group<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    group: &str,
    consumer: &str,
    from: &ReadFrom,
    count: usize,
) -> RedisResult<Vec<StreamEntry>> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count);
    if let ReadFrom::New(Some(block)) = from {
        // BLOCK 0 would wait forever.
        let ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1);
        cmd.arg("BLOCK").arg(ms);
    }
    cmd.arg("STREAMS").arg(stream);
    match from {
        ReadFrom::OwnPending(after) => cmd.arg(after.as_str()),
        ReadFrom::New(_) => cmd.arg(">"),
    };
    let reply: Value = cmd.query_async(conn).await?;
    let mut entries = parse_reply(reply);
    if let ReadFrom::OwnPending(_) = from {
        fill_delivery_counts(conn, stream, group, consumer, &mut entries).await?;
    }
    Ok(entries)
}

/// Re-read or claimed entries may have been delivered before; ask `XPENDING` how often.
/// New entries are on their first delivery.
pub(crate) async fn fill_delivery_counts<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    group: &str,
    consumer: &str,
    entries: &mut [StreamEntry],
) -> RedisResult<()> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(());
    };
    let reply: Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .arg(&first.id)
        .arg(&last.id)
        .arg(entries.len())
        .arg(consumer)
        .query_async(conn)
        .await?;
    let mut counts = HashMap::new();
    if let Value::Array(rows) = reply {
        for row in rows {
            if let Value::Array(cols) = row
                && let [id, _consumer, _idle, Value::Int(count), ..] = cols.as_slice()
                && let Some(id) = text(id)
            {
                counts.insert(id, u32::try_from(*count).unwrap_or(u32::MAX));
            }
        }
    }
    for entry in entries {
        if let Some(count) = counts.get(&entry.id) {
            entry.delivery_count = *count;
        }
    }
    Ok(())
}

/// `[[stream, [[id, [f, v, …]] | [id, nil], …]]]` (RESP2) or the RESP3 map form.
fn parse_reply(reply: Value) -> Vec<StreamEntry> {
    let streams = match reply {
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|s| match s {
                Value::Array(mut kv) if kv.len() == 2 => kv.pop(),
                _ => None,
            })
            .collect::<Vec<_>>(),
        Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
        _ => Vec::new(),
    };
    let mut entries = Vec::new();
    for stream in streams {
        parse_entries(stream, &mut entries);
    }
    entries
}

/// `[[id, [f, v, …]] | [id, nil], …]`, appended to `entries`.
pub(crate) fn parse_entries(list: Value, entries: &mut Vec<StreamEntry>) {
    let Value::Array(items) = list else {
        return;
    };
    entries.reserve(items.len());
    for item in items {
        let Value::Array(parts) = item else { continue };
        let mut parts = parts.into_iter();
        let Some(id) = parts.next().and_then(into_text) else {
            continue;
        };
        let fields = match parts.next() {
            Some(Value::Array(flat)) => Some(pairs(flat)),
            Some(Value::Map(map)) => Some(
                map.into_iter()
                    .filter_map(|(k, v)| Some((into_text(k)?, bytes(v)?)))
                    .collect(),
            ),
            _ => None,
        };
        entries.push(StreamEntry {
            id,
            fields,
            delivery_count: 1,
        });
    }
}

fn pairs(flat: Vec<Value>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        if let (Some(k), Some(v)) = (into_text(k), bytes(v)) {
            out.push((k, v));
        }
    }
    out
}

pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        // Field names and ids are ASCII in practice: check once, copy once.
        Value::BulkString(b) => Some(match std::str::from_utf8(b) {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(b).into_owned(),
        }),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// Like [`text`], taking the reply's own buffer: no copy when it is UTF-8, as names and ids
/// are.
fn into_text(v: Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(
            String::from_utf8(b)
                .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned()),
        ),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_entries_and_deleted_entries() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![bulk("a"), bulk("1"), bulk("a"), bulk("2")]),
                ]),
                Value::Array(vec![bulk("2-0"), Value::Nil]),
            ]),
        ])]);
        let entries = parse_reply(reply);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, "1-0");
        let fields = entries[0].fields.as_ref().unwrap();
        assert_eq!(fields.len(), 2, "duplicate fields are kept for the decoder");
        assert_eq!(fields[1], ("a".to_owned(), b"2".to_vec()));
        assert!(entries[1].fields.is_none());
    }

    #[test]
    fn an_empty_read_is_no_entries() {
        assert!(parse_reply(Value::Nil).is_empty());
    }
}
