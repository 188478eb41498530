//! Shutdown: on SIGTERM or SIGINT the host stops reading, lets calls in flight finish (within
//! `shutdown_timeout_ms`) and commit, leaves the rest pending for the next owner and exits
//! with status 0; a second signal ends it at once. Either way nothing committed is lost and
//! nothing is committed twice.

use std::collections::HashSet;
use std::time::Duration;

use watchtower_tests::fixtures::{
    CHAOS_EVENT, assert_handled_exactly_once, chaos_ok, chaos_slow, seen_counts, seen_key,
    wait_for_handled,
};
use watchtower_tests::groups::{
    group_info, id_key, pending_ids, wait_for_group, wait_until_drained, wait_until_drained_within,
    wait_until_in_flight_for,
};
use watchtower_tests::streams::{kv, publish_all};
use watchtower_tests::{
    Event, HandlerConfig, Host, HostConfig, RedisServer, RunningProcess, eventually, guests,
    stream_key,
};

const GROUP: &str = "shutdown";

/// Slack on top of a configured bound, for a debug build on a busy two-core machine.
const MARGIN: Duration = Duration::from_secs(20);

fn chaos() -> HandlerConfig {
    HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT]).group(GROUP)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_exits_zero_and_the_next_host_finishes_without_loss_or_duplicates() {
    const SHUTDOWN_TIMEOUT_MS: u64 = 10_000;
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_sigterm_burst";
    let stream = stream_key(ns, CHAOS_EVENT);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = HostConfig::new(redis.url(), ns)
        .consumer("host-a")
        .batch_size(20)
        .shutdown_timeout_ms(SHUTDOWN_TIMEOUT_MS)
        .handler(chaos());
    let mut process = RunningProcess::run_host(&config.write_to(dir.path()));
    wait_for_group(&con, &stream, GROUP).await;

    // Every eighth call takes 200 ms, so a call is in flight most of the time.
    let events: Vec<Event> = (1..=400)
        .map(|n| {
            if n % 8 == 0 {
                chaos_slow(n, 200)
            } else {
                chaos_ok(n)
            }
        })
        .collect();
    let ids = publish_all(&mut con, ns, &events).await;
    wait_for_handled(&con, ns, "chaos", 40, &mut process).await;

    process.terminate();
    let output = process
        .wait(Duration::from_millis(SHUTDOWN_TIMEOUT_MS) + MARGIN)
        .await;
    assert!(output.success(), "SIGTERM is a clean stop: {output}");

    // What the stopped host committed is exactly what it acknowledged: every entry it was
    // handed is either committed once or still pending, untouched.
    let info = group_info(&mut con, &stream, GROUP)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let left: HashSet<String> = pending_ids(&mut con, &stream, GROUP)
        .await
        .into_iter()
        .collect();
    let seen = seen_counts(&kv(&mut con, ns, "chaos").await);
    for (event, id) in events.iter().zip(&ids) {
        let delivered = id_key(id) <= id_key(&info.last_delivered_id);
        let committed = seen.get(&event.event_id).map(String::as_str);
        let expected = (delivered && !left.contains(id)).then_some("1");
        assert_eq!(
            committed,
            expected,
            "entry {id} (delivered: {delivered}, pending: {})",
            left.contains(id)
        );
    }
    assert!(
        seen.len() < events.len(),
        "the signal came before the end of the burst"
    );

    // The same consumer name picks up its pending entries, then the rest.
    let host = Host::start(&config).await;
    wait_until_drained_within(
        Duration::from_secs(120),
        &con,
        &stream,
        GROUP,
        ids.last().expect("published"),
    )
    .await;
    assert_handled_exactly_once(&kv(&mut con, ns, "chaos").await, &events);
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_in_flight_at_shutdown_finishes_and_commits() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_shutdown_in_flight";
    let stream = stream_key(ns, CHAOS_EVENT);
    let config = HostConfig::new(redis.url(), ns)
        .shutdown_timeout_ms(20_000)
        .handler(chaos().timeout_ms(10_000));
    let host = Host::start(&config).await;

    let slow = chaos_slow(1, 1500);
    let ids = publish_all(&mut con, ns, std::slice::from_ref(&slow)).await;
    wait_until_in_flight_for(&con, &stream, GROUP, &ids[0], 200).await;

    host.stop().await.expect("host stops cleanly");
    assert_handled_exactly_once(&kv(&mut con, ns, "chaos").await, &[slow]);
    assert!(
        pending_ids(&mut con, &stream, GROUP).await.is_empty(),
        "the finished call was acknowledged before the host returned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_outlasting_the_shutdown_timeout_is_abandoned_uncommitted_and_left_pending() {
    const SHUTDOWN_TIMEOUT_MS: u64 = 1000;
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_shutdown_timeout";
    let stream = stream_key(ns, CHAOS_EVENT);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = HostConfig::new(redis.url(), ns)
        .shutdown_timeout_ms(SHUTDOWN_TIMEOUT_MS)
        .handler(chaos().timeout_ms(120_000))
        .write_to(dir.path());
    let process = RunningProcess::run_host(&config);

    let slow = chaos_slow(1, 60_000);
    let ids = publish_all(&mut con, ns, std::slice::from_ref(&slow)).await;
    wait_until_in_flight_for(&con, &stream, GROUP, &ids[0], 200).await;

    process.terminate();
    let output = process
        .wait(Duration::from_millis(SHUTDOWN_TIMEOUT_MS) + MARGIN)
        .await;
    assert!(
        output.success(),
        "running out of shutdown time is still a clean stop: {output}"
    );
    assert!(
        !kv(&mut con, ns, "chaos")
            .await
            .contains_key(&seen_key(&slow)),
        "the abandoned call committed nothing"
    );
    assert_eq!(
        pending_ids(&mut con, &stream, GROUP).await,
        ids,
        "its entry waits for the next owner"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_signal_stops_the_host_at_once() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_second_signal";
    let stream = stream_key(ns, CHAOS_EVENT);
    let dir = tempfile::tempdir().expect("tempdir");
    // The in-flight call would take a minute and the host would wait two for it.
    let config = HostConfig::new(redis.url(), ns)
        .shutdown_timeout_ms(120_000)
        .handler(chaos().timeout_ms(120_000))
        .write_to(dir.path());
    let mut process = RunningProcess::run_host(&config);

    let slow = chaos_slow(1, 60_000);
    let ids = publish_all(&mut con, ns, std::slice::from_ref(&slow)).await;
    wait_until_in_flight_for(&con, &stream, GROUP, &ids[0], 200).await;

    // Signals that arrive together may be merged into one, so keep signalling until the
    // host is gone: every signal after the first is a second one.
    process.terminate();
    eventually(MARGIN, "the host to exit on a second signal", || {
        let exited = process.has_exited();
        if !exited {
            process.terminate();
        }
        async move { exited }
    })
    .await;
    let output = process.wait(Duration::from_secs(5)).await;
    assert!(
        !kv(&mut con, ns, "chaos")
            .await
            .contains_key(&seen_key(&slow)),
        "the interrupted call committed nothing: {output}"
    );
    assert_eq!(
        pending_ids(&mut con, &stream, GROUP).await,
        ids,
        "its entry waits for the next owner"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_the_host_with_status_zero() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_sigint";
    let stream = stream_key(ns, CHAOS_EVENT);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = HostConfig::new(redis.url(), ns)
        .handler(chaos())
        .write_to(dir.path());
    let mut process = RunningProcess::run_host(&config);
    let event = chaos_ok(1);
    let ids = publish_all(&mut con, ns, std::slice::from_ref(&event)).await;
    wait_for_handled(&con, ns, "chaos", 1, &mut process).await;
    wait_until_drained(&con, &stream, GROUP, &ids[0]).await;

    process.interrupt();
    let output = process.wait(MARGIN).await;
    assert!(output.success(), "Ctrl-C is a clean stop: {output}");
}
