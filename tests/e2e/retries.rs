//! Retries: a transient failure is tried again by the running host after a pause, the guest
//! sees which attempt it is on, the count is the entry's delivery count (so it survives a
//! restart), attempts run out at `max_attempts`, and a waiting retry holds back exactly the
//! entries the ordering rules say it must.

use watchtower_tests::dead_letters::{
    Expected, assert_dead_letter, assert_reported_once, dead_letters, error_reports, letter_for,
    wait_for_dead_letters, wait_for_error_reports,
};
use watchtower_tests::fixtures::{
    CHAOS_EVENT, assert_handled_exactly_once, attempt_key, chaos_fault, chaos_ok,
    chaos_retry_until, seen_key, with_data,
};
use watchtower_tests::groups::{create_group, read_without_ack, wait_until_drained};
use watchtower_tests::streams::{entries, kv, publish_all};
use watchtower_tests::{
    Event, HandlerConfig, Host, HostConfig, PATIENCE, RedisServer, eventually, guests, stream_key,
};

const GROUP: &str = "retries";

/// The `chaos` handler "chaos" in [`GROUP`].
fn chaos() -> HandlerConfig {
    HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT]).group(GROUP)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_event_succeeds_on_a_later_attempt_and_the_guest_sees_the_attempt_number() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_retry_until";
    let host = Host::start(
        &HostConfig::new(redis.url(), ns).handler(chaos().max_attempts(5).quick_retries()),
    )
    .await;

    // The second one succeeds on its last allowed attempt.
    let third = chaos_retry_until(1, 3);
    let last_chance = chaos_retry_until(2, 5);
    let plain = chaos_ok(3);
    let events = [third.clone(), last_chance.clone(), plain];
    let ids = publish_all(&mut con, ns, &events).await;
    let stream = stream_key(ns, CHAOS_EVENT);
    wait_until_drained(&con, &stream, GROUP, &ids[2]).await;

    let state = kv(&mut con, ns, "chaos").await;
    assert_eq!(
        state.get(&attempt_key(&third)).map(String::as_str),
        Some("3"),
        "the guest saw attempts 1, 2, 3 and succeeded on the third: {state:?}"
    );
    assert_eq!(
        state.get(&attempt_key(&last_chance)).map(String::as_str),
        Some("5"),
        "attempt 5 of max_attempts 5 still runs: {state:?}"
    );
    assert_handled_exactly_once(&state, &events);
    assert!(
        dead_letters(&mut con, ns, "chaos").await.is_empty(),
        "nothing ran out of attempts"
    );
    assert!(
        error_reports(&mut con, ns).await.is_empty(),
        "a retry that ends well is no error"
    );
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_event_is_dead_lettered_after_max_attempts_deliveries() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_retry_exhausted";
    let host = Host::start(
        &HostConfig::new(redis.url(), ns).handler(chaos().max_attempts(3).quick_retries()),
    )
    .await;

    let hopeless = chaos_fault(1, "retry");
    let behind = chaos_ok(2);
    let ids = publish_all(&mut con, ns, &[hopeless, behind.clone()]).await;
    let stream = stream_key(ns, CHAOS_EVENT);
    wait_until_drained(&con, &stream, GROUP, &ids[1]).await;

    let letters = wait_for_dead_letters(&con, ns, "chaos", 1).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let source = entries(&mut con, &stream).await.remove(0);
    assert_dead_letter(
        letter_for(&letters, &ids[0]),
        &source,
        &Expected {
            handler: "chaos",
            stream: &stream,
            attempts: 3,
            reason_prefix: "max_attempts: retry: chaos: asked to retry",
        },
    );
    assert_reported_once(&wait_for_error_reports(&con, ns, 1).await, &letters[0]);
    assert_handled_exactly_once(&kv(&mut con, ns, "chaos").await, &[behind]);
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempt_number_counts_the_deliveries_made_before_a_restart() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_attempts_survive";
    let stream = stream_key(ns, CHAOS_EVENT);
    create_group(&mut con, &stream, GROUP, "0").await;
    let event = chaos_retry_until(1, 2);
    publish_all(&mut con, ns, std::slice::from_ref(&event)).await;

    // An earlier run of host-a was delivered the entry twice (read, then re-read from its
    // own pending entries) and died both times before committing.
    let first = read_without_ack(&mut con, &stream, GROUP, "host-a", 1).await;
    let again: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg("host-a")
        .arg("STREAMS")
        .arg(&stream)
        .arg("0")
        .query_async(&mut con)
        .await
        .expect("re-read host-a's pending entry");
    assert_ne!(again, redis::Value::Nil, "the entry was delivered again");

    // Delivery 3 is the first of the restarted host. A host counting attempts itself would
    // call it attempt 1, fail, and succeed on its own attempt 2.
    let host = Host::start(
        &HostConfig::new(redis.url(), ns)
            .consumer("host-a")
            .handler(chaos().max_attempts(5).quick_retries()),
    )
    .await;
    wait_until_drained(&con, &stream, GROUP, &first[0]).await;
    let state = kv(&mut con, ns, "chaos").await;
    assert_eq!(
        state.get(&attempt_key(&event)).map(String::as_str),
        Some("3"),
        "the attempt number is the delivery count: {state:?}"
    );
    assert_handled_exactly_once(&state, &[event]);
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_concurrency_one_a_retrying_entry_holds_back_the_entries_behind_it() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_retry_in_order";
    // Pauses of 300 ms and more between attempts: entries overtaking the retrying one would
    // be committed within that window, and the polling below would see them.
    let handler = chaos()
        .concurrency(1)
        .max_attempts(5)
        .retry_backoff_ms(300)
        .retry_backoff_max_ms(1000);
    let host = Host::start(&HostConfig::new(redis.url(), ns).handler(handler)).await;

    let head = chaos_retry_until(1, 3);
    let behind: Vec<Event> = (2..=6).map(chaos_ok).collect();
    let mut events = vec![head.clone()];
    events.extend(behind.iter().cloned());
    publish_all(&mut con, ns, &events).await;

    // Until the head's success is committed, none of the entries behind it may be.
    let what = "every event handled, none before the retried head";
    eventually(PATIENCE, what, || {
        let mut con = con.clone();
        let (head, behind) = (head.clone(), behind.clone());
        async move {
            let state = kv(&mut con, ns, "chaos").await;
            let head_done = state.contains_key(&attempt_key(&head));
            let overtaken: Vec<&str> = behind
                .iter()
                .filter(|e| state.contains_key(&seen_key(e)))
                .map(|e| e.event_id.as_str())
                .collect();
            assert!(
                head_done || overtaken.is_empty(),
                "{overtaken:?} were committed while the entry before them was still being \
                 retried: {state:?}"
            );
            if head_done && overtaken.len() == behind.len() {
                Ok(())
            } else {
                Err(format!(
                    "head done: {head_done}, handled behind it: {overtaken:?}"
                ))
            }
        }
    })
    .await;

    let state = kv(&mut con, ns, "chaos").await;
    assert_eq!(
        state.get(&attempt_key(&head)).map(String::as_str),
        Some("3")
    );
    assert_handled_exactly_once(&state, &events);
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_ordering_key_only_entries_of_the_same_key_wait_for_a_retry() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_retry_keyed";
    // Truck A's first entry fails on every attempt, with pauses of a second and more: it is
    // still being retried long after everything else could have been handled.
    let handler = chaos()
        .concurrency(4)
        .ordering_key("truck_id")
        .max_attempts(10)
        .retry_backoff_ms(1000)
        .retry_backoff_max_ms(5000);
    let host = Host::start(&HostConfig::new(redis.url(), ns).handler(handler)).await;

    let truck = |event: Event, truck: &str| with_data(event, "truck_id", truck);
    let stuck = truck(chaos_fault(1, "retry"), "truck-a");
    let same_key: Vec<Event> = [2, 4].map(|n| truck(chaos_ok(n), "truck-a")).to_vec();
    let other_key: Vec<Event> = [3, 5, 6].map(|n| truck(chaos_ok(n), "truck-b")).to_vec();
    let events = [
        stuck.clone(),
        same_key[0].clone(),
        other_key[0].clone(),
        same_key[1].clone(),
        other_key[1].clone(),
        other_key[2].clone(),
    ];
    publish_all(&mut con, ns, &events).await;

    eventually(PATIENCE, "truck B's events handled", || {
        let mut con = con.clone();
        let other_key = other_key.clone();
        async move {
            let state = kv(&mut con, ns, "chaos").await;
            other_key
                .iter()
                .all(|e| state.get(&seen_key(e)).map(String::as_str) == Some("1"))
        }
    })
    .await;

    assert!(
        dead_letters(&mut con, ns, "chaos").await.is_empty(),
        "truck A's first entry is still being retried"
    );
    let state = kv(&mut con, ns, "chaos").await;
    let overtaken: Vec<&str> = same_key
        .iter()
        .filter(|e| state.contains_key(&seen_key(e)))
        .map(|e| e.event_id.as_str())
        .collect();
    assert!(
        overtaken.is_empty(),
        "truck A's later entries wait for its first: {overtaken:?} were handled ({state:?})"
    );
    host.stop().await.expect("host stops cleanly");
}
