//! The `watchtower` binary as operators use it: `check` before deploying a component, `run`
//! refusing a bad config before it touches Redis and stopping cleanly on SIGTERM, `publish`
//! and `status` against a live server.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};
use watchtower_tests::cli::RunningProcess;
use watchtower_tests::fixtures::{CHAOS_EVENT, chaos_ok, position, seen_key};
use watchtower_tests::groups::{create_group, id_key, read_without_ack};
use watchtower_tests::redis_server::free_port;
use watchtower_tests::streams::{entries, publish_all, stream_len};
use watchtower_tests::{
    CliOutput, HandlerConfig, HostConfig, PATIENCE, RedisServer, eventually, guests, kv_key,
    publish, stream_key, watchtower,
};

/// How long `run` may take to refuse a bad config; connecting with retries would take longer.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(15);

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("a file path")
        .to_string_lossy()
        .into_owned()
}

/// Asserts that `output` failed and mentions each of `words` (case-insensitively).
fn assert_failed_mentioning(output: CliOutput, words: &[&str]) {
    let output = output.assert_failure();
    let text = output.combined().to_lowercase();
    for word in words {
        assert!(
            text.contains(&word.to_lowercase()),
            "expected {word:?} in the message of {output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_accepts_a_handler_component() {
    let component = guests::speed_alert();
    watchtower([OsStr::new("check"), component.as_os_str()])
        .await
        .assert_success();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_a_file_that_is_not_webassembly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes-handler.wasm");
    std::fs::write(&path, "this is a text file, not a component\n").expect("write the file");
    let output = watchtower([OsStr::new("check"), path.as_os_str()]).await;
    assert_failed_mentioning(output, &[&file_name(&path), "not a WebAssembly"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_a_core_module() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("core-handler.wasm");
    // Exports a `handle`, so only the binary's kind tells it apart from a handler.
    let module = wat::parse_str(
        r#"(module
             (memory (export "memory") 1)
             (func (export "handle") (param i32 i32) (result i32) i32.const 0))"#,
    )
    .expect("the fixture module is valid WAT");
    std::fs::write(&path, module).expect("write the module");
    let output = watchtower([OsStr::new("check"), path.as_os_str()]).await;
    assert_failed_mentioning(output, &[&file_name(&path), "core", "not a component"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_a_component_of_another_world() {
    let component = guests::wrong_world();
    let output = watchtower([OsStr::new("check"), component.as_os_str()]).await;
    assert_failed_mentioning(output, &[&file_name(&component), "handle"]);
}

/// Runs `watchtower run --config FILE` on `toml` (written as `file`) against a port nothing
/// listens on, and returns what it printed; panics if it keeps running.
async fn run_refusing(file: &str, toml: &str) -> CliOutput {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(file);
    std::fs::write(&path, toml).expect("write the config");
    let process =
        RunningProcess::spawn([OsStr::new("run"), OsStr::new("--config"), path.as_os_str()]);
    let output = process.wait(REFUSAL_DEADLINE).await;
    assert!(
        !output.stderr.to_lowercase().contains("refused"),
        "a config error is reported before connecting to Redis: {output}"
    );
    output
}

/// A config that would be fine, but for whatever a test changes; its Redis is unreachable.
fn config_without_redis() -> HostConfig {
    HostConfig::new(format!("redis://127.0.0.1:{}", free_port()), "t_cli_config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_a_zero_timeout_naming_the_file_and_the_key() {
    let toml = config_without_redis()
        .handler(
            HandlerConfig::new("speed-alert", guests::speed_alert(), ["position.updated"])
                .timeout_ms(0),
        )
        .to_toml();
    let output = run_refusing("zero-timeout.toml", &toml).await;
    assert_failed_mentioning(output, &["zero-timeout.toml", "timeout_ms", "speed-alert"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_an_unknown_key_naming_it() {
    let toml = config_without_redis()
        .handler(HandlerConfig::new(
            "speed-alert",
            guests::speed_alert(),
            ["position.updated"],
        ))
        .to_toml()
        .replace("[redis]\n", "[redis]\npool_colour = \"blue\"\n");
    let output = run_refusing("unknown-key.toml", &toml).await;
    assert_failed_mentioning(output, &["unknown-key.toml", "pool_colour"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_a_missing_component_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing-handler.wasm");
    let toml = config_without_redis()
        .handler(HandlerConfig::new(
            "speed-alert",
            missing,
            ["position.updated"],
        ))
        .to_toml();
    let output = run_refusing("no-component.toml", &toml).await;
    assert_failed_mentioning(
        output,
        &["no-component.toml", "component", "missing-handler.wasm"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stops_with_status_zero_on_sigterm() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_cli_sigterm";
    let dir = tempfile::tempdir().expect("tempdir");
    let path = HostConfig::new(redis.url(), ns)
        .consumer("cli-host")
        .handler(HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT]))
        .write_to(dir.path());
    let mut process =
        RunningProcess::spawn([OsStr::new("run"), OsStr::new("--config"), path.as_os_str()]);

    // Stop it only once it demonstrably works.
    let event = chaos_ok(1);
    publish(&mut con, ns, &event).await;
    let kv = kv_key(ns, "chaos");
    let field = seen_key(&event);
    let handled = eventually(PATIENCE, "`watchtower run` to handle an event", || {
        let exited = process.has_exited();
        let mut con = con.clone();
        let (kv, field) = (kv.clone(), field.clone());
        async move {
            if exited {
                return Some(false);
            }
            let seen: Option<String> = redis::cmd("HGET")
                .arg(&kv)
                .arg(&field)
                .query_async(&mut con)
                .await
                .ok()?;
            (seen.as_deref() == Some("1")).then_some(true)
        }
    })
    .await;
    if !handled {
        let output = process.wait(Duration::from_secs(5)).await;
        panic!("`watchtower run` exited before handling anything: {output}");
    }

    process.terminate();
    let output = process.wait(Duration::from_secs(30)).await;
    assert!(output.success(), "SIGTERM is a clean stop: {output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_prints_the_entry_id_and_appends_the_event() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_cli_publish";
    let data = position(1, 97.5).data;
    let payload = data.to_string();
    let url = redis.url();
    let output = watchtower([
        "publish",
        "position.updated",
        payload.as_str(),
        "--redis-url",
        url.as_str(),
        "--namespace",
        ns,
    ])
    .await
    .assert_success();

    let printed = output.stdout.trim().to_owned();
    let (ms, _) = id_key(&printed); // panics unless it is an entry id
    assert!(ms > 0, "`publish` prints the entry id: {output}");
    let stream = entries(&mut con, &stream_key(ns, "position.updated")).await;
    assert_eq!(stream.len(), 1, "one entry appended: {stream:?}");
    assert_eq!(stream[0].id, printed, "the printed id is the entry's");
    assert_eq!(stream[0].field("event_type"), "position.updated");
    assert!(!stream[0].field("event_id").is_empty());
    assert!(!stream[0].field("timestamp").is_empty());
    assert_eq!(stream[0].data(), data, "the payload is stored as given");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_refuses_a_payload_that_does_not_fit_the_type() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_cli_publish_bad";
    let mut data = position(1, 97.5).data;
    data.as_object_mut()
        .expect("positions are objects")
        .remove("speed");
    let payload = data.to_string();
    let url = redis.url();
    let output = watchtower([
        "publish",
        "position.updated",
        payload.as_str(),
        "--redis-url",
        url.as_str(),
        "--namespace",
        ns,
    ])
    .await;
    assert_failed_mentioning(output, &["speed"]);
    assert_eq!(
        stream_len(&mut con, &stream_key(ns, "position.updated")).await,
        0,
        "nothing appended"
    );
}

/// Every JSON object in `value`, depth first.
fn objects(value: &Value) -> Vec<&Map<String, Value>> {
    let mut found = Vec::new();
    match value {
        Value::Object(map) => {
            found.push(map);
            map.values().for_each(|v| found.extend(objects(v)));
        }
        Value::Array(items) => items.iter().for_each(|v| found.extend(objects(v))),
        _ => {}
    }
    found
}

/// The object in `value` that has a string value equal to one of `names` and a numeric
/// `field`: the entry for a stream or a group, whatever the report's nesting.
fn number_for(value: &Value, names: &[&str], field: &str) -> Option<u64> {
    objects(value)
        .into_iter()
        .filter(|object| {
            object
                .values()
                .any(|v| v.as_str().is_some_and(|s| names.contains(&s)))
        })
        .find_map(|object| object.get(field)?.as_u64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_reports_stream_length_and_group_pending() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_cli_status";
    let stream = stream_key(ns, "position.updated");
    create_group(&mut con, &stream, "dashboards", "0").await;
    publish_all(
        &mut con,
        ns,
        &[position(1, 50.0), position(2, 60.0), position(3, 70.0)],
    )
    .await;
    read_without_ack(&mut con, &stream, "dashboards", "reader-1", 2).await;
    let url = redis.url();

    let output = watchtower([
        "status",
        "--json",
        "--redis-url",
        url.as_str(),
        "--namespace",
        ns,
    ])
    .await
    .assert_success();
    let report: Value = serde_json::from_str(&output.stdout)
        .unwrap_or_else(|err| panic!("`status --json` prints JSON ({err}): {output}"));
    assert_eq!(
        number_for(&report, &[&stream, "position.updated"], "length"),
        Some(3),
        "the stream's length: {report:#}"
    );
    assert_eq!(
        number_for(&report, &["dashboards"], "pending"),
        Some(2),
        "the group's pending: {report:#}"
    );
}
