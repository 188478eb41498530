//! `rollback_on_error_rate`: a new version that fails too often in its first calls is
//! swapped back to the previous one by the host itself, which says so in its log.

use watchtower_tests::dead_letters::dead_letters;
use watchtower_tests::fixtures::{CHAOS_EVENT, DEFAULT_GROUP, chaos_fault, chaos_ok};
use watchtower_tests::groups::wait_until_drained;
use watchtower_tests::streams::{kv, publish_all};
use watchtower_tests::versions::{deploy_copy, label_of, rollbacks, version_label, write_in_place};
use watchtower_tests::{
    Event, HandlerConfig, PATIENCE, RedisServer, eventually, guests, stream_key,
};

use super::{Running, swap_config};

/// Calls of a new version the rollback rule judges.
const WINDOW: u32 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_version_failing_most_of_its_first_calls_is_rolled_back_by_the_host() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_swap_rollback";
    let dir = tempfile::tempdir().expect("tempdir");
    let component = deploy_copy(&guests::noop(), dir.path());
    let old = label_of(&component);
    // Enough attempts that no entry is dead-lettered while the new version fails.
    let config = swap_config(&redis, ns, dir.path()).handler(
        HandlerConfig::new("flaky", &component, [CHAOS_EVENT])
            .rollback_on_error_rate(0.5)
            .rollback_window(WINDOW)
            .max_attempts(50)
            .quick_retries(),
    );
    let host = Running::start(&config, dir.path()).await;
    let stream = stream_key(ns, CHAOS_EVENT);

    // The new version is chaos, and every event from now on makes it panic; noop, the old
    // version, handles them fine.
    let chaos = std::fs::read(guests::chaos()).expect("read chaos");
    let new = version_label(&chaos);
    write_in_place(&component, &chaos);
    let reply = host.admin.reload("flaky").await.assert_status(200);
    assert_eq!(reply.text("version"), new, "{reply:?}");
    let failing: Vec<Event> = (1..=u64::from(WINDOW))
        .map(|n| chaos_fault(n, "panic"))
        .collect();
    let ids = publish_all(&mut con, ns, &failing).await;

    let rolled_back = host.admin.wait_for_version("flaky", &old).await;
    let warnings = eventually(PATIENCE, "a warning that the host rolled back", || {
        let log = host.log();
        async move { Some(rollbacks(&log, "flaky")).filter(|w| !w.is_empty()) }
    })
    .await;
    assert_eq!(warnings.len(), 1, "one rollback: {warnings:?}");
    let judged = rolled_back.version_entry(&new);
    assert!(
        judged.failed > 0,
        "the failures of the new version are counted: {rolled_back:?}"
    );

    // The entries the new version failed on are handled by the old one, none given up.
    let last = ids.last().expect("published");
    wait_until_drained(&con, &stream, DEFAULT_GROUP, last).await;
    let after = chaos_ok(u64::from(WINDOW) + 1);
    let after_id = publish_all(&mut con, ns, std::slice::from_ref(&after))
        .await
        .remove(0);
    wait_until_drained(&con, &stream, DEFAULT_GROUP, &after_id).await;
    assert!(
        dead_letters(&mut con, ns, "flaky").await.is_empty(),
        "nothing was given up"
    );
    assert!(
        kv(&mut con, ns, "flaky").await.is_empty(),
        "chaos never committed a call; noop records nothing"
    );
    assert_eq!(host.admin.handler("flaky").await.version, old);
    host.stop().await;
}
