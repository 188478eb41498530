//! The sandbox: a guest sees no environment, arguments or files unless its handler's config
//! grants them, and what it prints goes to the host's log tagged with the handler.

use std::collections::HashMap;

use watchtower_tests::cli::{RunningProcess, log_records};
use watchtower_tests::fixtures::chaos_fault;
use watchtower_tests::streams::{kv, publish_all};
use watchtower_tests::{
    HandlerConfig, Host, HostConfig, PATIENCE, RedisServer, eventually, guests,
};

use watchtower_tests::fixtures::CHAOS_EVENT;

/// Waits until `handler`'s sandbox probe has been committed and returns its kv.
async fn probe_results(
    con: &redis::aio::MultiplexedConnection,
    ns: &'static str,
    handler: &'static str,
) -> HashMap<String, String> {
    eventually(PATIENCE, "the sandbox probe to be committed", || {
        let mut con = con.clone();
        async move {
            let state = kv(&mut con, ns, handler).await;
            state.contains_key("sandbox:file").then_some(state)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_sees_no_environment_arguments_or_files_unless_granted() {
    let redis = RedisServer::start().await;
    let con = redis.connection().await;
    let ns = "t_sandbox_grants";
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("probe.txt"), "hello from the host\n").unwrap();
    std::fs::write(data.path().join("secret.txt"), "not for guests").unwrap();

    let config = HostConfig::new(redis.url(), ns)
        .handler(HandlerConfig::new("bare", guests::chaos(), [CHAOS_EVENT]).group("g-bare"))
        .handler(
            HandlerConfig::new("granted", guests::chaos(), [CHAOS_EVENT])
                .group("g-granted")
                .env("CHAOS_PROBE", "granted")
                .arg("--probe")
                .dir("/data", data.path()),
        );
    let host = Host::start(&config).await;
    publish_all(&mut con.clone(), ns, &[chaos_fault(1, "sandbox")]).await;

    let bare = probe_results(&con, ns, "bare").await;
    assert_eq!(bare["sandbox:env"], "unset", "{bare:?}");
    assert!(!bare["sandbox:args"].contains("--probe"), "{bare:?}");
    assert_eq!(bare["sandbox:file"], "error", "{bare:?}");

    let granted = probe_results(&con, ns, "granted").await;
    assert_eq!(granted["sandbox:env"], "granted", "{granted:?}");
    assert!(granted["sandbox:args"].contains("--probe"), "{granted:?}");
    assert_eq!(
        granted["sandbox:file"], "hello from the host",
        "{granted:?}"
    );

    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_output_goes_to_the_log_tagged_with_the_handler() {
    let redis = RedisServer::start().await;
    let con = redis.connection().await;
    let ns = "t_sandbox_output";
    let dir = tempfile::tempdir().unwrap();
    let config = HostConfig::new(redis.url(), ns)
        .handler(HandlerConfig::new(
            "printer",
            guests::chaos(),
            [CHAOS_EVENT],
        ))
        .write_to(dir.path());
    let host = RunningProcess::run_host(&config);
    publish_all(&mut con.clone(), ns, &[chaos_fault(1, "sandbox")]).await;
    probe_results(&con, ns, "printer").await;

    let records = eventually(PATIENCE, "the guest's output in the host log", || {
        let log = host.stderr_so_far();
        async move {
            let records = log_records(&log);
            let printed = |text: &str| {
                records
                    .iter()
                    .any(|r| r.message.contains(text) && r.line.contains(r#""handler":"printer""#))
            };
            (printed("chaos: sandbox probe for") && printed("chaos: probing the sandbox"))
                .then_some(records)
        }
    })
    .await;
    assert!(
        records
            .iter()
            .any(|r| r.message.contains("sandbox probe") && r.line.contains(r#""stream":"stdout""#)),
        "stdout is tagged as such"
    );
    host.kill().await;
}
