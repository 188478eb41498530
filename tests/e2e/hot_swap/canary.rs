//! `canary = N`: before a swap, the new version handles the last N entries of each of the
//! handler's streams in a dry run. A trap refuses the swap; either way the dry run commits
//! nothing: no entries, no kv, no acks, no change to any consumer group.
//!
//! The old version is `noop`, which handles anything and records nothing; the new one is
//! `chaos`, which records every event it handles in kv (`handled`, `seen:{event_id}`) and
//! traps on `"chaos": "panic"`. So the dry run's effects would show in kv if they leaked,
//! and recent entries that `noop` handled fine make `chaos` trap.

use watchtower_tests::fixtures::{
    CHAOS_EVENT, DEFAULT_GROUP, chaos_fault, chaos_ok, seen_counts, seen_key,
};
use watchtower_tests::groups::wait_until_drained;
use watchtower_tests::snapshot::{assert_unchanged, snapshot};
use watchtower_tests::streams::{kv, publish_all, wait_for_field};
use watchtower_tests::versions::{
    deploy_copy, label_of, refusals, show, version_label, write_in_place,
};
use watchtower_tests::{
    Event, HandlerConfig, HostConfig, PATIENCE, RedisServer, eventually, guests, kv_key, stream_key,
};

use super::{Running, swap_config};

/// Recent entries the new version runs on before a swap.
const CANARY: u32 = 3;

/// `noop` as handler `probe` on the `chaos` events, with a canary.
fn probe_config(redis: &RedisServer, ns: &str, dir: &std::path::Path) -> HostConfig {
    let component = deploy_copy(&guests::noop(), dir);
    swap_config(redis, ns, dir)
        .handler(HandlerConfig::new("probe", component, [CHAOS_EVENT]).canary(CANARY))
}

/// Publishes `events` and waits until the group has handled them all.
async fn publish_and_drain(
    con: &mut redis::aio::MultiplexedConnection,
    ns: &str,
    events: &[Event],
) {
    let ids = publish_all(con, ns, events).await;
    let last = ids.last().expect("published some");
    wait_until_drained(con, &stream_key(ns, CHAOS_EVENT), DEFAULT_GROUP, last).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_refuses_a_version_that_traps_on_recent_events_and_commits_nothing() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_canary_refuses";
    let dir = tempfile::tempdir().expect("tempdir");
    let config = probe_config(&redis, ns, dir.path());
    let component = dir.path().join("noop.wasm");
    let old = label_of(&component);
    let host = Running::start(&config, dir.path()).await;

    // The last three entries: two that chaos handles (and would record), then one it traps on.
    let mut events: Vec<Event> = (1..=6).map(chaos_ok).collect();
    events.push(chaos_fault(7, "panic"));
    publish_and_drain(&mut con, ns, &events).await;
    let before = snapshot(&mut con, ns).await;

    write_in_place(
        &component,
        &std::fs::read(guests::chaos()).expect("read chaos"),
    );
    let reply = host.admin.reload("probe").await;
    assert_eq!(reply.status, 422, "{reply:?}");
    let reason = reply.text("error");
    assert!(
        reason.to_lowercase().contains("canary"),
        "the reason names the canary: {reason}"
    );

    assert_unchanged(
        &before,
        &snapshot(&mut con, ns).await,
        "the refused canary run",
    );
    assert_eq!(host.admin.handler("probe").await.version, old);
    let warnings = eventually(PATIENCE, "a warning for the refused reload", || {
        let log = host.log();
        async move { Some(refusals(&log, "probe")).filter(|w| !w.is_empty()) }
    })
    .await;
    assert!(
        warnings
            .iter()
            .any(|w| w.line.to_lowercase().contains("canary")),
        "the warning names the canary:\n{}",
        show(&warnings)
    );

    // The old version keeps handling, and records nothing, as noop does.
    publish_and_drain(&mut con, ns, &[chaos_ok(8)]).await;
    assert!(
        kv(&mut con, ns, "probe").await.is_empty(),
        "noop handled the new event"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_passes_a_version_that_handles_recent_events_and_commits_nothing() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_canary_passes";
    let dir = tempfile::tempdir().expect("tempdir");
    let config = probe_config(&redis, ns, dir.path());
    let component = dir.path().join("noop.wasm");
    let host = Running::start(&config, dir.path()).await;

    let events: Vec<Event> = (1..=5).map(chaos_ok).collect();
    publish_and_drain(&mut con, ns, &events).await;
    let before = snapshot(&mut con, ns).await;

    let chaos = std::fs::read(guests::chaos()).expect("read chaos");
    write_in_place(&component, &chaos);
    let reply = host.admin.reload("probe").await.assert_status(200);
    assert_eq!(reply.json()["swapped"], true, "{reply:?}");
    assert_eq!(reply.text("version"), version_label(&chaos));
    assert_unchanged(&before, &snapshot(&mut con, ns).await, "the canary run");

    // The first event chaos commits is the first it counts: nothing of the dry run stayed.
    let after = chaos_ok(6);
    publish_and_drain(&mut con, ns, std::slice::from_ref(&after)).await;
    wait_for_field(&con, &kv_key(ns, "probe"), &seen_key(&after), "1").await;
    let state = kv(&mut con, ns, "probe").await;
    assert_eq!(
        state.get("handled").map(String::as_str),
        Some("1"),
        "{state:?}"
    );
    assert_eq!(
        seen_counts(&state).into_keys().collect::<Vec<_>>(),
        vec![after.event_id.clone()],
        "only the event after the swap is recorded: {state:?}"
    );
    host.stop().await;
}
