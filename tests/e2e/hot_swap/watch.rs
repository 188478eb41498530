//! The file watcher: a handler's `.wasm` changed on disk the way deploy tools change files
//! is reloaded once, after the file is complete, without anyone asking.

use std::time::Duration;

use watchtower_tests::versions::{
    deploy_copy, handler_version, label_of, refusals, replace_by_rename, show, swaps,
    version_label, write_in_chunks,
};
use watchtower_tests::{
    HandlerConfig, HostConfig, PATIENCE, RedisServer, eventually, guests, publish,
};

use super::{Running, alert_for, speeding};

/// `[reload] debounce_ms` of these tests: far above the 50 ms gap between chunks, so that a
/// loaded machine that stretches the gap still writes both chunks within one debounce.
const DEBOUNCE_MS: u64 = 1500;

/// The gap between the two writes of a chunked copy: well inside the debounce.
const CHUNK_GAP: Duration = Duration::from_millis(50);

/// How the new version lands on disk.
enum Change {
    /// A finished temporary file renamed over the old one.
    Rename,
    /// The old file truncated and written in two flushed halves.
    TwoChunks,
}

/// Changes speed-alert's file under a watching host as `change` says, and checks that the
/// host swapped exactly once, to the new version, and never tried a half-written file.
async fn changed_file_is_swapped_exactly_once(ns: &str, change: Change) {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let component = deploy_copy(&guests::speed_alert(), dir.path());
    let old = label_of(&component);
    let new_bytes = guests::variant(&component, ns);
    let new = version_label(&new_bytes);
    let config = HostConfig::new(redis.url(), ns)
        .admin_on_free_port()
        .reload_watch(true)
        .reload_debounce_ms(DEBOUNCE_MS)
        .cache_dir(dir.path().join("cache"))
        .handler(HandlerConfig::new(
            "speed-alert",
            &component,
            ["position.updated"],
        ));
    let host = Running::start(&config, dir.path()).await;
    let first = speeding(1);
    publish(&mut con, ns, &first).await;
    assert_eq!(handler_version(&alert_for(&con, ns, &first).await), old);

    match change {
        Change::Rename => replace_by_rename(&component, &new_bytes),
        Change::TwoChunks => write_in_chunks(&component, &new_bytes, 2, CHUNK_GAP).await,
    }
    host.admin.wait_for_version("speed-alert", &new).await;
    eventually(PATIENCE, "the swap in the log", || {
        let log = host.log();
        async move { !swaps(&log, "speed-alert").is_empty() }
    })
    .await;
    // Asking again finds the file unchanged: whatever the watcher still had queued has been
    // dealt with, and it was no new swap.
    let reply = host.admin.reload("speed-alert").await.assert_status(200);
    assert_eq!(
        reply.json()["swapped"],
        false,
        "the file did not change again: {reply:?}"
    );
    assert_eq!(reply.text("version"), new, "{reply:?}");

    let log = host.log();
    let swapped = swaps(&log, "speed-alert");
    assert_eq!(swapped.len(), 1, "exactly one swap:\n{}", show(&swapped));
    assert_eq!(
        swapped[0].field("version").as_deref(),
        Some(new.as_str()),
        "{swapped:?}"
    );
    assert_eq!(
        swapped[0].field("previous").as_deref(),
        Some(old.as_str()),
        "{swapped:?}"
    );
    let refused = refusals(&log, "speed-alert");
    assert!(
        refused.is_empty(),
        "the host never tried a half-written file:\n{}",
        show(&refused)
    );

    let second = speeding(2);
    publish(&mut con, ns, &second).await;
    assert_eq!(handler_version(&alert_for(&con, ns, &second).await), new);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_replaced_by_rename_is_swapped_exactly_once() {
    changed_file_is_swapped_exactly_once("t_watch_rename", Change::Rename).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_written_in_two_chunks_is_swapped_exactly_once() {
    changed_file_is_swapped_exactly_once("t_watch_chunks", Change::TwoChunks).await;
}
