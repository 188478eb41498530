//! Dead letters: what lands in `{ns}:dlq:{handler}` and why (a rejection, attempts run out,
//! an entry too large or with a payload that does not fit its type), what each one carries,
//! the `error.occurred` that announces it, and `watchtower dlq requeue` sending dead letters
//! back to their handler and to no other group.

use std::ffi::OsStr;

use serde_json::json;
use watchtower_tests::dead_letters::{
    Expected, assert_dead_letter, assert_reported_once, dead_letters, errors_key, letter_for,
    redrive_key, wait_for_dead_letters, wait_for_error_reports,
};
use watchtower_tests::fixtures::{
    CHAOS_EVENT, DEFAULT_GROUP, assert_handled_exactly_once, chaos_fault, chaos_ok, position,
    seen_key, trip_created, trip_key, trip_status_changed,
};
use watchtower_tests::groups::{group_info, wait_until_drained};
use watchtower_tests::streams::{
    Entry, entries, kv, publish_all, stream_len, wait_for_field, xadd,
};
use watchtower_tests::{
    Event, HandlerConfig, Host, HostConfig, PATIENCE, RedisServer, eventually, guests, kv_key,
    stream_key, watchtower,
};

/// The entry `id` of `stream`, as read back.
async fn source_entry(
    con: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    id: &str,
) -> Entry {
    entries(con, stream)
        .await
        .into_iter()
        .find(|entry| entry.id == id)
        .unwrap_or_else(|| panic!("entry {id} is still in {stream}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_event_is_dead_lettered_with_every_original_field_and_announced_once() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_dlq_reject";
    let host = Host::start(
        &HostConfig::new(redis.url(), ns).handler(HandlerConfig::new(
            "chaos",
            guests::chaos(),
            [CHAOS_EVENT],
        )),
    )
    .await;

    // Every optional field of the format is set, so each must be carried over.
    let stream = stream_key(ns, CHAOS_EVENT);
    let rejected_id = xadd(
        &mut con,
        &stream,
        &[
            ("event_id", "order-17"),
            ("event_type", CHAOS_EVENT),
            ("timestamp", "2026-12-04T15:09:01.123Z"),
            ("version", "2"),
            ("correlation_id", "route-42"),
            ("metadata", r#"{"origin":"dispatch"}"#),
            ("data", r#"{"n":17,"chaos":"reject"}"#),
        ],
    )
    .await;
    let behind = chaos_ok(18);
    let behind_id = publish_all(&mut con, ns, std::slice::from_ref(&behind)).await;
    wait_until_drained(&con, &stream, DEFAULT_GROUP, &behind_id[0]).await;

    let letters = wait_for_dead_letters(&con, ns, "chaos", 1).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = letter_for(&letters, &rejected_id);
    let source = source_entry(&mut con, &stream, &rejected_id).await;
    assert_dead_letter(
        letter,
        &source,
        &Expected {
            handler: "chaos",
            stream: &stream,
            attempts: 1,
            reason_prefix: "rejected: chaos: asked to reject",
        },
    );

    let reports = wait_for_error_reports(&con, ns, 1).await;
    assert_reported_once(&reports, letter);
    assert_eq!(
        reports.len(),
        1,
        "one report for one dead letter: {reports:?}"
    );
    assert_eq!(reports[0].detail("event_id").as_deref(), Some("order-17"));
    assert_eq!(
        reports[0].detail("event_type").as_deref(),
        Some(CHAOS_EVENT)
    );
    assert_handled_exactly_once(&kv(&mut con, ns, "chaos").await, &[behind]);
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_panic_retried_into_the_dead_letter_stream_leaves_no_alert_behind() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_dlq_publish_then_panic";
    let handler = HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT])
        .max_attempts(3)
        .quick_retries();
    let host = Host::start(&HostConfig::new(redis.url(), ns).handler(handler)).await;

    let ids = publish_all(&mut con, ns, &[chaos_fault(1, "publish-then-panic")]).await;
    let stream = stream_key(ns, CHAOS_EVENT);
    wait_until_drained(&con, &stream, DEFAULT_GROUP, &ids[0]).await;

    let letters = wait_for_dead_letters(&con, ns, "chaos", 1).await;
    let source = source_entry(&mut con, &stream, &ids[0]).await;
    assert_dead_letter(
        letter_for(&letters, &ids[0]),
        &source,
        &Expected {
            handler: "chaos",
            stream: &stream,
            attempts: 3,
            reason_prefix: "max_attempts: trap",
        },
    );
    assert_eq!(
        stream_len(&mut con, &stream_key(ns, "alert.triggered")).await,
        0,
        "three calls published an alert and panicked; none of the alerts was committed"
    );
    let reports = wait_for_error_reports(&con, ns, 1).await;
    assert_eq!(
        reports.len(),
        1,
        "one report for one dead letter: {reports:?}"
    );
    assert_reported_once(&reports, &letters[0]);
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_larger_than_max_entry_bytes_is_dead_lettered_unread() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_dlq_too_large";
    let config = HostConfig::new(redis.url(), ns)
        .max_entry_bytes(4096)
        .handler(HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT]));
    let host = Host::start(&config).await;

    let huge = Event::new(
        "0193a5b0-0000-7000-8000-00000000beef",
        CHAOS_EVENT,
        json!({ "n": 1, "padding": "x".repeat(16 * 1024) }),
    );
    let fits = chaos_ok(2);
    let ids = publish_all(&mut con, ns, &[huge.clone(), fits.clone()]).await;
    let stream = stream_key(ns, CHAOS_EVENT);
    wait_until_drained(&con, &stream, DEFAULT_GROUP, &ids[1]).await;

    let letters = wait_for_dead_letters(&con, ns, "chaos", 1).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let source = source_entry(&mut con, &stream, &ids[0]).await;
    assert_dead_letter(
        letter_for(&letters, &ids[0]),
        &source,
        &Expected {
            handler: "chaos",
            stream: &stream,
            attempts: 1,
            reason_prefix: "malformed:too_large",
        },
    );
    assert_reported_once(&wait_for_error_reports(&con, ns, 1).await, &letters[0]);
    assert_handled_exactly_once(&kv(&mut con, ns, "chaos").await, &[fits]);
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_that_does_not_fit_its_known_type_is_dead_lettered_before_the_handler_runs() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_dlq_payload";
    let host = Host::start(
        &HostConfig::new(redis.url(), ns).handler(HandlerConfig::new(
            "speed-alert",
            guests::speed_alert(),
            ["position.updated"],
        )),
    )
    .await;

    let mut no_speed = position(1, 130.0);
    no_speed
        .data
        .as_object_mut()
        .expect("positions are objects")
        .remove("speed");
    let mut speed_as_text = position(2, 130.0);
    speed_as_text.data["speed"] = json!("very fast");
    let speeding = position(3, 130.0);
    let ids = publish_all(&mut con, ns, &[no_speed, speed_as_text, speeding]).await;
    let stream = stream_key(ns, "position.updated");
    wait_until_drained(&con, &stream, DEFAULT_GROUP, &ids[2]).await;

    let letters = wait_for_dead_letters(&con, ns, "speed-alert", 2).await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    let reports = wait_for_error_reports(&con, ns, 2).await;
    for id in &ids[..2] {
        let letter = letter_for(&letters, id);
        let source = source_entry(&mut con, &stream, id).await;
        assert_dead_letter(
            letter,
            &source,
            &Expected {
                handler: "speed-alert",
                stream: &stream,
                attempts: 1,
                reason_prefix: "malformed:payload",
            },
        );
        assert!(
            letter.field("dlq_reason").contains("speed"),
            "the reason names the field: {letter:?}"
        );
        assert_reported_once(&reports, letter);
    }
    assert_eq!(
        stream_len(&mut con, &stream_key(ns, "alert.triggered")).await,
        1,
        "the well-formed speeding position behind them raised its alert"
    );
    host.stop().await.expect("host stops cleanly");
}

/// Runs `watchtower dlq requeue --handler HANDLER --all` against `redis` and `ns`.
async fn requeue_all(redis: &RedisServer, ns: &str, handler: &str) {
    let url = redis.url();
    watchtower([
        OsStr::new("dlq"),
        OsStr::new("requeue"),
        OsStr::new("--handler"),
        OsStr::new(handler),
        OsStr::new("--all"),
        OsStr::new("--redis-url"),
        OsStr::new(&url),
        OsStr::new("--namespace"),
        OsStr::new(ns),
    ])
    .await
    .assert_success();
}

/// What another group's view of a stream looks like; a re-drive must not change it.
#[derive(Debug, PartialEq)]
struct Bystander {
    last_delivered_id: String,
    entries_read: Option<usize>,
    pending: usize,
    kv: std::collections::BTreeMap<String, String>,
    dead_letters: Vec<String>,
    stream_len: usize,
}

async fn bystander(
    con: &mut redis::aio::MultiplexedConnection,
    ns: &str,
    stream: &str,
    group: &str,
    handler: &str,
) -> Bystander {
    let info = group_info(con, stream, group)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    Bystander {
        last_delivered_id: info.last_delivered_id,
        entries_read: info.entries_read,
        pending: info.pending,
        kv: kv(con, ns, handler).await.into_iter().collect(),
        dead_letters: dead_letters(con, ns, handler)
            .await
            .into_iter()
            .map(|letter| letter.id)
            .collect(),
        stream_len: stream_len(con, stream).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeued_rejection_goes_back_to_its_handler_only_and_is_dead_lettered_again() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_dlq_requeue_reject";
    let config = HostConfig::new(redis.url(), ns)
        .handler(HandlerConfig::new("chaos-a", guests::chaos(), [CHAOS_EVENT]).group("group-a"))
        .handler(HandlerConfig::new("chaos-b", guests::chaos(), [CHAOS_EVENT]).group("group-b"));
    let host = Host::start(&config).await;

    let stream = stream_key(ns, CHAOS_EVENT);
    let ids = publish_all(&mut con, ns, &[chaos_fault(1, "reject"), chaos_ok(2)]).await;
    wait_until_drained(&con, &stream, "group-a", &ids[1]).await;
    wait_until_drained(&con, &stream, "group-b", &ids[1]).await;
    let first = wait_for_dead_letters(&con, ns, "chaos-a", 1).await;
    wait_for_dead_letters(&con, ns, "chaos-b", 1).await;
    wait_for_error_reports(&con, ns, 2).await;
    let before = bystander(&mut con, ns, &stream, "group-b", "chaos-b").await;

    requeue_all(&redis, ns, "chaos-a").await;

    // chaos-a reads it from its re-drive stream and rejects it again: a new dead letter
    // replaces the one that was moved out. It still names the stream the event came from.
    let redrive = redrive_key(ns, "chaos-a");
    let again = eventually(
        PATIENCE,
        "chaos-a to dead-letter the re-driven entry",
        || {
            let mut con = con.clone();
            let first_id = first[0].id.clone();
            async move {
                let letters = dead_letters(&mut con, ns, "chaos-a").await;
                match letters.as_slice() {
                    [letter] if letter.id != first_id => Ok(letter.clone()),
                    _ => Err(format!("{letters:?}")),
                }
            }
        },
    )
    .await;
    let redriven = entries(&mut con, &redrive).await;
    assert_eq!(redriven.len(), 1, "one entry re-driven: {redriven:?}");
    assert_eq!(
        again.field("dlq_stream"),
        stream,
        "the new dead letter names the event's own stream"
    );
    assert_eq!(
        again.field("dlq_id"),
        first[0].field("dlq_id"),
        "and the event's entry there, not the re-drive entry"
    );
    assert_eq!(again.field("event_id"), first[0].field("event_id"));
    assert_eq!(again.field("data"), first[0].field("data"));
    assert_eq!(again.field("dlq_handler"), "chaos-a");
    assert_eq!(again.field("dlq_attempts"), "1");
    assert!(
        again.field("dlq_reason").starts_with("rejected: "),
        "{again:?}"
    );
    let reports = wait_for_error_reports(&con, ns, 3).await;
    assert_eq!(reports.len(), 3, "one more report for one more dead letter");
    let for_a: Vec<_> = reports
        .iter()
        .filter(|r| r.detail("handler").as_deref() == Some("chaos-a"))
        .collect();
    assert_eq!(
        for_a.len(),
        2,
        "chaos-a's first and re-driven dead letters: {for_a:?}"
    );
    for report in for_a {
        assert_eq!(
            report.detail("entry_id").as_deref(),
            Some(again.field("dlq_id"))
        );
        assert_eq!(report.detail("stream").as_deref(), Some(stream.as_str()));
    }

    let groups: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(&redrive)
        .query_async(&mut con)
        .await
        .expect("XINFO GROUPS of the re-drive stream");
    let names: Vec<&str> = groups.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["group-a"], "only chaos-a reads its re-drive stream");
    assert_eq!(
        bystander(&mut con, ns, &stream, "group-b", "chaos-b").await,
        before,
        "chaos-b saw nothing new"
    );
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeued_change_is_applied_once_its_trip_exists_and_no_other_group_sees_it_twice() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_dlq_requeue_fixed";
    // "audit" counts every status change in its own group; "trips" retries a change to an
    // unknown trip twice, then gives up on it.
    let config = HostConfig::new(redis.url(), ns)
        .handler(
            HandlerConfig::new(
                "trips",
                guests::trip_tracker(),
                ["trip.created", "trip.status_changed"],
            )
            .max_attempts(2)
            .quick_retries(),
        )
        .handler(
            HandlerConfig::new("audit", guests::chaos(), ["trip.status_changed"]).group("audit"),
        );
    let host = Host::start(&config).await;

    let early = trip_status_changed(1, 7, "planned", "in_progress");
    let changes = stream_key(ns, "trip.status_changed");
    let ids = publish_all(&mut con, ns, std::slice::from_ref(&early)).await;
    wait_until_drained(&con, &changes, DEFAULT_GROUP, &ids[0]).await;
    wait_until_drained(&con, &changes, "audit", &ids[0]).await;
    let letters = wait_for_dead_letters(&con, ns, "trips", 1).await;
    assert!(
        letters[0]
            .field("dlq_reason")
            .starts_with("max_attempts: retry: "),
        "{letters:?}"
    );

    // The trip shows up late; the operator re-drives the change.
    publish_all(&mut con, ns, &[trip_created(2, 7)]).await;
    let trips = kv_key(ns, "trips");
    wait_for_field(&con, &trips, &trip_key(7), "planned").await;
    let before = bystander(&mut con, ns, &changes, "audit", "audit").await;
    assert_eq!(
        before.kv.get(&seen_key(&early)).map(String::as_str),
        Some("1")
    );

    requeue_all(&redis, ns, "trips").await;

    wait_for_field(&con, &trips, &trip_key(7), "in_progress").await;
    let redrive = redrive_key(ns, "trips");
    eventually(
        PATIENCE,
        "the one re-driven entry read and acknowledged",
        || {
            let mut con = con.clone();
            let redrive = redrive.clone();
            async move {
                let info = group_info(&mut con, &redrive, DEFAULT_GROUP).await?;
                if info.pending == 0 && info.entries_read == Some(1) {
                    Ok(())
                } else {
                    Err(format!("{info:?}"))
                }
            }
        },
    )
    .await;
    assert_eq!(
        stream_len(&mut con, &redrive).await,
        1,
        "one entry re-driven"
    );
    assert!(
        dead_letters(&mut con, ns, "trips").await.is_empty(),
        "the dead letter moved out of the dead-letter stream"
    );
    assert_eq!(
        bystander(&mut con, ns, &changes, "audit", "audit").await,
        before,
        "audit saw the change once, at the time it happened"
    );
    assert_eq!(
        stream_len(&mut con, &errors_key(ns)).await,
        1,
        "the re-driven change succeeded: no new error"
    );
    host.stop().await.expect("host stops cleanly");
}
