//! The wire format (SPEC §2) from the outside: what any Redis client can publish, what the
//! host makes of entries that break the format, and what the entries Watchtower publishes
//! look like. Key names and fields are spelled out here, not taken from `watchtower-events`,
//! so these tests hold the contract itself.

use serde_json::Value;
use watchtower_tests::dead_letters::{
    Expected, assert_dead_letter, assert_reported_once, letter_for, wait_for_dead_letters,
    wait_for_error_reports,
};
use watchtower_tests::fixtures::{CHAOS_EVENT, DEFAULT_GROUP, truck_id};
use watchtower_tests::groups::wait_until_drained;
use watchtower_tests::streams::{entries, kv, wait_for_field, xadd};
use watchtower_tests::{HandlerConfig, Host, HostConfig, RedisServer, guests};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_xadd_with_only_the_required_fields_is_handled() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_plain_xadd";
    let config = HostConfig::new(redis.url(), ns).handler(HandlerConfig::new(
        "chaos",
        guests::chaos(),
        [CHAOS_EVENT],
    ));
    let host = Host::start(&config).await;

    // What `redis-cli XADD t_plain_xadd:events:chaos.test '*' event_id order-42 …` sends.
    let stream = format!("{ns}:events:{CHAOS_EVENT}");
    xadd(
        &mut con,
        &stream,
        &[
            ("event_id", "order-42"),
            ("event_type", CHAOS_EVENT),
            ("timestamp", "2026-12-04T15:09:01Z"),
            ("data", r#"{"n":42}"#),
        ],
    )
    .await;
    wait_for_field(&con, &format!("{ns}:kv:chaos"), "seen:order-42", "1").await;
    host.stop().await.expect("host stops cleanly");
}

/// A well-formed `chaos` entry with event id `id`.
fn good_fields(id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("event_id", id.to_owned()),
        ("event_type", CHAOS_EVENT.to_owned()),
        ("timestamp", "2026-12-04T15:09:01.123Z".to_owned()),
        ("data", r#"{"n":1}"#.to_owned()),
    ]
}

/// `fields` with `name` set to `value`, or without `name` when `value` is `None`.
fn with_field(
    mut fields: Vec<(&'static str, String)>,
    name: &'static str,
    value: Option<&str>,
) -> Vec<(&'static str, String)> {
    fields.retain(|(field, _)| *field != name);
    if let Some(value) = value {
        fields.push((name, value.to_owned()));
    }
    fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_entries_are_dead_lettered_at_once_and_do_not_block_the_entries_behind_them() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_malformed";
    let config = HostConfig::new(redis.url(), ns).handler(HandlerConfig::new(
        "chaos",
        guests::chaos(),
        [CHAOS_EVENT],
    ));
    let host = Host::start(&config).await;
    let stream = format!("{ns}:events:{CHAOS_EVENT}");

    // Each entry breaks the format in one way; the reason names what is wrong.
    let malformed = [
        (
            with_field(good_fields("no-data"), "data", None),
            "malformed:missing:data",
        ),
        (
            with_field(good_fields("no-event-id"), "event_id", None),
            "malformed:missing:event_id",
        ),
        (
            with_field(
                good_fields("bad-timestamp"),
                "timestamp",
                Some("yesterday at noon"),
            ),
            "malformed:timestamp",
        ),
        (
            with_field(good_fields("data-not-object"), "data", Some("[1,2,3]")),
            "malformed:not_json_object:data",
        ),
        (
            with_field(good_fields("data-a-string"), "data", Some(r#""hello""#)),
            "malformed:not_json_object:data",
        ),
        (
            with_field(good_fields("data-not-json"), "data", Some(r#"{"n":"#)),
            "malformed:not_json_object:data",
        ),
        (
            with_field(good_fields("wrong-type"), "event_type", Some("chaos.other")),
            "malformed:type_mismatch",
        ),
        (
            with_field(good_fields("not-a-type"), "event_type", Some("Not A Type")),
            "malformed:invalid_type",
        ),
        (
            with_field(
                good_fields("bad-metadata"),
                "metadata",
                Some(r#"{"hops":3}"#),
            ),
            "malformed:metadata",
        ),
    ];
    let mut malformed_ids = Vec::new();
    for (fields, _) in &malformed {
        malformed_ids.push(xadd(&mut con, &stream, fields).await);
    }
    let good_id = xadd(&mut con, &stream, &good_fields("good-one")).await;

    wait_until_drained(&con, &stream, DEFAULT_GROUP, &good_id).await;
    let state = kv(&mut con, ns, "chaos").await;
    assert_eq!(
        state.get("seen:good-one").map(String::as_str),
        Some("1"),
        "the good entry is handled"
    );
    let leaked: Vec<&String> = state
        .keys()
        .filter(|k| k.starts_with("seen:") && *k != "seen:good-one")
        .collect();
    assert!(
        leaked.is_empty(),
        "malformed entries reached the handler: {leaked:?}"
    );

    let letters = wait_for_dead_letters(&con, ns, "chaos", malformed.len()).await;
    assert_eq!(
        letters.len(),
        malformed.len(),
        "one dead letter each: {letters:?}"
    );
    let sources = entries(&mut con, &stream).await;
    let reports = wait_for_error_reports(&con, ns, malformed.len()).await;
    for ((_, reason), id) in malformed.iter().zip(&malformed_ids) {
        let letter = letter_for(&letters, id);
        let source = sources
            .iter()
            .find(|entry| &entry.id == id)
            .expect("the source entry is still in the stream");
        assert_dead_letter(
            letter,
            source,
            &Expected {
                handler: "chaos",
                stream: &stream,
                attempts: 1,
                reason_prefix: reason,
            },
        );
        assert_eq!(letter.field("dlq_reason"), *reason, "{letter:?}");
        assert_reported_once(&reports, letter);
    }
    assert!(host.is_running(), "malformed entries do not stop the host");
    host.stop().await.expect("host stops cleanly");
}

/// Whether `s` looks like `2026-12-04T15:09:01.123Z`: RFC 3339 in UTC.
fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        range
            .clone()
            .all(|i| b.get(i).is_some_and(u8::is_ascii_digit))
    };
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && s.ends_with('Z')
}

/// Whether `s` is a UUID of version 7, in the canonical hyphenated form.
fn is_uuid_v7(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    lengths == [8, 4, 4, 4, 12]
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
        && groups[2].starts_with('7')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_are_entries_in_the_wire_format_carrying_the_correlation_id() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_published_format";
    let config = HostConfig::new(redis.url(), ns).handler(HandlerConfig::new(
        "speed-alert",
        guests::speed_alert(),
        ["position.updated"],
    ));
    let host = Host::start(&config).await;

    let positions = format!("{ns}:events:position.updated");
    let data = serde_json::json!({
        "truck_id": truck_id(7), "truck_number": "NL-007", "lat": 51.92, "lng": 4.48, "speed": 131.0,
    });
    let source_id = xadd(
        &mut con,
        &positions,
        &[
            ("event_id", "pos-7".to_owned()),
            ("event_type", "position.updated".to_owned()),
            ("timestamp", "2026-12-04T15:09:01.123Z".to_owned()),
            ("correlation_id", "trace-xyz".to_owned()),
            ("data", data.to_string()),
        ],
    )
    .await;
    wait_until_drained(&con, &positions, DEFAULT_GROUP, &source_id).await;

    let alerts = entries(&mut con, &format!("{ns}:events:alert.triggered")).await;
    assert_eq!(
        alerts.len(),
        1,
        "one alert for one speeding position: {alerts:?}"
    );
    let alert = &alerts[0];
    assert!(
        is_uuid_v7(alert.field("event_id")),
        "event_id is a UUID v7: {alert:?}"
    );
    assert_ne!(
        alert.field("event_id"),
        "pos-7",
        "a published event has an id of its own"
    );
    assert_eq!(alert.field("event_type"), "alert.triggered");
    assert!(
        is_rfc3339_utc(alert.field("timestamp")),
        "timestamp is RFC 3339 UTC: {alert:?}"
    );
    assert_eq!(
        alert.field("correlation_id"),
        "trace-xyz",
        "the alert inherits the correlation id"
    );
    if let Some(version) = alert.fields.get("version") {
        assert!(!version.is_empty(), "version, when present, is not empty");
    }
    if let Some(metadata) = alert.fields.get("metadata") {
        let metadata: Value = serde_json::from_str(metadata).expect("metadata is JSON");
        let object = metadata.as_object().expect("metadata is a JSON object");
        assert!(
            object.values().all(Value::is_string),
            "metadata values are strings: {metadata}"
        );
    }
    assert!(alert.data().is_object(), "data is a JSON object");
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_event_takes_the_source_event_id_as_correlation_id_when_the_source_has_none() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_correlation_default";
    let config = HostConfig::new(redis.url(), ns).handler(HandlerConfig::new(
        "speed-alert",
        guests::speed_alert(),
        ["position.updated"],
    ));
    let host = Host::start(&config).await;

    let mut position = watchtower_tests::fixtures::position(3, 140.0);
    position.correlation_id = None;
    let source_id = watchtower_tests::publish(&mut con, ns, &position).await;
    let positions = format!("{ns}:events:position.updated");
    wait_until_drained(&con, &positions, DEFAULT_GROUP, &source_id).await;

    let alerts = entries(&mut con, &format!("{ns}:events:alert.triggered")).await;
    assert_eq!(
        alerts.len(),
        1,
        "one alert for one speeding position: {alerts:?}"
    );
    assert_eq!(alerts[0].field("correlation_id"), position.event_id);
    host.stop().await.expect("host stops cleanly");
}
