//! Recovery: entries a consumer read but never acknowledged (its host died between reading
//! and committing) are finished by the next host with that consumer name, and are left to
//! their owner while they are younger than `claim_idle_ms`.
//!
//! The dead host is simulated with a plain `XREADGROUP`: that is all a host leaves behind
//! when it dies after reading.

use watchtower_tests::fixtures::{CHAOS_EVENT, chaos_ok, seen_key};
use watchtower_tests::groups::{create_group, pending, read_without_ack, wait_until_drained};
use watchtower_tests::streams::{kv, publish_all, wait_for_field};
use watchtower_tests::{
    Event, HandlerConfig, Host, HostConfig, RedisServer, guests, kv_key, publish, stream_key,
};

const GROUP: &str = "recovery";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_restarted_with_the_same_consumer_name_finishes_its_own_pending_entries() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_own_pending";
    let stream = stream_key(ns, CHAOS_EVENT);
    create_group(&mut con, &stream, GROUP, "0").await;
    let orphans: Vec<Event> = (1..=5).map(chaos_ok).collect();
    publish_all(&mut con, ns, &orphans).await;
    let read = read_without_ack(&mut con, &stream, GROUP, "host-a", 5).await;
    assert_eq!(read.len(), 5, "the simulated host read every entry");

    // The group's position is past these entries: only a read of host-a's own pending
    // entries can reach them.
    let config = HostConfig::new(redis.url(), ns)
        .consumer("host-a")
        .handler(HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT]).group(GROUP));
    let host = Host::start(&config).await;
    wait_until_drained(&con, &stream, GROUP, &read[4]).await;

    let state = kv(&mut con, ns, "chaos").await;
    for event in &orphans {
        assert_eq!(
            state.get(&seen_key(event)).map(String::as_str),
            Some("1"),
            "{} handled once",
            event.event_id
        );
    }

    // Recovery is a first step, not a mode: new entries flow afterwards.
    let fresh = chaos_ok(6);
    let fresh_id = publish(&mut con, ns, &fresh).await;
    wait_until_drained(&con, &stream, GROUP, &fresh_id).await;
    assert_eq!(
        kv(&mut con, ns, "chaos")
            .await
            .get(&seen_key(&fresh))
            .map(String::as_str),
        Some("1")
    );
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_entries_of_another_consumer_are_left_alone_before_claim_idle_ms() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_others_pending";
    let stream = stream_key(ns, CHAOS_EVENT);
    create_group(&mut con, &stream, GROUP, "0").await;
    let theirs: Vec<Event> = (1..=3).map(chaos_ok).collect();
    publish_all(&mut con, ns, &theirs).await;
    let read = read_without_ack(&mut con, &stream, GROUP, "host-gone", 3).await;

    let config = HostConfig::new(redis.url(), ns)
        .consumer("host-a")
        .claim_idle_ms(600_000)
        .handler(HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT]).group(GROUP));
    let host = Host::start(&config).await;
    let fresh = chaos_ok(4);
    publish(&mut con, ns, &fresh).await;
    wait_for_field(&con, &kv_key(ns, "chaos"), &seen_key(&fresh), "1").await;

    let still_pending = pending(&mut con, &stream, GROUP).await;
    let expected: Vec<(String, String)> = read
        .iter()
        .map(|id| (id.clone(), "host-gone".to_owned()))
        .collect();
    assert_eq!(
        still_pending, expected,
        "entries of a recently seen consumer stay with it"
    );
    let state = kv(&mut con, ns, "chaos").await;
    for event in &theirs {
        assert!(
            !state.contains_key(&seen_key(event)),
            "{} is not host-a's to handle yet",
            event.event_id
        );
    }
    host.stop().await.expect("host stops cleanly");
}
