//! The compile cache: a restart with the same components loads them compiled from
//! `[cache] dir` (the log's `component loaded` line says `cache = "hit"`), and a cache file
//! that is damaged is never trusted: the component is compiled again (`"miss"`), the file
//! rebuilt, and the host works.

use std::path::{Path, PathBuf};

use watchtower_tests::fixtures::{CHAOS_EVENT, chaos_ok, seen_key};
use watchtower_tests::streams::wait_for_field;
use watchtower_tests::versions::{component_loads, deploy_copy, show};
use watchtower_tests::{
    HandlerConfig, HostConfig, PATIENCE, RedisServer, eventually, guests, kv_key, publish,
};

use super::{Running, alert_for, speeding, swap_config};

/// The handlers of these tests; each one's component file is `{name}.wasm`.
const HANDLERS: [&str; 2] = ["speed-alert", "chaos"];

/// speed-alert and chaos, each from a private copy, with the compile cache in `dir/cache`.
fn cached_config(redis: &RedisServer, ns: &str, dir: &Path) -> HostConfig {
    let speed_alert = deploy_copy(&guests::speed_alert(), dir);
    let chaos = deploy_copy(&guests::chaos(), dir);
    swap_config(redis, ns, dir)
        .handler(HandlerConfig::new(
            "speed-alert",
            speed_alert,
            ["position.updated"],
        ))
        .handler(HandlerConfig::new("chaos", chaos, [CHAOS_EVENT]))
}

/// Starts a host on `config`, checks that both handlers work (event number `n`), stops it,
/// and returns what its `component loaded` lines said about the cache, per handler.
async fn start_and_stop(
    redis: &RedisServer,
    ns: &str,
    config: &HostConfig,
    dir: &Path,
    n: u64,
) -> Vec<String> {
    let mut con = redis.connection().await;
    let host = Running::start(config, dir).await;
    let position = speeding(n);
    publish(&mut con, ns, &position).await;
    alert_for(&con, ns, &position).await;
    let event = chaos_ok(n);
    publish(&mut con, ns, &event).await;
    wait_for_field(&con, &kv_key(ns, "chaos"), &seen_key(&event), "1").await;

    let mut outcomes = Vec::new();
    for handler in HANDLERS {
        let loads = eventually(
            PATIENCE,
            &format!("`component loaded` of {handler}"),
            || {
                let log = host.log();
                async move { Some(component_loads(&log, handler)).filter(|l| !l.is_empty()) }
            },
        )
        .await;
        let cache = loads[0]
            .field("cache")
            .unwrap_or_else(|| panic!("no `cache` field:\n{}", show(&loads)));
        outcomes.push(cache);
    }
    host.stop().await;
    outcomes
}

/// The compiled components in the cache folder `dir` (`.cwasm` files, at any depth).
fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(listing) = std::fs::read_dir(&folder) else {
            continue;
        };
        for item in listing {
            let path = item.expect("list the cache folder").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "cwasm") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_start_loads_components_from_the_cache() {
    let redis = RedisServer::start().await;
    let ns = "t_cache_hit";
    let dir = tempfile::tempdir().expect("tempdir");
    let config = cached_config(&redis, ns, dir.path());

    let first = start_and_stop(&redis, ns, &config, dir.path(), 1).await;
    assert_eq!(
        first,
        ["miss", "miss"],
        "an empty cache: {HANDLERS:?} compiled"
    );
    let files = cache_files(&dir.path().join("cache"));
    assert!(
        files.len() >= HANDLERS.len(),
        "one compiled file per component: {files:?}"
    );

    let second = start_and_stop(&redis, ns, &config, dir.path(), 2).await;
    assert_eq!(second, ["hit", "hit"], "{HANDLERS:?} loaded from the cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_cache_files_are_ignored_rebuilt_and_the_host_works() {
    let redis = RedisServer::start().await;
    let ns = "t_cache_corrupt";
    let dir = tempfile::tempdir().expect("tempdir");
    let config = cached_config(&redis, ns, dir.path());
    start_and_stop(&redis, ns, &config, dir.path(), 1).await;

    // The first file overwritten with garbage, every other one cut in half.
    let files = cache_files(&dir.path().join("cache"));
    assert!(
        files.len() >= HANDLERS.len(),
        "one compiled file per component: {files:?}"
    );
    for (i, file) in files.iter().enumerate() {
        let bytes = std::fs::read(file).expect("read a cache file");
        let damaged = if i == 0 {
            b"not a compiled component, whatever the name says\n".repeat(64)
        } else {
            bytes[..bytes.len() / 2].to_vec()
        };
        std::fs::write(file, damaged).expect("damage a cache file");
    }

    let rebuilt = start_and_stop(&redis, ns, &config, dir.path(), 2).await;
    assert_eq!(rebuilt, ["miss", "miss"], "damaged files are not trusted");
    let again = start_and_stop(&redis, ns, &config, dir.path(), 3).await;
    assert_eq!(again, ["hit", "hit"], "the damaged files were rebuilt");
}
