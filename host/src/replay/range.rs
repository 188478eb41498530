//! The window of a replay: `--from` and `--to` as stream entry ids or RFC 3339 times turned
//! into `XRANGE` bounds, the number of entries inside the window, and reading it batch by
//! batch. Nothing here touches a consumer group.

use redis::aio::ConnectionLike;
use redis::{RedisResult, Script, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::redis::StreamEntry;
use crate::redis::reader::{parse_entries, text};

/// Which end of the window a bound closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `--from`: a time includes the entries of that very millisecond.
    Start,
    /// `--to`: a time excludes the entries of that very millisecond, so that consecutive
    /// windows (`15:00`–`16:00`, `16:00`–`17:00`) never share an entry.
    Stop,
}

/// A `--from` or `--to` that is neither a stream entry id nor an RFC 3339 time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is neither a stream entry id (e.g. 1733325000000-0, `-`, `+`) nor an RFC 3339 time \
     (e.g. 2026-12-04T15:00:00Z)"
)]
pub struct BadBound(pub String);

/// The `XRANGE` argument for `text` at `end` of the window.
///
/// Ids (`MS`, `MS-SEQ`, an exclusive `(MS-SEQ`, `-`, `+`) pass through unchanged: `XRANGE`
/// includes both ends. An RFC 3339 time becomes the first id of its millisecond:
/// `MS-0` as a start, `(MS-0` (exclusive) as a stop.
pub fn parse_bound(text: &str, end: End) -> Result<String, BadBound> {
    let text = text.trim();
    if text == "-" || text == "+" {
        return Ok(text.to_owned());
    }
    let (exclusive, id) = match text.strip_prefix('(') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if is_entry_id(id, exclusive) {
        return Ok(text.to_owned());
    }
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| BadBound(text.to_owned()))?;
    let ms = u64::try_from(at.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| BadBound(text.to_owned()))?;
    Ok(match end {
        End::Start => format!("{ms}-0"),
        End::Stop => format!("({ms}-0"),
    })
}

/// `MS` or `MS-SEQ` with both parts fitting a u64; an exclusive bound needs both parts.
fn is_entry_id(id: &str, exclusive: bool) -> bool {
    let number = |part: &str| !part.is_empty() && part.parse::<u64>().is_ok();
    match id.split_once('-') {
        Some((ms, seq)) => number(ms) && number(seq),
        None => !exclusive && number(id),
    }
}

/// Counts the entries of one slice of a window server-side, so that counting a window moves
/// two numbers instead of the entries: how many there are (at most `ARGV[3]`) and the id of
/// the last one.
const COUNT_SCRIPT: &str = r"
local slice = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', tonumber(ARGV[3]))
local n = #slice
if n == 0 then
  return {0, ''}
end
return {n, slice[n][1]}
";

/// Entries one call of [`COUNT_SCRIPT`] looks at: small enough to keep the server responsive.
const COUNT_SLICE: u64 = 10_000;

/// How many entries of `stream` lie between `start` and `stop` (`XRANGE` bounds).
pub async fn count<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    start: &str,
    stop: &str,
) -> RedisResult<u64> {
    let script = Script::new(COUNT_SCRIPT);
    let mut from = start.to_owned();
    let mut total = 0;
    loop {
        let (n, last): (u64, String) = script
            .key(stream)
            .arg(&from)
            .arg(stop)
            .arg(COUNT_SLICE)
            .invoke_async(conn)
            .await?;
        total += n;
        if n < COUNT_SLICE {
            return Ok(total);
        }
        from = format!("({last}");
    }
}

/// The id of the newest entry of `stream`, if it has any.
pub async fn last_id<C: ConnectionLike>(conn: &mut C, stream: &str) -> RedisResult<Option<String>> {
    let reply: Value = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    let Value::Array(items) = reply else {
        return Ok(None);
    };
    Ok(items.first().and_then(|item| match item {
        Value::Array(parts) => parts.first().and_then(text),
        _ => None,
    }))
}

/// Up to `count` entries of `stream` from `start` to `stop`, oldest first.
pub async fn read<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    start: &str,
    stop: &str,
    count: usize,
) -> RedisResult<Vec<StreamEntry>> {
    let reply: Value = redis::cmd("XRANGE")
        .arg(stream)
        .arg(start)
        .arg(stop)
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    let mut entries = Vec::new();
    parse_entries(reply, &mut entries);
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_pass_through_unchanged() {
        for id in [
            "-",
            "+",
            "1733325000000-0",
            "1733325000000",
            "(1733325000000-7",
        ] {
            assert_eq!(parse_bound(id, End::Start).as_deref(), Ok(id));
            assert_eq!(parse_bound(id, End::Stop).as_deref(), Ok(id));
        }
    }

    #[test]
    fn a_time_starts_at_its_millisecond_and_stops_just_before_it() {
        // 2026-12-04T15:00:00Z is 1796396400 seconds after the epoch.
        let start = parse_bound("2026-12-04T15:00:00Z", End::Start);
        assert_eq!(start.as_deref(), Ok("1796396400000-0"));
        let stop = parse_bound("2026-12-04T15:00:00Z", End::Stop);
        assert_eq!(stop.as_deref(), Ok("(1796396400000-0"));
    }

    #[test]
    fn offsets_and_fractions_are_honoured() {
        let with_offset = parse_bound("2026-12-04T16:00:00.250+01:00", End::Start);
        assert_eq!(with_offset.as_deref(), Ok("1796396400250-0"));
    }

    #[test]
    fn anything_else_is_refused_with_examples() {
        for bad in [
            "yesterday",
            "12-",
            "-5",
            "(1733325000000",
            "1733325000000-x",
            "",
        ] {
            let error = parse_bound(bad, End::Start).unwrap_err();
            assert!(error.to_string().contains("RFC 3339"), "{error}");
        }
        assert!(parse_bound("1969-12-31T23:59:59Z", End::Start).is_err());
    }
}
