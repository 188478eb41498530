//! Isolation: a call that traps, runs away, blows its memory or fails on purpose commits
//! nothing, ends in its handler's dead-letter stream (at once for `reject`, after
//! `max_attempts` for the rest), and stops neither the entries behind it nor any other
//! handler. The failures come from the `chaos` guest.

use std::collections::{BTreeSet, HashMap};

use watchtower_tests::dead_letters::{
    Expected, assert_dead_letter, assert_reported_once, errors_key, letter_for,
    wait_for_dead_letters, wait_for_error_reports,
};
use watchtower_tests::fixtures::{CHAOS_EVENT, DEFAULT_GROUP, chaos_fault, chaos_ok, seen_key};
use watchtower_tests::groups::{wait_for_delivery, wait_until_drained};
use watchtower_tests::streams::{entries, keys, kv, publish_all};
use watchtower_tests::{HandlerConfig, Host, HostConfig, RedisServer, guests, stream_key};

/// Feeds `handler` (a `chaos` handler named "chaos" on [`CHAOS_EVENT`]) a `mode` fault and
/// then a good event, and checks that only the good one left effects and that the fault
/// was dead-lettered after `attempts` deliveries with a reason starting `reason_prefix`.
async fn failed_call_commits_nothing(
    ns: &str,
    mode: &str,
    handler: HandlerConfig,
    attempts: u32,
    reason_prefix: &str,
) {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let host = Host::start(&HostConfig::new(redis.url(), ns).handler(handler)).await;

    let fault = chaos_fault(1, mode);
    let good = chaos_ok(2);
    let ids = publish_all(&mut con, ns, &[fault.clone(), good.clone()]).await;
    let stream = stream_key(ns, CHAOS_EVENT);
    wait_until_drained(&con, &stream, DEFAULT_GROUP, &ids[1]).await;

    let expected_state: HashMap<String, String> = [
        ("handled".to_owned(), "1".to_owned()),
        (seen_key(&good), "1".to_owned()),
    ]
    .into();
    assert_eq!(
        kv(&mut con, ns, "chaos").await,
        expected_state,
        "only the good event left kv effects"
    );
    let event_streams: BTreeSet<String> = keys(&mut con, &format!("{ns}:events:*"))
        .await
        .into_iter()
        .collect();
    assert_eq!(
        event_streams,
        BTreeSet::from([stream.clone(), errors_key(ns)]),
        "the failed call published nothing; only its dead letter was announced"
    );

    let letters = wait_for_dead_letters(&con, ns, "chaos", 1).await;
    assert_eq!(letters.len(), 1, "one dead letter: {letters:?}");
    let source = entries(&mut con, &stream).await.remove(0);
    let letter = letter_for(&letters, &ids[0]);
    assert_dead_letter(
        letter,
        &source,
        &Expected {
            handler: "chaos",
            stream: &stream,
            attempts,
            reason_prefix,
        },
    );
    assert_reported_once(&wait_for_error_reports(&con, ns, 1).await, letter);
    assert!(host.is_running(), "a failing guest does not stop the host");
    host.stop().await.expect("host stops cleanly");
}

/// The `chaos` handler, giving up after two deliveries with short pauses between them.
fn chaos_handler() -> HandlerConfig {
    HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT])
        .max_attempts(2)
        .quick_retries()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_panic_commits_nothing_and_the_next_event_is_handled() {
    failed_call_commits_nothing(
        "t_publish_then_panic",
        "publish-then-panic",
        chaos_handler(),
        2,
        "max_attempts: trap",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trapping_call_commits_nothing_and_is_dead_lettered_after_max_attempts() {
    failed_call_commits_nothing("t_panic", "panic", chaos_handler(), 2, "max_attempts: trap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_running_past_its_timeout_is_interrupted_and_commits_nothing() {
    failed_call_commits_nothing(
        "t_loop",
        "loop",
        chaos_handler().timeout_ms(300),
        2,
        "max_attempts: timeout after 300 ms",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_growing_past_its_memory_limit_is_stopped_and_commits_nothing() {
    failed_call_commits_nothing(
        "t_oom",
        "oom",
        chaos_handler().memory_limit_mb(32),
        2,
        "max_attempts: memory_limit",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_from_the_handler_commits_nothing() {
    failed_call_commits_nothing(
        "t_retry",
        "retry",
        chaos_handler(),
        2,
        "max_attempts: retry: chaos: asked to retry",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_from_the_handler_commits_nothing_and_is_dead_lettered_at_once() {
    // Five attempts allowed, one used: a rejection is final.
    failed_call_commits_nothing(
        "t_reject",
        "reject",
        chaos_handler().max_attempts(5),
        1,
        "rejected: chaos: asked to reject",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_in_one_handler_does_not_stop_another() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_trap_neighbour";
    const OTHER_EVENT: &str = "chaos.other";
    let config = HostConfig::new(redis.url(), ns)
        .handler(
            HandlerConfig::new("chaos-a", guests::chaos(), [CHAOS_EVENT])
                .max_attempts(4)
                .retry_backoff_ms(300)
                .retry_backoff_max_ms(2000),
        )
        .handler(HandlerConfig::new(
            "chaos-b",
            guests::chaos(),
            [OTHER_EVENT],
        ));
    let host = Host::start(&config).await;

    // chaos-a traps on every delivery of its first entry until it gives up on it, seconds
    // later; chaos-b handles its own stream meanwhile, and chaos-a's next entry gets through
    // afterwards.
    let crash = chaos_fault(1, "panic");
    let crash_id = publish_all(&mut con, ns, &[crash]).await;
    let stream_a = stream_key(ns, CHAOS_EVENT);
    wait_for_delivery(&con, &stream_a, DEFAULT_GROUP, &crash_id[0]).await;
    let mut for_b = chaos_ok(2);
    for_b.event_type = OTHER_EVENT.to_owned();
    let for_a = chaos_ok(3);
    let b_ids = publish_all(&mut con, ns, std::slice::from_ref(&for_b)).await;
    let a_ids = publish_all(&mut con, ns, std::slice::from_ref(&for_a)).await;
    wait_until_drained(&con, &stream_key(ns, OTHER_EVENT), DEFAULT_GROUP, &b_ids[0]).await;
    wait_until_drained(&con, &stream_a, DEFAULT_GROUP, &a_ids[0]).await;
    let letters = wait_for_dead_letters(&con, ns, "chaos-a", 1).await;
    assert_eq!(
        letter_for(&letters, &crash_id[0]).field("dlq_attempts"),
        "4"
    );

    assert_eq!(
        kv(&mut con, ns, "chaos-b")
            .await
            .get(&seen_key(&for_b))
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(
        kv(&mut con, ns, "chaos-a")
            .await
            .get(&seen_key(&for_a))
            .map(String::as_str),
        Some("1")
    );
    host.stop().await.expect("host stops cleanly");
}
