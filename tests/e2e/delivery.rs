//! Delivery through consumer groups: every group sees every entry, the consumers of one group
//! share the entries without overlap, and a group starts where the SPEC says.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use watchtower_tests::dead_letters::dead_letters;
use watchtower_tests::fixtures::{CHAOS_EVENT, DEFAULT_GROUP, chaos_ok, position, seen_key};
use watchtower_tests::groups::{
    consumers, create_group, group_info, pending_ids, wait_for_group, wait_until_drained,
};
use watchtower_tests::streams::{kv, publish_all};
use watchtower_tests::{
    Event, HandlerConfig, Host, HostConfig, PATIENCE, RedisServer, eventually, guests, publish,
    stream_key,
};

/// Asserts that the `chaos` handler `handler` handled each of `events` exactly once.
async fn assert_each_seen_once(
    con: &mut redis::aio::MultiplexedConnection,
    ns: &str,
    handler: &str,
    events: &[Event],
) {
    let state = kv(con, ns, handler).await;
    for event in events {
        let key = seen_key(event);
        assert_eq!(
            state.get(&key).map(String::as_str),
            Some("1"),
            "{handler}: {key} should be \"1\" (handled exactly once)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_group_on_a_stream_sees_every_event() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_two_groups";
    let config = HostConfig::new(redis.url(), ns)
        .handler(HandlerConfig::new("chaos-a", guests::chaos(), [CHAOS_EVENT]).group("group-a"))
        .handler(HandlerConfig::new("chaos-b", guests::chaos(), [CHAOS_EVENT]).group("group-b"));
    let host = Host::start(&config).await;

    let events: Vec<Event> = (1..=40).map(chaos_ok).collect();
    let ids = publish_all(&mut con, ns, &events).await;
    let last = ids.last().expect("published some");
    let stream = stream_key(ns, CHAOS_EVENT);
    wait_until_drained(&con, &stream, "group-a", last).await;
    wait_until_drained(&con, &stream, "group-b", last).await;

    assert_each_seen_once(&mut con, ns, "chaos-a", &events).await;
    assert_each_seen_once(&mut con, ns, "chaos-b", &events).await;
    host.stop().await.expect("host stops cleanly");
}

/// `blocked_clients` from `INFO clients`: consumers waiting in `XREADGROUP … BLOCK`.
async fn blocked_clients(con: &mut redis::aio::MultiplexedConnection) -> usize {
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(con)
        .await
        .expect("INFO clients");
    info.lines()
        .find_map(|line| line.strip_prefix("blocked_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO clients reports blocked_clients")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_in_one_group_share_the_work_without_handling_an_event_twice() {
    const EVENTS: u64 = 2000;
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_two_hosts";
    let stream = stream_key(ns, CHAOS_EVENT);
    let host_config = |consumer: &str| {
        HostConfig::new(redis.url(), ns)
            .consumer(consumer)
            .batch_size(50)
            .handler(HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT]))
    };
    let host_a = Host::start(&host_config("host-a")).await;
    let host_b = Host::start(&host_config("host-b")).await;

    // Publish only once both are reading, so neither can drain the stream alone before the
    // other starts. A host shows it is reading either as a registered consumer (Redis 7.0
    // registers one on its first read of its own pending entries) or as a client blocked in
    // XREADGROUP.
    wait_for_group(&con, &stream, DEFAULT_GROUP).await;
    eventually(PATIENCE, "both hosts reading the stream", || {
        let mut con = con.clone();
        let stream = stream.clone();
        async move {
            let names: Vec<String> = consumers(&mut con, &stream, DEFAULT_GROUP)
                .await
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            let both_registered =
                names.iter().any(|n| n == "host-a") && names.iter().any(|n| n == "host-b");
            let blocked = blocked_clients(&mut con).await;
            if both_registered || blocked >= 2 {
                Ok(())
            } else {
                Err(format!("consumers {names:?}, blocked clients {blocked}"))
            }
        }
    })
    .await;

    let events: Vec<Event> = (1..=EVENTS).map(chaos_ok).collect();
    let mut last = String::new();
    for chunk in events.chunks(500) {
        last = publish_all(&mut con, ns, chunk)
            .await
            .pop()
            .expect("published a chunk");
    }
    // While waiting for the group to drain, note which consumers are seen holding entries:
    // each host holds a batch for the whole time it handles it, so one that works is seen.
    let busy: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let what = format!("both hosts to get through {EVENTS} events");
    eventually(Duration::from_secs(120), &what, || {
        let mut con = con.clone();
        let (stream, last, busy) = (stream.clone(), last.clone(), Arc::clone(&busy));
        async move {
            for (name, pending) in consumers(&mut con, &stream, DEFAULT_GROUP).await {
                if pending > 0 {
                    busy.lock().expect("not poisoned").insert(name);
                }
            }
            let info = group_info(&mut con, &stream, DEFAULT_GROUP).await?;
            if info.last_delivered_id == last && info.pending == 0 {
                Ok(())
            } else {
                Err(format!(
                    "last delivered {}, {} pending",
                    info.last_delivered_id, info.pending
                ))
            }
        }
    })
    .await;

    let state = kv(&mut con, ns, "chaos").await;
    let seen: Vec<(&String, &String)> = state
        .iter()
        .filter(|(k, _)| k.starts_with("seen:"))
        .collect();
    let twice: Vec<&(&String, &String)> = seen.iter().filter(|(_, v)| v.as_str() != "1").collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    assert_eq!(seen.len() as u64, EVENTS, "every event handled once");
    assert_each_seen_once(&mut con, ns, "chaos", &events).await;

    let busy: Vec<String> = busy.lock().expect("not poisoned").iter().cloned().collect();
    assert_eq!(
        busy,
        ["host-a", "host-b"],
        "both hosts took a share of the entries"
    );
    assert!(
        pending_ids(&mut con, &stream, DEFAULT_GROUP)
            .await
            .is_empty()
    );

    host_a.stop().await.expect("host-a stops cleanly");
    host_b.stop().await.expect("host-b stops cleanly");
}

/// The commit acknowledges a batch's entries without effects together, a thousand ids per
/// `XACK`: a batch of thousands is acknowledged completely, in one read and one commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_thousands_without_effects_is_acknowledged_completely() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_big_batch";
    let positions: Vec<Event> = (1..=2_500).map(|n| position(n, 50.0)).collect();
    let ids = publish_all(&mut con, ns, &positions).await;

    let config = HostConfig::new(redis.url(), ns)
        .batch_size(5_000)
        .handler(HandlerConfig::new(
            "noop",
            guests::noop(),
            ["position.updated"],
        ));
    let host = Host::start(&config).await;
    let stream = stream_key(ns, "position.updated");
    wait_until_drained(&con, &stream, DEFAULT_GROUP, ids.last().expect("published")).await;

    let info = group_info(&mut con, &stream, DEFAULT_GROUP)
        .await
        .expect("the group exists");
    assert_eq!(info.pending, 0, "every entry acknowledged");
    assert!(dead_letters(&mut con, ns, "noop").await.is_empty());
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_created_group_starts_at_the_oldest_entry() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_oldest";
    let history: Vec<Event> = (1..=3).map(chaos_ok).collect();
    let ids = publish_all(&mut con, ns, &history).await;

    let config = HostConfig::new(redis.url(), ns).handler(HandlerConfig::new(
        "chaos",
        guests::chaos(),
        [CHAOS_EVENT],
    ));
    let host = Host::start(&config).await;
    let stream = stream_key(ns, CHAOS_EVENT);
    wait_until_drained(&con, &stream, DEFAULT_GROUP, ids.last().expect("published")).await;

    assert_each_seen_once(&mut con, ns, "chaos", &history).await;
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_from_latest_skips_entries_already_in_the_stream() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_latest";
    let stream = stream_key(ns, CHAOS_EVENT);
    let history: Vec<Event> = (1..=3).map(chaos_ok).collect();
    publish_all(&mut con, ns, &history).await;

    let config = HostConfig::new(redis.url(), ns)
        .handler(HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT]).start_from("latest"));
    let host = Host::start(&config).await;
    // An event published before the group exists would be history too.
    wait_for_group(&con, &stream, DEFAULT_GROUP).await;
    let fresh = chaos_ok(4);
    let fresh_id = publish(&mut con, ns, &fresh).await;
    wait_until_drained(&con, &stream, DEFAULT_GROUP, &fresh_id).await;

    let state = kv(&mut con, ns, "chaos").await;
    assert_eq!(
        state.get(&seen_key(&fresh)).map(String::as_str),
        Some("1"),
        "the new event is handled"
    );
    for old in &history {
        assert!(
            !state.contains_key(&seen_key(old)),
            "{} was in the stream before the group: {state:?}",
            old.event_id
        );
    }
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_group_keeps_its_position() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_existing_group";
    let stream = stream_key(ns, CHAOS_EVENT);
    let history: Vec<Event> = (1..=3).map(chaos_ok).collect();
    let ids = publish_all(&mut con, ns, &history).await;
    // The group has consumed up to the second entry; the third is still to come.
    create_group(&mut con, &stream, DEFAULT_GROUP, &ids[1]).await;

    // "oldest" applies only to a group the host creates.
    let config = HostConfig::new(redis.url(), ns)
        .handler(HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT]).start_from("oldest"));
    let host = Host::start(&config).await;
    let fresh = chaos_ok(4);
    let fresh_id = publish(&mut con, ns, &fresh).await;
    wait_until_drained(&con, &stream, DEFAULT_GROUP, &fresh_id).await;

    let state = kv(&mut con, ns, "chaos").await;
    for handled in [&history[2], &fresh] {
        assert_eq!(
            state.get(&seen_key(handled)).map(String::as_str),
            Some("1"),
            "{} is after the group's position",
            handled.event_id
        );
    }
    for skipped in &history[..2] {
        assert!(
            !state.contains_key(&seen_key(skipped)),
            "{} is before the group's position: {state:?}",
            skipped.event_id
        );
    }
    host.stop().await.expect("host stops cleanly");
}
