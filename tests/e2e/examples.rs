//! The example handlers do what their READMEs promise, through a real host: speed-alert
//! turns speeding positions into alerts, trip-tracker keeps each trip's status in kv.

use watchtower_tests::dead_letters::{letter_for, wait_for_dead_letters};
use watchtower_tests::fixtures::{
    DEFAULT_GROUP, position, str_field, trip_created, trip_key, trip_status_changed,
};
use watchtower_tests::groups::{pending_ids, wait_until_drained};
use watchtower_tests::streams::{entries, kv, publish_all, wait_for_field};
use watchtower_tests::{
    Event, HandlerConfig, Host, HostConfig, RedisServer, guests, kv_key, publish, stream_key,
};

/// Runs speed-alert (with `limit` in its config, if any) over positions at `speeds` and
/// checks that exactly those faster than `expected_limit` raised an alert carrying their
/// truck and correlation id.
async fn alerts_match_speeding_positions(
    ns: &str,
    limit: Option<&str>,
    expected_limit: f64,
    speeds: &[f64],
) {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let mut handler =
        HandlerConfig::new("speed-alert", guests::speed_alert(), ["position.updated"]);
    if let Some(limit) = limit {
        handler = handler.config("speed_limit_kmh", limit);
    }
    let host = Host::start(&HostConfig::new(redis.url(), ns).handler(handler)).await;

    let events: Vec<Event> = speeds
        .iter()
        .enumerate()
        .map(|(n, speed)| position(n as u64, *speed))
        .collect();
    let ids = publish_all(&mut con, ns, &events).await;
    let positions = stream_key(ns, "position.updated");
    wait_until_drained(
        &con,
        &positions,
        DEFAULT_GROUP,
        ids.last().expect("published some"),
    )
    .await;

    let mut alerted: Vec<(String, String)> = entries(&mut con, &stream_key(ns, "alert.triggered"))
        .await
        .iter()
        .map(|alert| {
            let data = alert.data();
            assert_eq!(str_field(&data, "alert_type"), "speeding", "{alert:?}");
            assert_eq!(str_field(&data, "severity"), "warning", "{alert:?}");
            assert!(
                !str_field(&data, "message").is_empty(),
                "an alert says what happened: {alert:?}"
            );
            (
                str_field(&data, "truck_id").to_owned(),
                alert.field("correlation_id").to_owned(),
            )
        })
        .collect();
    alerted.sort();
    let mut expected: Vec<(String, String)> = events
        .iter()
        .filter(|event| {
            event.data["speed"]
                .as_f64()
                .is_some_and(|speed| speed > expected_limit)
        })
        .map(|event| {
            let truck = str_field(&event.data, "truck_id").to_owned();
            (
                truck,
                event
                    .correlation_id
                    .clone()
                    .expect("fixture positions carry a correlation id"),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(
        alerted, expected,
        "one alert per position above {expected_limit} km/h, and no other"
    );

    assert!(
        pending_ids(&mut con, &positions, DEFAULT_GROUP)
            .await
            .is_empty(),
        "nothing left pending"
    );
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speed_alert_raises_one_alert_per_speeding_position() {
    let speeds = [
        50.0, 95.0, 120.0, 90.0, 89.9, 91.0, 30.0, 150.0, 70.0, 100.5, 0.0, 90.1,
    ];
    alerts_match_speeding_positions("t_speeding", Some("90"), 90.0, &speeds).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speed_alert_limit_defaults_to_90_kmh() {
    alerts_match_speeding_positions("t_speeding_default", None, 90.0, &[89.0, 90.0, 91.0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speed_alert_takes_its_limit_from_the_handler_config() {
    alerts_match_speeding_positions("t_speeding_50", Some("50"), 50.0, &[40.0, 50.0, 60.0, 95.0])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trip_tracker_follows_a_trip_and_rejects_an_impossible_transition() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_trips";
    let config = HostConfig::new(redis.url(), ns).handler(HandlerConfig::new(
        "trip-tracker",
        guests::trip_tracker(),
        ["trip.created", "trip.status_changed"],
    ));
    let host = Host::start(&config).await;
    let state = kv_key(ns, "trip-tracker");

    // Each step waits for the previous one: the two types are on two streams, which the
    // host reads independently.
    publish(&mut con, ns, &trip_created(1, 1)).await;
    publish(&mut con, ns, &trip_created(2, 2)).await;
    wait_for_field(&con, &state, &trip_key(1), "planned").await;
    wait_for_field(&con, &state, &trip_key(2), "planned").await;
    publish(
        &mut con,
        ns,
        &trip_status_changed(3, 1, "planned", "in_progress"),
    )
    .await;
    wait_for_field(&con, &state, &trip_key(1), "in_progress").await;
    publish(
        &mut con,
        ns,
        &trip_status_changed(4, 1, "in_progress", "completed"),
    )
    .await;
    wait_for_field(&con, &state, &trip_key(1), "completed").await;

    // A completed trip cannot start again. The change of trip 2 behind it shows when the
    // host has got past it.
    let impossible = publish(
        &mut con,
        ns,
        &trip_status_changed(5, 1, "completed", "in_progress"),
    )
    .await;
    let behind = publish(
        &mut con,
        ns,
        &trip_status_changed(6, 2, "planned", "in_progress"),
    )
    .await;
    let changes = stream_key(ns, "trip.status_changed");
    wait_until_drained(&con, &changes, DEFAULT_GROUP, &behind).await;
    let letters = wait_for_dead_letters(&con, ns, "trip-tracker", 1).await;
    assert_eq!(letters.len(), 1, "only the impossible change: {letters:?}");
    let letter = letter_for(&letters, &impossible);
    assert!(
        letter.field("dlq_reason").starts_with("rejected: "),
        "the tracker's refusal is the reason: {letter:?}"
    );
    assert_eq!(
        letter.field("dlq_attempts"),
        "1",
        "a rejection is not retried"
    );

    let trips = kv(&mut con, ns, "trip-tracker").await;
    assert_eq!(
        trips.get(&trip_key(1)).map(String::as_str),
        Some("completed"),
        "the rejected change left no trace"
    );
    assert_eq!(
        trips.get(&trip_key(2)).map(String::as_str),
        Some("in_progress")
    );
    host.stop().await.expect("host stops cleanly");
}
