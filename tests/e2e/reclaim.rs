//! Reclaim: what a dead consumer leaves behind is taken over. Entries idle longer than
//! `claim_idle_ms` in another consumer are claimed and handled, consumers that are gone and
//! own nothing are removed after `consumer_grace_ms`, and a group or stream deleted under a
//! running host is recreated. (A whole host killed mid-stream is in `faults.rs`.)

use watchtower_tests::fixtures::{CHAOS_EVENT, assert_handled_exactly_once, chaos_ok, seen_key};
use watchtower_tests::groups::{
    consumers, create_consumer, create_group, destroy_group, pending, read_without_ack,
    wait_for_group, wait_until_drained,
};
use watchtower_tests::streams::{kv, publish_all, wait_for_field};
use watchtower_tests::{
    Event, HandlerConfig, Host, HostConfig, PATIENCE, RedisServer, eventually, guests, kv_key,
    publish, stream_key,
};

const GROUP: &str = "reclaim";

/// The `chaos` handler in [`GROUP`], with retry pauses short enough for any
/// `claim_idle_ms` these tests use.
fn chaos() -> HandlerConfig {
    HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT])
        .group(GROUP)
        .quick_retries()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_a_dead_consumer_are_claimed_after_claim_idle_ms_and_handled() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_claim_ghost";
    let stream = stream_key(ns, CHAOS_EVENT);
    create_group(&mut con, &stream, GROUP, "0").await;
    let orphans: Vec<Event> = (1..=3).map(chaos_ok).collect();
    publish_all(&mut con, ns, &orphans).await;
    let read = read_without_ack(&mut con, &stream, GROUP, "ghost", 3).await;
    assert_eq!(read.len(), 3, "the ghost read every entry");

    let config = HostConfig::new(redis.url(), ns)
        .consumer("host-a")
        .claim_idle_ms(1000)
        .claim_interval_ms(200)
        .handler(chaos());
    let host = Host::start(&config).await;
    wait_until_drained(&con, &stream, GROUP, &read[2]).await;

    assert_handled_exactly_once(&kv(&mut con, ns, "chaos").await, &orphans);
    assert!(
        pending(&mut con, &stream, GROUP).await.is_empty(),
        "nothing left with the ghost"
    );
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_consumer_owning_nothing_is_removed_after_the_grace_period_and_an_owner_is_kept() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_consumer_grace";
    let stream = stream_key(ns, CHAOS_EVENT);
    create_group(&mut con, &stream, GROUP, "0").await;
    publish_all(&mut con, ns, &[chaos_ok(1)]).await;
    // "owner" holds the only entry; "empty" joined the group and got nothing.
    let held = read_without_ack(&mut con, &stream, GROUP, "owner", 1).await;
    assert_eq!(held.len(), 1);
    create_consumer(&mut con, &stream, GROUP, "empty").await;
    let names: Vec<String> = consumers(&mut con, &stream, GROUP)
        .await
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["empty", "owner"], "both are consumers of the group");

    // The owner's entry is far from claim_idle_ms: it stays the owner's.
    let config = HostConfig::new(redis.url(), ns)
        .consumer("host-a")
        .claim_idle_ms(600_000)
        .claim_interval_ms(200)
        .consumer_grace_ms(500)
        .handler(chaos());
    let host = Host::start(&config).await;

    let remaining = eventually(PATIENCE, "the idle empty consumer removed", || {
        let mut con = con.clone();
        let stream = stream.clone();
        async move {
            let all = consumers(&mut con, &stream, GROUP).await;
            if all.iter().any(|(name, _)| name == "empty") {
                Err(format!("{all:?}"))
            } else {
                Ok(all)
            }
        }
    })
    .await;
    assert!(
        remaining.contains(&("owner".to_owned(), 1)),
        "a consumer that still owns an entry is kept: {remaining:?}"
    );
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_deleted_under_a_running_host_is_recreated_and_reading_goes_on() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_group_deleted";
    let stream = stream_key(ns, CHAOS_EVENT);
    let host = Host::start(&HostConfig::new(redis.url(), ns).handler(chaos())).await;
    let before = chaos_ok(1);
    publish(&mut con, ns, &before).await;
    let state = kv_key(ns, "chaos");
    wait_for_field(&con, &state, &seen_key(&before), "1").await;

    // An event published while the group is gone is not skipped, and the one handled
    // before is not handled again: the group comes back where this host had read up to.
    destroy_group(&mut con, &stream, GROUP).await;
    let after = chaos_ok(2);
    let after_id = publish(&mut con, ns, &after).await;
    wait_for_field(&con, &state, &seen_key(&after), "1").await;
    wait_until_drained(&con, &stream, GROUP, &after_id).await;
    assert_handled_exactly_once(&kv(&mut con, ns, "chaos").await, &[before, after]);
    assert!(host.is_running(), "a missing group is not fatal");
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_deleted_under_a_running_host_is_recreated_and_reading_goes_on() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_stream_deleted";
    let stream = stream_key(ns, CHAOS_EVENT);
    let host = Host::start(&HostConfig::new(redis.url(), ns).handler(chaos())).await;
    let before = chaos_ok(1);
    publish(&mut con, ns, &before).await;
    let state = kv_key(ns, "chaos");
    wait_for_field(&con, &state, &seen_key(&before), "1").await;

    let deleted: i64 = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut con)
        .await
        .expect("DEL the stream");
    assert_eq!(deleted, 1);
    wait_for_group(&con, &stream, GROUP).await;
    let after = chaos_ok(2);
    let after_id = publish(&mut con, ns, &after).await;
    wait_for_field(&con, &state, &seen_key(&after), "1").await;
    wait_until_drained(&con, &stream, GROUP, &after_id).await;
    assert!(host.is_running(), "a missing stream is not fatal");
    host.stop().await.expect("host stops cleanly");
}
