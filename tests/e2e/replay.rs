//! `watchtower replay` against a live server: a window of a stream runs through a handler
//! (or another `.wasm`) again; a dry run changes nothing at all, `--commit` applies each
//! entry's effects exactly once however often it is repeated, and the live consumer group
//! never notices.

use std::path::{Path, PathBuf};

use redis::aio::MultiplexedConnection;
use serde_json::Value;
use tempfile::TempDir;
use watchtower::replay::replay_event_id;
use watchtower_tests::fixtures::{
    DEFAULT_GROUP, assert_handled_exactly_once, chaos_fault, chaos_ok, position, str_field,
};
use watchtower_tests::groups::{create_group, group_info, pending, read_without_ack};
use watchtower_tests::snapshot::{assert_unchanged, snapshot};
use watchtower_tests::streams::{entries, kv, publish_all, stream_len};
use watchtower_tests::{
    CliOutput, Event, HandlerConfig, HostConfig, RedisServer, guests, stream_key, watchtower,
};

/// A server, a `watchtower.toml` naming it, and a connection.
struct Setup {
    _redis: RedisServer,
    con: MultiplexedConnection,
    ns: &'static str,
    config: PathBuf,
    _dir: TempDir,
}

impl Setup {
    /// A fresh server and a config with `handlers`, nothing published yet.
    async fn start(ns: &'static str, handlers: Vec<HandlerConfig>) -> Setup {
        let redis = RedisServer::start().await;
        let con = redis.connection().await;
        let mut host = HostConfig::new(redis.url(), ns);
        for handler in handlers {
            host = host.handler(handler);
        }
        let dir = tempfile::tempdir().unwrap();
        let config = host.write_to(dir.path());
        Setup {
            _redis: redis,
            con,
            ns,
            config,
            _dir: dir,
        }
    }

    /// Runs `watchtower replay --config … --handler HANDLER --json ARGS…`, which must
    /// succeed; returns its summary.
    async fn replay(&self, handler: &str, args: &[&str]) -> Value {
        let output = self.replay_output(handler, args).await.assert_success();
        serde_json::from_str(&output.stdout)
            .unwrap_or_else(|err| panic!("the summary is not JSON ({err}): {output}"))
    }

    async fn replay_output(&self, handler: &str, args: &[&str]) -> CliOutput {
        let config = self.config.to_string_lossy().into_owned();
        let mut argv = vec![
            "replay",
            "--config",
            &config,
            "--handler",
            handler,
            "--json",
        ];
        argv.extend_from_slice(args);
        watchtower(argv).await
    }
}

/// The counter `name` of a summary.
fn count(summary: &Value, name: &str) -> u64 {
    summary[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no count `{name}` in {summary:#}"))
}

/// The live group as a test can compare it: where it is and what it holds.
async fn live_group(
    con: &mut MultiplexedConnection,
    stream: &str,
) -> (String, Vec<(String, String)>) {
    let info = group_info(con, stream, DEFAULT_GROUP).await.unwrap();
    (
        info.last_delivered_id,
        pending(con, stream, DEFAULT_GROUP).await,
    )
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_through_a_wasm_file_publishes_only_with_commit_and_leaves_the_live_group_alone() {
    // The configured component does nothing; the replay runs speed-alert instead.
    let handler = HandlerConfig::new("speed-alert", guests::noop(), ["position.updated"])
        .config("speed_limit_kmh", "90");
    let mut s = Setup::start("t_replay_wasm", vec![handler]).await;
    let speeds = [50.0, 95.0, 120.0, 80.0, 101.0];
    let events: Vec<Event> = speeds
        .iter()
        .enumerate()
        .map(|(n, speed)| position(n as u64 + 1, *speed))
        .collect();
    let ids = publish_all(&mut s.con, s.ns, &events).await;
    let positions = stream_key(s.ns, "position.updated");
    let alerts = stream_key(s.ns, "alert.triggered");
    // A live consumer is half-way: two entries read, not yet acknowledged.
    create_group(&mut s.con, &positions, DEFAULT_GROUP, "0").await;
    read_without_ack(&mut s.con, &positions, DEFAULT_GROUP, "live-host", 2).await;
    let live_before = live_group(&mut s.con, &positions).await;
    assert_eq!(live_before.0, ids[1]);
    let wasm = path_arg(&guests::speed_alert());

    let before = snapshot(&mut s.con, s.ns).await;
    let dry = s.replay("speed-alert", &["--wasm", &wasm]).await;
    assert_eq!(dry["dry_run"], Value::Bool(true), "{dry:#}");
    assert_eq!(count(&dry, "entries"), 5, "{dry:#}");
    assert_eq!(count(&dry, "handled"), 5, "{dry:#}");
    assert_eq!(count(&dry, "published"), 3, "{dry:#}");
    assert_eq!(count(&dry, "committed"), 0, "{dry:#}");
    assert_unchanged(
        &before,
        &snapshot(&mut s.con, s.ns).await,
        "a dry-run replay",
    );

    let committed = s
        .replay("speed-alert", &["--wasm", &wasm, "--commit"])
        .await;
    assert_eq!(committed["dry_run"], Value::Bool(false), "{committed:#}");
    assert_eq!(count(&committed, "committed"), 5, "{committed:#}");
    assert_eq!(count(&committed, "published"), 3, "{committed:#}");
    let published = entries(&mut s.con, &alerts).await;
    let mut alerted: Vec<String> = published
        .iter()
        .map(|alert| str_field(&alert.data(), "truck_id").to_owned())
        .collect();
    alerted.sort();
    let mut speeding: Vec<String> = events
        .iter()
        .filter(|e| e.data["speed"].as_f64().unwrap() > 90.0)
        .map(|e| str_field(&e.data, "truck_id").to_owned())
        .collect();
    speeding.sort();
    assert_eq!(alerted, speeding, "one alert per speeding position");
    for alert in &published {
        let metadata: Value = serde_json::from_str(alert.field("metadata")).unwrap();
        let source = metadata["replay_of"]
            .as_str()
            .expect("replay_of names the source");
        let source_id = source.rsplit('/').next().unwrap();
        assert_eq!(source, format!("{positions}/{source_id}"));
        assert_eq!(
            alert.field("event_id"),
            replay_event_id("speed-alert", &positions, source_id, 0),
            "a replayed event's id derives from its source entry: {alert:?}"
        );
    }

    let again = s
        .replay("speed-alert", &["--wasm", &wasm, "--commit"])
        .await;
    assert_eq!(count(&again, "skipped"), 5, "{again:#}");
    assert_eq!(count(&again, "committed"), 0, "{again:#}");
    assert_eq!(count(&again, "handled"), 0, "{again:#}");
    assert_eq!(stream_len(&mut s.con, &alerts).await, 3, "no alert twice");

    assert_eq!(
        live_group(&mut s.con, &positions).await,
        live_before,
        "the live group's position and pending entries are untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_effects_of_a_replayed_range_are_applied_once_however_often_it_is_replayed() {
    let handler = HandlerConfig::new("chaos", guests::chaos(), ["chaos.test"]);
    let mut s = Setup::start("t_replay_kv", vec![handler]).await;
    let ok: Vec<Event> = (1..=4).map(chaos_ok).collect();
    let mut all = ok.clone();
    all.push(chaos_fault(5, "reject"));
    all.push(chaos_fault(6, "panic"));
    publish_all(&mut s.con, s.ns, &all).await;

    let dry = s.replay("chaos", &[]).await;
    assert_eq!(count(&dry, "handled"), 4, "{dry:#}");
    assert!(count(&dry, "kv_writes") >= 8, "{dry:#}");
    assert!(
        kv(&mut s.con, s.ns, "chaos").await.is_empty(),
        "a dry run writes no kv"
    );

    for round in 1..=2 {
        let summary = s.replay("chaos", &["--commit"]).await;
        let (committed, skipped) = if round == 1 { (4, 0) } else { (0, 4) };
        assert_eq!(
            count(&summary, "committed"),
            committed,
            "round {round}: {summary:#}"
        );
        assert_eq!(
            count(&summary, "skipped"),
            skipped,
            "round {round}: {summary:#}"
        );
        // Failed entries commit nothing and leave no marker: each round tries them again.
        assert_eq!(count(&summary, "failed"), 2, "round {round}: {summary:#}");
        assert_eq!(summary["failed_by_reason"]["rejected"], 1, "{summary:#}");
        assert_eq!(summary["failed_by_reason"]["trap"], 1, "{summary:#}");
        assert_handled_exactly_once(&kv(&mut s.con, s.ns, "chaos").await, &ok);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_by_entry_id_include_both_ends_and_by_time_stop_before_the_end() {
    let handler = HandlerConfig::new("chaos", guests::chaos(), ["chaos.test"]);
    let mut s = Setup::start("t_replay_window", vec![handler]).await;
    let stream = stream_key(s.ns, "chaos.test");
    // 2026-12-04T15:00:00Z is 1796396400000 ms after the epoch.
    let ids = [
        "1796396399999-0", // 14:59:59.999
        "1796396400000-0", // 15:00:00.000
        "1796396400000-1",
        "1796398200000-0", // 15:30
        "1796400000000-0", // 16:00:00.000
    ];
    for (n, id) in ids.iter().enumerate() {
        let mut xadd = redis::cmd("XADD");
        xadd.arg(&stream).arg(*id);
        for (field, value) in chaos_ok(n as u64).fields() {
            xadd.arg(field).arg(value);
        }
        let _: String = xadd.query_async(&mut s.con).await.unwrap();
    }

    let by_time = s
        .replay(
            "chaos",
            &[
                "--from",
                "2026-12-04T15:00:00Z",
                "--to",
                "2026-12-04T16:00:00Z",
            ],
        )
        .await;
    assert_eq!(count(&by_time, "entries"), 3, "{by_time:#}");
    assert_eq!(by_time["from"], "1796396400000-0", "{by_time:#}");
    assert_eq!(by_time["to"], "(1796400000000-0", "{by_time:#}");

    let by_id = s.replay("chaos", &["--from", ids[1], "--to", ids[3]]).await;
    assert_eq!(count(&by_id, "entries"), 3, "{by_id:#}");

    let open_end = s.replay("chaos", &["--from", ids[3]]).await;
    assert_eq!(count(&open_end, "entries"), 2, "{open_end:#}");
    assert_eq!(
        open_end["to"], ids[4],
        "an open end is pinned: {open_end:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_refuses_unknown_handlers_foreign_streams_and_unreadable_bounds() {
    let handler = HandlerConfig::new("chaos", guests::chaos(), ["chaos.test"]);
    let s = Setup::start("t_replay_refusals", vec![handler]).await;
    let cases: [(&str, &[&str], &str); 3] = [
        (
            "trip-tracker",
            &[],
            "no handler is called \"trip-tracker\" (configured: chaos)",
        ),
        (
            "chaos",
            &["--stream", "position.updated"],
            "does not consume `position.updated`",
        ),
        (
            "chaos",
            &["--from", "yesterday"],
            "--from: `yesterday` is neither a stream entry id",
        ),
    ];
    for (handler, args, message) in cases {
        let output = s.replay_output(handler, args).await.assert_failure();
        assert!(
            output.stderr.contains(message),
            "expected {message:?} in {output}"
        );
    }
}
