//! Swapping while events flow: nothing lost, nothing handled twice, every call after the swap
//! on the new version, every call in flight finishing on the old one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use watchtower_tests::fixtures::{
    CHAOS_EVENT, DEFAULT_GROUP, chaos_ok, chaos_slow, seen_key, str_field, truck_id, with_data,
};
use watchtower_tests::groups::{pending_ids, wait_until_drained_within, wait_until_in_flight_for};
use watchtower_tests::streams::{entries, kv, publish_all};
use watchtower_tests::versions::{
    deploy_copy, digest, handler_version, label_of, version_label, write_in_place,
};
use watchtower_tests::{
    Event, HandlerConfig, PATIENCE, RedisServer, eventually, guests, stream_key,
};

use super::{Running, alert_id, alert_id_of, speeding, swap_config};

/// Positions published per batch of the steady flow.
const BATCH: u64 = 20;
/// The time between two batches: 1000 positions a second.
const PACE: Duration = Duration::from_millis(20);
/// Trucks the positions spread over; each truck's positions stay in order.
const TRUCKS: u64 = 8;
/// Batches published after the swap was answered.
const BATCHES_AFTER_SWAP: usize = 50;
/// Positions published at most before the swap is answered; the flow pauses there if the
/// swap takes longer.
const MAX_BEFORE_SWAP: u64 = 4_000;
/// Alerts to see before swapping: the old version has been serving for a while.
const ALERTS_BEFORE_SWAP: usize = 800;

/// Speeding position `n` of truck `n % TRUCKS`.
fn flow_position(n: u64) -> Event {
    with_data(speeding(n), "truck_id", &truck_id(n % TRUCKS))
}

/// What the steady publisher sent: each position, and whether it was published after the
/// swap had been answered.
struct Flow {
    positions: Vec<(Event, bool)>,
    last_id: String,
}

/// Publishes a batch every [`PACE`] until [`BATCHES_AFTER_SWAP`] batches have gone out after
/// `swapped` was set.
async fn publish_steadily(
    mut con: MultiplexedConnection,
    ns: String,
    swapped: Arc<AtomicBool>,
) -> Flow {
    let mut pace = tokio::time::interval(PACE);
    let mut positions = Vec::new();
    let mut last_id = String::new();
    let mut batches_after = 0;
    let mut next = 1;
    while batches_after < BATCHES_AFTER_SWAP {
        pace.tick().await;
        let after = swapped.load(Ordering::SeqCst);
        if !after && next > MAX_BEFORE_SWAP {
            continue;
        }
        let batch: Vec<Event> = (next..next + BATCH).map(flow_position).collect();
        next += BATCH;
        last_id = publish_all(&mut con, &ns, &batch)
            .await
            .pop()
            .expect("a batch is not empty");
        if after {
            batches_after += 1;
        }
        positions.extend(batch.into_iter().map(|event| (event, after)));
    }
    Flow { positions, last_id }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_under_a_steady_flow_handles_every_position_once_and_labels_alerts_by_version() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_swap_flow";
    let dir = tempfile::tempdir().expect("tempdir");
    let component = deploy_copy(&guests::speed_alert(), dir.path());
    let old = label_of(&component);
    let new_bytes = guests::variant(&component, "second build");
    let new = version_label(&new_bytes);
    let config = swap_config(&redis, ns, dir.path()).handler(
        HandlerConfig::new("speed-alert", &component, ["position.updated"])
            .concurrency(4)
            .ordering_key("truck_id"),
    );
    let host = Running::start(&config, dir.path()).await;
    let listed = host.admin.handler("speed-alert").await;
    assert_eq!(listed.version, old, "{listed:?}");
    let old_digest = digest(&std::fs::read(&component).expect("read the component"));
    assert!(
        listed.digest.contains(&old_digest),
        "the full sha256: {listed:?}"
    );

    let swapped = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn(publish_steadily(
        con.clone(),
        ns.to_owned(),
        Arc::clone(&swapped),
    ));
    let alerts_key = stream_key(ns, "alert.triggered");
    let before_swap = eventually(
        PATIENCE,
        &format!("{ALERTS_BEFORE_SWAP} alerts from the old version"),
        || {
            let mut con = con.clone();
            let alerts_key = alerts_key.clone();
            async move {
                let alerts = entries(&mut con, &alerts_key).await;
                if alerts.len() >= ALERTS_BEFORE_SWAP {
                    Ok(alerts)
                } else {
                    Err(format!("{} alerts", alerts.len()))
                }
            }
        },
    )
    .await;

    write_in_place(&component, &new_bytes);
    let reply = host.admin.reload("speed-alert").await.assert_status(200);
    swapped.store(true, Ordering::SeqCst);
    let body = reply.json();
    assert_eq!(body["swapped"], true, "{reply:?}");
    assert_eq!(body["version"], new.as_str(), "{reply:?}");
    assert_eq!(body["previous"], old.as_str(), "{reply:?}");

    let flow = publisher.await.expect("the publisher does not panic");
    let positions_key = stream_key(ns, "position.updated");
    wait_until_drained_within(
        Duration::from_secs(180),
        &con,
        &positions_key,
        DEFAULT_GROUP,
        &flow.last_id,
    )
    .await;

    let alerts = entries(&mut con, &alerts_key).await;
    let mut per_alert: HashMap<String, usize> = HashMap::new();
    for alert in &alerts {
        *per_alert.entry(alert_id_of(alert)).or_default() += 1;
    }
    let twice: Vec<(&String, &usize)> = per_alert.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "positions alerted more than once: {twice:?}"
    );
    let expected: HashSet<String> = flow.positions.iter().map(|(p, _)| alert_id(p)).collect();
    let alerted: HashSet<String> = per_alert.into_keys().collect();
    let missing: Vec<&String> = expected.difference(&alerted).take(20).collect();
    assert!(
        missing.is_empty(),
        "positions never alerted, e.g. {missing:?}"
    );
    let unexpected: Vec<&String> = alerted.difference(&expected).take(20).collect();
    assert!(
        unexpected.is_empty(),
        "alerts of no published position: {unexpected:?}"
    );
    assert_eq!(alerts.len(), flow.positions.len(), "one alert per position");

    let version_of: HashMap<String, String> = alerts
        .iter()
        .map(|alert| (alert_id_of(alert), handler_version(alert)))
        .collect();
    for alert in &before_swap {
        assert_eq!(
            handler_version(alert),
            old,
            "an alert committed before the swap came from the old version: {alert:?}"
        );
    }
    let after: Vec<&Event> = flow
        .positions
        .iter()
        .filter(|(_, after)| *after)
        .map(|(p, _)| p)
        .collect();
    assert!(!after.is_empty(), "positions were published after the swap");
    for position in after {
        assert_eq!(
            version_of[&alert_id(position)],
            new,
            "position {} was published after the swap was answered",
            position.event_id
        );
    }
    // Each truck's positions are handled one after the other: once one of them met the new
    // version, none after it went back to the old one.
    let mut per_truck: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for alert in &alerts {
        let truck = str_field(&alert.data(), "truck_id").to_owned();
        per_truck
            .entry(truck)
            .or_default()
            .push(handler_version(alert));
    }
    for (truck, versions) in &per_truck {
        assert!(
            versions.iter().all(|v| *v == old || *v == new),
            "truck {truck}: only the two versions ran: {versions:?}"
        );
        let first_new = versions
            .iter()
            .position(|v| *v == new)
            .unwrap_or(versions.len());
        assert!(
            versions[first_new..].iter().all(|v| *v == new),
            "truck {truck}: the old version handled a position after the new one did: {versions:?}"
        );
    }

    let listed = host.admin.handler("speed-alert").await;
    assert_eq!(listed.version, new, "{listed:?}");
    assert_eq!(
        listed.versions.first().map(|v| v.version.as_str()),
        Some(new.as_str()),
        "newest version first: {listed:?}"
    );
    // Counted as calls finish, which may trail their commit by a moment.
    let total = flow.positions.len() as u64;
    let admin = &host.admin;
    let (old, new) = (&old, &new);
    let listed = eventually(
        PATIENCE,
        "the versions' counts to add up to the positions",
        || async move {
            let listed = admin.handler("speed-alert").await;
            let handled: u64 = [old, new]
                .iter()
                .map(|v| listed.version_entry(v).handled)
                .sum();
            if handled == total {
                Ok(listed)
            } else {
                Err(format!("{handled} of {total}: {listed:?}"))
            }
        },
    )
    .await;
    assert!(listed.versions.iter().all(|v| v.failed == 0), "{listed:?}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_in_flight_during_a_swap_finishes_on_the_old_version() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_swap_in_flight";
    let dir = tempfile::tempdir().expect("tempdir");
    let component = deploy_copy(&guests::chaos(), dir.path());
    // Independent entries: the one after the swap does not wait for the slow one.
    let config = swap_config(&redis, ns, dir.path()).handler(
        HandlerConfig::new("chaos", &component, [CHAOS_EVENT])
            .concurrency(2)
            .timeout_ms(120_000),
    );
    let host = Running::start(&config, dir.path()).await;
    let stream = stream_key(ns, CHAOS_EVENT);

    // Long enough to outlast compiling the new version on a busy debug build.
    let slow = chaos_slow(1, 10_000);
    let slow_id = publish_all(&mut con, ns, std::slice::from_ref(&slow))
        .await
        .remove(0);
    wait_until_in_flight_for(&con, &stream, DEFAULT_GROUP, &slow_id, 200).await;

    // noop replaces chaos: the new version leaves no trace in kv, the old one does.
    let noop = std::fs::read(guests::noop()).expect("read noop");
    write_in_place(&component, &noop);
    let reply = host.admin.reload("chaos").await.assert_status(200);
    assert_eq!(reply.json()["swapped"], true, "{reply:?}");
    assert!(
        pending_ids(&mut con, &stream, DEFAULT_GROUP)
            .await
            .contains(&slow_id),
        "the slow call was still in flight when the swap was answered"
    );

    let after = chaos_ok(2);
    let after_id = publish_all(&mut con, ns, std::slice::from_ref(&after))
        .await
        .remove(0);
    wait_until_drained_within(
        Duration::from_secs(120),
        &con,
        &stream,
        DEFAULT_GROUP,
        &after_id,
    )
    .await;

    let state = kv(&mut con, ns, "chaos").await;
    assert_eq!(
        state.get(&seen_key(&slow)).map(String::as_str),
        Some("1"),
        "the call in flight finished on the old version and committed: {state:?}"
    );
    assert_eq!(
        state.get(&seen_key(&after)),
        None,
        "the event after the swap met the new version, which records nothing: {state:?}"
    );
    assert_eq!(
        state.get("handled").map(String::as_str),
        Some("1"),
        "{state:?}"
    );
    let listed = host.admin.handler("chaos").await;
    assert_eq!(listed.version, version_label(&noop), "{listed:?}");
    host.stop().await;
}
