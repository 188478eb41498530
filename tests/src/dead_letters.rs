//! Dead letters and the `error.occurred` events that announce them, read the way an operator
//! reads them: `XRANGE {ns}:dlq:{handler}` and `XRANGE {ns}:events:error.occurred`.
//!
//! Field and key names are spelled out here rather than taken from the host, so the tests
//! hold the contract (SPEC §3, issue "Retries and dead letters") and not whatever the host
//! happens to write.

use redis::aio::MultiplexedConnection;
use serde_json::Value;

use crate::streams::{Entry, entries};
use crate::wait::{PATIENCE, eventually};

/// The `dlq_*` fields every dead letter carries besides the original entry's fields.
pub const DLQ_FIELDS: [&str; 6] = [
    "dlq_reason",
    "dlq_handler",
    "dlq_stream",
    "dlq_id",
    "dlq_attempts",
    "dlq_at",
];

/// `{ns}:dlq:{handler}`: the dead letters of one handler.
pub fn dlq_key(ns: &str, handler: &str) -> String {
    format!("{ns}:dlq:{handler}")
}

/// `{ns}:redrive:{handler}`: where `watchtower dlq requeue` puts dead letters for the one
/// handler to see again.
pub fn redrive_key(ns: &str, handler: &str) -> String {
    format!("{ns}:redrive:{handler}")
}

/// `{ns}:events:error.occurred`.
pub fn errors_key(ns: &str) -> String {
    format!("{ns}:events:error.occurred")
}

/// Every dead letter of `handler`, oldest first.
pub async fn dead_letters(con: &mut MultiplexedConnection, ns: &str, handler: &str) -> Vec<Entry> {
    entries(con, &dlq_key(ns, handler)).await
}

/// Waits until `handler` has at least `count` dead letters and returns them all.
pub async fn wait_for_dead_letters(
    con: &MultiplexedConnection,
    ns: &str,
    handler: &str,
    count: usize,
) -> Vec<Entry> {
    let what = format!("{count} dead letters in {}", dlq_key(ns, handler));
    eventually(PATIENCE, &what, || {
        let mut con = con.clone();
        async move {
            let letters = dead_letters(&mut con, ns, handler).await;
            if letters.len() >= count {
                Ok(letters)
            } else {
                Err(format!("{} so far: {letters:?}", letters.len()))
            }
        }
    })
    .await
}

/// The dead letter of the source entry `entry_id` (its `dlq_id`); panics listing the dead
/// letters when there is none or more than one.
pub fn letter_for<'a>(letters: &'a [Entry], entry_id: &str) -> &'a Entry {
    let found: Vec<&Entry> = letters
        .iter()
        .filter(|letter| letter.fields.get("dlq_id").map(String::as_str) == Some(entry_id))
        .collect();
    match found.as_slice() {
        [one] => one,
        _ => panic!(
            "expected one dead letter of entry {entry_id}, found {}: {letters:?}",
            found.len()
        ),
    }
}

/// What a dead letter should say about itself.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// `dlq_handler`.
    pub handler: &'a str,
    /// `dlq_stream`: the stream the entry was read from.
    pub stream: &'a str,
    /// `dlq_attempts`: deliveries used up.
    pub attempts: u32,
    /// How `dlq_reason` starts, e.g. `max_attempts: trap`.
    pub reason_prefix: &'a str,
}

/// Asserts that `letter` is the dead letter of `source` (every field of `source` copied,
/// `dlq_id` its entry id) and says what `expected` says.
pub fn assert_dead_letter(letter: &Entry, source: &Entry, expected: &Expected<'_>) {
    for (field, value) in &source.fields {
        assert_eq!(
            letter.fields.get(field),
            Some(value),
            "the dead letter keeps the original `{field}`: {letter:?}"
        );
    }
    for field in DLQ_FIELDS {
        assert!(
            letter.fields.get(field).is_some_and(|v| !v.is_empty()),
            "the dead letter has `{field}`: {letter:?}"
        );
    }
    assert_eq!(letter.field("dlq_id"), source.id, "dlq_id: {letter:?}");
    assert_eq!(letter.field("dlq_handler"), expected.handler, "{letter:?}");
    assert_eq!(letter.field("dlq_stream"), expected.stream, "{letter:?}");
    assert_eq!(
        letter.field("dlq_attempts"),
        expected.attempts.to_string(),
        "dlq_attempts: {letter:?}"
    );
    assert!(
        letter
            .field("dlq_reason")
            .starts_with(expected.reason_prefix),
        "dlq_reason should start with {:?}: {letter:?}",
        expected.reason_prefix
    );
}

/// One `error.occurred` event, with its payload parsed.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    /// The stream entry.
    pub entry: Entry,
    /// Its `data`.
    pub data: Value,
}

impl ErrorReport {
    /// `data.details[key]` as a string (numbers are shown as their digits).
    pub fn detail(&self, key: &str) -> Option<String> {
        match self.data.get("details")?.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// `data[key]` as a string.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.data.get(key)?.as_str()
    }
}

/// Every `error.occurred` event published so far, oldest first.
pub async fn error_reports(con: &mut MultiplexedConnection, ns: &str) -> Vec<ErrorReport> {
    entries(con, &errors_key(ns))
        .await
        .into_iter()
        .map(|entry| ErrorReport {
            data: entry.data(),
            entry,
        })
        .collect()
}

/// Asserts that exactly one `error.occurred` of `reports` announces `letter`, and that it
/// says what the dead letter says.
pub fn assert_reported_once(reports: &[ErrorReport], letter: &Entry) {
    let handler = letter.field("dlq_handler");
    let entry_id = letter.field("dlq_id");
    let matching: Vec<&ErrorReport> = reports
        .iter()
        .filter(|r| {
            r.detail("handler").as_deref() == Some(handler)
                && r.detail("entry_id").as_deref() == Some(entry_id)
        })
        .collect();
    let [report] = matching.as_slice() else {
        panic!(
            "expected one error.occurred for {handler}'s dead letter of {entry_id}, found {}: \
             {reports:?}",
            matching.len()
        );
    };
    let reason = letter.field("dlq_reason");
    assert_eq!(report.entry.field("event_type"), "error.occurred");
    assert_eq!(
        report.field("error_type"),
        Some("dead_letter"),
        "{report:?}"
    );
    assert_eq!(report.field("source"), Some("watchtower"), "{report:?}");
    assert_eq!(report.field("message"), Some(reason), "{report:?}");
    assert_eq!(
        report.detail("reason").as_deref(),
        Some(reason),
        "{report:?}"
    );
    assert_eq!(
        report.detail("stream").as_deref(),
        Some(letter.field("dlq_stream")),
        "{report:?}"
    );
    assert_eq!(
        report.detail("attempts").as_deref(),
        Some(letter.field("dlq_attempts")),
        "{report:?}"
    );
    // The event id is reported when the host could read it.
    if let Some(reported) = report.detail("event_id") {
        assert_eq!(letter.fields.get("event_id"), Some(&reported), "{report:?}");
    }
}

/// Waits until at least `count` `error.occurred` events have been published and returns
/// them all.
pub async fn wait_for_error_reports(
    con: &MultiplexedConnection,
    ns: &str,
    count: usize,
) -> Vec<ErrorReport> {
    let what = format!("{count} events in {}", errors_key(ns));
    eventually(PATIENCE, &what, || {
        let mut con = con.clone();
        async move {
            let reports = error_reports(&mut con, ns).await;
            if reports.len() >= count {
                Ok(reports)
            } else {
                Err(format!("{} so far", reports.len()))
            }
        }
    })
    .await
}
