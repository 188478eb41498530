//! Dead letters: the shape of a dead-letter entry, and what operators do with them (list,
//! show, re-drive, purge).
//!
//! The dead letters of handler `H` live in the stream `{ns}:dlq:{H}`. An entry there is the
//! original entry's fields, verbatim and in order, followed by six `dlq_*` fields saying why,
//! where from and when ([`dead_letter_fields`]). Fields of the original whose names start
//! with `dlq_` or `redrive_` are dropped, so an entry that dies twice carries one set of
//! bookkeeping fields, not two.
//!
//! Re-driving must reach `H` only: other consumer groups on the original stream have handled
//! the event already. So a re-driven entry goes to `H`'s private stream `{ns}:redrive:{H}`
//! ([`redrive_key`]), which `H`'s consumer reads with its group and dispatches by the entry's
//! own `event_type`. A re-drive entry is the original fields plus `redrive_stream` and
//! `redrive_dlq_id` ([`redrive_fields`]). Each entry moves in one `MULTI/EXEC` (`XADD` to the
//! re-drive stream, `XDEL` from the dead-letter stream), so it is never in both or neither.

use redis::aio::ConnectionLike;
use redis::{RedisError, Value};
use serde::{Serialize, Serializer};
use watchtower_events::{FIELD_EVENT_ID, FIELD_EVENT_TYPE, dlq_key, now_rfc3339};

use super::reader::parse_entries;

/// Why the entry was dead-lettered, e.g. `rejected: unknown trip`.
pub const FIELD_DLQ_REASON: &str = "dlq_reason";
/// The handler that gave up on the entry.
pub const FIELD_DLQ_HANDLER: &str = "dlq_handler";
/// The stream the entry was read from.
pub const FIELD_DLQ_STREAM: &str = "dlq_stream";
/// The entry's id in that stream.
pub const FIELD_DLQ_ID: &str = "dlq_id";
/// How many times the entry was delivered, in decimal.
pub const FIELD_DLQ_ATTEMPTS: &str = "dlq_attempts";
/// When it was dead-lettered (RFC 3339 UTC).
pub const FIELD_DLQ_AT: &str = "dlq_at";
/// On a re-drive entry: the stream the event originally came from.
pub const FIELD_REDRIVE_STREAM: &str = "redrive_stream";
/// On a re-drive entry: the event's entry id in `redrive_stream`.
pub const FIELD_REDRIVE_ID: &str = "redrive_id";
/// On a re-drive entry: the id the dead letter had in the dead-letter stream.
pub const FIELD_REDRIVE_DLQ_ID: &str = "redrive_dlq_id";

/// Fields starting with this are dead-letter bookkeeping, never part of an event.
const DLQ_PREFIX: &str = "dlq_";
/// Fields starting with this are re-drive bookkeeping, never part of an event.
const REDRIVE_PREFIX: &str = "redrive_";
/// Entries read per `XRANGE` when re-driving a whole dead-letter stream.
const BATCH: usize = 100;

/// The re-drive stream of the handler named `handler`: `{namespace}:redrive:{handler}`.
pub fn redrive_key(namespace: &str, handler: &str) -> String {
    format!("{namespace}:redrive:{handler}")
}

/// The fields of the dead letter for `original`, an entry of `stream` with id `entry_id`
/// that `handler` gave up on after `attempts` deliveries: the original fields in order
/// (minus any `dlq_*`/`redrive_*` ones), then the six `dlq_*` fields.
pub fn dead_letter_fields(
    original: &[(String, Vec<u8>)],
    reason: &str,
    handler: &str,
    stream: &str,
    entry_id: &str,
    attempts: u32,
) -> Vec<(String, Vec<u8>)> {
    let mut fields: Vec<(String, Vec<u8>)> = original
        .iter()
        .filter(|(name, _)| !is_bookkeeping(name))
        .cloned()
        .collect();
    let attempts = attempts.to_string();
    let at = now_rfc3339();
    for (name, value) in [
        (FIELD_DLQ_REASON, reason),
        (FIELD_DLQ_HANDLER, handler),
        (FIELD_DLQ_STREAM, stream),
        (FIELD_DLQ_ID, entry_id),
        (FIELD_DLQ_ATTEMPTS, attempts.as_str()),
        (FIELD_DLQ_AT, at.as_str()),
    ] {
        fields.push((name.to_owned(), value.as_bytes().to_vec()));
    }
    fields
}

/// The fields of the re-drive entry for `letter`: its original fields, then where it came
/// from (`redrive_stream`, `redrive_id`) and which dead letter it was (`redrive_dlq_id`).
pub fn redrive_fields(letter: &DeadLetter) -> Vec<(String, Vec<u8>)> {
    let mut fields: Vec<(String, Vec<u8>)> = letter
        .fields
        .iter()
        .filter(|(name, _)| !is_bookkeeping(name))
        .cloned()
        .collect();
    fields.push((
        FIELD_REDRIVE_STREAM.to_owned(),
        letter.stream.as_bytes().to_vec(),
    ));
    fields.push((
        FIELD_REDRIVE_ID.to_owned(),
        letter.source_id.as_bytes().to_vec(),
    ));
    fields.push((
        FIELD_REDRIVE_DLQ_ID.to_owned(),
        letter.id.as_bytes().to_vec(),
    ));
    fields
}

fn is_bookkeeping(name: &str) -> bool {
    name.starts_with(DLQ_PREFIX) || name.starts_with(REDRIVE_PREFIX)
}

/// One dead letter as read back from `{ns}:dlq:{handler}`.
///
/// A bookkeeping field missing from the entry (one written by hand) reads as empty, or 0
/// attempts; the entry is still listed and can still be re-driven or purged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// Its id in the dead-letter stream.
    pub id: String,
    /// Why it was dead-lettered (`dlq_reason`).
    pub reason: String,
    /// The handler that gave up on it (`dlq_handler`).
    pub handler: String,
    /// The stream it was read from (`dlq_stream`).
    pub stream: String,
    /// Its id in that stream (`dlq_id`).
    pub source_id: String,
    /// How many times it was delivered (`dlq_attempts`).
    pub attempts: u32,
    /// When it was dead-lettered (`dlq_at`, RFC 3339 UTC).
    pub at: String,
    /// The original `event_type` field, if it had one.
    pub event_type: Option<String>,
    /// The original `event_id` field, if it had one.
    pub event_id: Option<String>,
    /// The original entry's fields in order (every field but the `dlq_*` ones). In JSON,
    /// a list of `[name, value]` pairs with values as (lossy) UTF-8 text, since an entry
    /// broken enough to be dead-lettered may repeat a field name.
    #[serde(serialize_with = "fields_as_text")]
    pub fields: Vec<(String, Vec<u8>)>,
}

impl DeadLetter {
    /// Reads a dead-letter entry's fields.
    pub fn from_entry(id: String, entry: Vec<(String, Vec<u8>)>) -> DeadLetter {
        let mut letter = DeadLetter {
            id,
            reason: String::new(),
            handler: String::new(),
            stream: String::new(),
            source_id: String::new(),
            attempts: 0,
            at: String::new(),
            event_type: None,
            event_id: None,
            fields: Vec::with_capacity(entry.len()),
        };
        for (name, value) in entry {
            let text = || String::from_utf8_lossy(&value).into_owned();
            match name.as_str() {
                FIELD_DLQ_REASON => letter.reason = text(),
                FIELD_DLQ_HANDLER => letter.handler = text(),
                FIELD_DLQ_STREAM => letter.stream = text(),
                FIELD_DLQ_ID => letter.source_id = text(),
                FIELD_DLQ_ATTEMPTS => letter.attempts = text().trim().parse().unwrap_or(0),
                FIELD_DLQ_AT => letter.at = text(),
                other if other.starts_with(DLQ_PREFIX) => {}
                other => {
                    // The first occurrence is the one a reader of the event would see.
                    if other == FIELD_EVENT_TYPE && letter.event_type.is_none() {
                        letter.event_type = Some(text());
                    } else if other == FIELD_EVENT_ID && letter.event_id.is_none() {
                        letter.event_id = Some(text());
                    }
                    letter.fields.push((name, value));
                }
            }
        }
        letter
    }
}

fn fields_as_text<S: Serializer>(
    fields: &[(String, Vec<u8>)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(
        fields
            .iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(value))),
    )
}

/// Which dead letters a [`requeue`] or [`purge`] acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These entry ids (duplicates count once).
    Ids(Vec<String>),
    /// Every dead letter of the handler.
    All,
}

/// What a [`requeue`] or [`purge`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// How many dead letters were re-driven or deleted.
    pub count: usize,
    /// The selected ids that were not in the dead-letter stream (always empty for
    /// [`Selection::All`]).
    pub missing: Vec<String>,
}

/// Why a dead-letter operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// An id given by the caller is not a stream entry id; nothing was done.
    #[error(
        "`{0}` is not a stream entry id (expected MILLISECONDS-SEQUENCE, e.g. 1733325000000-0)"
    )]
    InvalidId(String),
    /// Redis refused a command or could not be reached.
    #[error("Redis command on `{key}` failed: {source}")]
    Redis {
        /// The key the command was about.
        key: String,
        /// What Redis said.
        source: RedisError,
    },
}

fn redis_error(key: &str) -> impl FnOnce(RedisError) -> DlqError + '_ {
    move |source| DlqError::Redis {
        key: key.to_owned(),
        source,
    }
}

/// Up to `count` dead letters of `handler`, oldest first.
pub async fn list<C: ConnectionLike>(
    conn: &mut C,
    namespace: &str,
    handler: &str,
    count: usize,
) -> Result<Vec<DeadLetter>, DlqError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    range(conn, &dlq_key(namespace, handler), "-", "+", count).await
}

/// How many dead letters `handler` has (`XLEN`).
pub async fn count<C: ConnectionLike>(
    conn: &mut C,
    namespace: &str,
    handler: &str,
) -> Result<usize, DlqError> {
    let key = dlq_key(namespace, handler);
    redis::cmd("XLEN")
        .arg(&key)
        .query_async(conn)
        .await
        .map_err(redis_error(&key))
}

/// The dead letter `id` of `handler`, if there is one.
pub async fn show<C: ConnectionLike>(
    conn: &mut C,
    namespace: &str,
    handler: &str,
    id: &str,
) -> Result<Option<DeadLetter>, DlqError> {
    check_id(id)?;
    let found = range(conn, &dlq_key(namespace, handler), id, id, 1).await?;
    Ok(found.into_iter().next())
}

/// Moves the selected dead letters of `handler` to its re-drive stream, oldest first, each
/// in its own transaction. With [`Selection::All`], dead letters that arrive while it runs
/// are left for the next call, so it always ends.
///
/// An entry removed by someone else between being read here and being moved (a concurrent
/// purge or requeue of the same id) may be re-driven once more than asked; handlers see
/// events at least once anyway.
pub async fn requeue<C: ConnectionLike>(
    conn: &mut C,
    namespace: &str,
    handler: &str,
    selection: Selection,
) -> Result<Applied, DlqError> {
    let dlq = dlq_key(namespace, handler);
    let redrive = redrive_key(namespace, handler);
    let mut applied = Applied::default();
    match selection {
        Selection::Ids(ids) => {
            for id in distinct_checked(ids)? {
                match range(conn, &dlq, &id, &id, 1).await?.into_iter().next() {
                    Some(letter) => {
                        move_to_redrive(conn, &dlq, &redrive, &letter).await?;
                        applied.count += 1;
                    }
                    None => applied.missing.push(id),
                }
            }
        }
        Selection::All => {
            let Some(last) = newest_id(conn, &dlq).await? else {
                return Ok(applied);
            };
            let mut start = "-".to_owned();
            loop {
                let batch = range(conn, &dlq, &start, &last, BATCH).await?;
                let Some(tail) = batch.last() else { break };
                start = format!("({}", tail.id);
                for letter in &batch {
                    move_to_redrive(conn, &dlq, &redrive, letter).await?;
                    applied.count += 1;
                }
            }
        }
    }
    Ok(applied)
}

/// Deletes the selected dead letters of `handler`. [`Selection::All`] deletes the whole
/// dead-letter stream.
pub async fn purge<C: ConnectionLike>(
    conn: &mut C,
    namespace: &str,
    handler: &str,
    selection: Selection,
) -> Result<Applied, DlqError> {
    let dlq = dlq_key(namespace, handler);
    match selection {
        Selection::Ids(ids) => {
            let ids = distinct_checked(ids)?;
            if ids.is_empty() {
                return Ok(Applied::default());
            }
            // One XDEL per id, so the reply says which ids were there.
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("XDEL").arg(&dlq).arg(id);
            }
            let deleted: Vec<u32> = pipe.query_async(conn).await.map_err(redis_error(&dlq))?;
            let mut applied = Applied::default();
            for (id, deleted) in ids.into_iter().zip(deleted) {
                if deleted > 0 {
                    applied.count += 1;
                } else {
                    applied.missing.push(id);
                }
            }
            Ok(applied)
        }
        Selection::All => {
            let (count,): (usize,) = redis::pipe()
                .atomic()
                .cmd("XLEN")
                .arg(&dlq)
                .cmd("DEL")
                .arg(&dlq)
                .ignore()
                .query_async(conn)
                .await
                .map_err(redis_error(&dlq))?;
            Ok(Applied {
                count,
                missing: Vec::new(),
            })
        }
    }
}

/// `MULTI; XADD redrive * …; XDEL dlq id; EXEC`.
async fn move_to_redrive<C: ConnectionLike>(
    conn: &mut C,
    dlq: &str,
    redrive: &str,
    letter: &DeadLetter,
) -> Result<(), DlqError> {
    let mut pipe = redis::pipe();
    pipe.atomic().cmd("XADD").arg(redrive).arg("*");
    for (name, value) in redrive_fields(letter) {
        pipe.arg(name).arg(value);
    }
    pipe.ignore().cmd("XDEL").arg(dlq).arg(&letter.id);
    let (deleted,): (u32,) = pipe.query_async(conn).await.map_err(redis_error(dlq))?;
    if deleted == 0 {
        tracing::warn!(
            dlq,
            id = %letter.id,
            "dead letter was removed by someone else while being re-driven; it may be re-driven twice"
        );
    }
    Ok(())
}

/// `XRANGE key start end COUNT count`, parsed into dead letters.
async fn range<C: ConnectionLike>(
    conn: &mut C,
    key: &str,
    start: &str,
    end: &str,
    count: usize,
) -> Result<Vec<DeadLetter>, DlqError> {
    query_range(conn, "XRANGE", key, start, end, count).await
}

/// The id of the newest entry of `key`, if it has any.
async fn newest_id<C: ConnectionLike>(conn: &mut C, key: &str) -> Result<Option<String>, DlqError> {
    let newest = query_range(conn, "XREVRANGE", key, "+", "-", 1).await?;
    Ok(newest.into_iter().next().map(|letter| letter.id))
}

async fn query_range<C: ConnectionLike>(
    conn: &mut C,
    command: &str,
    key: &str,
    from: &str,
    to: &str,
    count: usize,
) -> Result<Vec<DeadLetter>, DlqError> {
    let reply: Value = redis::cmd(command)
        .arg(key)
        .arg(from)
        .arg(to)
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await
        .map_err(redis_error(key))?;
    Ok(parse_range(reply))
}

/// An `XRANGE` reply as dead letters (parsed like every other entry list).
fn parse_range(reply: Value) -> Vec<DeadLetter> {
    let mut entries = Vec::new();
    parse_entries(reply, &mut entries);
    entries
        .into_iter()
        .map(|entry| DeadLetter::from_entry(entry.id, entry.fields.unwrap_or_default()))
        .collect()
}

/// The ids in their first-given order, once each, after checking that all are entry ids.
fn distinct_checked(ids: Vec<String>) -> Result<Vec<String>, DlqError> {
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        check_id(&id)?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// A full entry id, `MILLISECONDS-SEQUENCE`; anything else would make `XRANGE` mean a range.
fn check_id(id: &str) -> Result<(), DlqError> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match id.split_once('-') {
        Some((ms, seq)) if digits(ms) && digits(seq) => Ok(()),
        _ => Err(DlqError::InvalidId(id.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, value: &str) -> (String, Vec<u8>) {
        (name.to_owned(), value.as_bytes().to_vec())
    }

    fn original() -> Vec<(String, Vec<u8>)> {
        vec![
            field("event_id", "e-1"),
            field("event_type", "trip.status_changed"),
            field("data", r#"{"trip_id":"t-1"}"#),
        ]
    }

    fn letter_fields() -> Vec<(String, Vec<u8>)> {
        let stream = "ns:events:trip.status_changed";
        dead_letter_fields(
            &original(),
            "rejected: unknown trip",
            "tt",
            stream,
            "9-0",
            3,
        )
    }

    #[test]
    fn dead_letter_is_the_original_then_six_dlq_fields() {
        let mut fields = letter_fields();
        let (name, at) = fields.pop().unwrap();
        assert_eq!(name, FIELD_DLQ_AT);
        let at = String::from_utf8(at).unwrap();
        assert!(at.len() == 24 && at.ends_with('Z'), "RFC 3339 UTC: {at}");
        assert_eq!(fields[..3], original()[..]);
        assert_eq!(
            fields[3..],
            [
                field(FIELD_DLQ_REASON, "rejected: unknown trip"),
                field(FIELD_DLQ_HANDLER, "tt"),
                field(FIELD_DLQ_STREAM, "ns:events:trip.status_changed"),
                field(FIELD_DLQ_ID, "9-0"),
                field(FIELD_DLQ_ATTEMPTS, "3"),
            ]
        );
    }

    #[test]
    fn dead_letter_keeps_raw_bytes_and_duplicate_fields() {
        let original = vec![("data".to_owned(), vec![0xff, 0xfe]), field("data", "{}")];
        let fields = dead_letter_fields(&original, "malformed:data", "h", "s", "1-0", 1);
        assert_eq!(fields[..2], original[..]);
        assert_eq!(fields.len(), 8);
    }

    #[test]
    fn old_bookkeeping_fields_are_dropped() {
        let mut original = original();
        original.insert(1, field("dlq_reason", "earlier failure"));
        original.push(field("redrive_stream", "ns:events:trip.status_changed"));
        original.push(field("redrive_dlq_id", "1-0"));
        let fields = dead_letter_fields(&original, "again", "h", "ns:redrive:h", "9-0", 1);
        let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "event_id",
                "event_type",
                "data",
                "dlq_reason",
                "dlq_handler",
                "dlq_stream",
                "dlq_id",
                "dlq_attempts",
                "dlq_at",
            ]
        );
        assert_eq!(fields[3].1, b"again");
    }

    #[test]
    fn dead_letter_reads_back_from_its_fields() {
        let letter = DeadLetter::from_entry("5-0".to_owned(), letter_fields());
        assert_eq!(letter.id, "5-0");
        assert_eq!(letter.reason, "rejected: unknown trip");
        assert_eq!(letter.handler, "tt");
        assert_eq!(letter.stream, "ns:events:trip.status_changed");
        assert_eq!(letter.source_id, "9-0");
        assert_eq!(letter.attempts, 3);
        assert!(!letter.at.is_empty());
        assert_eq!(letter.event_type.as_deref(), Some("trip.status_changed"));
        assert_eq!(letter.event_id.as_deref(), Some("e-1"));
        assert_eq!(letter.fields, original());

        let by_hand = DeadLetter::from_entry("1-0".to_owned(), vec![field("x", "y")]);
        assert_eq!((by_hand.attempts, by_hand.reason.as_str()), (0, ""));
        assert_eq!(by_hand.fields, [field("x", "y")]);
    }

    #[test]
    fn redrive_entry_is_the_original_plus_where_it_came_from() {
        let letter = DeadLetter::from_entry("5-0".to_owned(), letter_fields());
        let fields = redrive_fields(&letter);
        assert_eq!(fields[..3], original()[..]);
        assert_eq!(
            fields[3..],
            [
                field(FIELD_REDRIVE_STREAM, "ns:events:trip.status_changed"),
                field(FIELD_REDRIVE_ID, &letter.source_id),
                field(FIELD_REDRIVE_DLQ_ID, "5-0"),
            ]
        );
        assert_eq!(redrive_key("ns", "speed-alert"), "ns:redrive:speed-alert");
    }

    #[test]
    fn json_shows_field_values_as_text() {
        let mut fields = letter_fields();
        fields.insert(0, ("blob".to_owned(), vec![b'a', 0xff]));
        let json = serde_json::to_value(DeadLetter::from_entry("5-0".to_owned(), fields)).unwrap();
        assert_eq!(json["fields"][0], serde_json::json!(["blob", "a\u{fffd}"]));
        assert_eq!(json["attempts"], 3);
        assert_eq!(json["event_type"], "trip.status_changed");
    }

    #[test]
    fn parses_an_xrange_reply() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let fields = Value::Array(vec![bulk("a"), bulk("1"), bulk("dlq_attempts"), bulk("2")]);
        let letters = parse_range(Value::Array(vec![Value::Array(vec![bulk("7-1"), fields])]));
        assert_eq!(letters.len(), 1);
        assert_eq!((letters[0].id.as_str(), letters[0].attempts), ("7-1", 2));
        assert_eq!(letters[0].fields, [field("a", "1")]);
        assert!(parse_range(Value::Nil).is_empty());
    }

    #[test]
    fn only_full_entry_ids_are_accepted_and_count_once() {
        for bad in ["", "-", "+", "12", "1-", "-1", "a-1", "1-0-0", "(1-0"] {
            assert!(
                matches!(check_id(bad), Err(DlqError::InvalidId(_))),
                "{bad}"
            );
        }
        let ids = ["2-0", "1733325000000-12", "2-0"]
            .map(str::to_owned)
            .to_vec();
        assert_eq!(distinct_checked(ids).unwrap(), ["2-0", "1733325000000-12"]);
    }
}
