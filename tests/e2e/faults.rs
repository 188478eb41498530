//! Faults from outside a single call: guests that hang, blow their memory or crash among
//! good events for two handlers at once, a guest that burns its fuel, a host killed with
//! SIGKILL mid-stream, Redis crashing and coming back, Redis staying away, and a component
//! or a config the host must refuse before it starts.

use std::time::Duration;

use watchtower_tests::cli::{LogRecord, log_records, run_until_exit};
use watchtower_tests::dead_letters::{
    Expected, assert_dead_letter, assert_reported_once, letter_for, wait_for_dead_letters,
    wait_for_error_reports,
};
use watchtower_tests::fixtures::{
    CHAOS_EVENT, DEFAULT_GROUP, assert_handled_exactly_once, chaos_fault, chaos_ok, handled,
    seen_key, wait_for_handled,
};
use watchtower_tests::groups::{
    consumers, wait_for_group, wait_until_drained, wait_until_drained_within,
};
use watchtower_tests::redis_server::{OutageListener, free_port};
use watchtower_tests::streams::{entries, kv, publish_all, wait_for_field};
use watchtower_tests::{
    Event, HandlerConfig, Host, HostConfig, RedisServer, RunningProcess, eventually, guests,
    kv_key, stream_key,
};

/// A `chaos` handler that gives up after `attempts` deliveries, stops a call after 300 ms
/// and caps an instance at 16 MiB.
fn strict_chaos(name: &str, group: &str, attempts: u32) -> HandlerConfig {
    HandlerConfig::new(name, guests::chaos(), [CHAOS_EVENT])
        .group(group)
        .max_attempts(attempts)
        .timeout_ms(300)
        .memory_limit_mb(16)
        .quick_retries()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_exhausting_and_crashing_calls_are_dead_lettered_while_good_events_flow() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_mixed_faults";
    let config = HostConfig::new(redis.url(), ns)
        .handler(strict_chaos("chaos-a", "group-a", 2))
        .handler(strict_chaos("chaos-b", "group-b", 3));
    let host = Host::start(&config).await;

    // (position in the stream, mode, how the reason starts)
    let faults = [
        (4, "loop", "max_attempts: timeout after 300 ms"),
        (9, "oom", "max_attempts: memory_limit"),
        (15, "panic", "max_attempts: trap"),
    ];
    let mut events = Vec::new();
    let mut good = Vec::new();
    for n in 1..=24 {
        match faults.iter().find(|(at, _, _)| *at == n) {
            Some((_, mode, _)) => events.push(chaos_fault(n, mode)),
            None => {
                let event = chaos_ok(n);
                good.push(event.clone());
                events.push(event);
            }
        }
    }
    let ids = publish_all(&mut con, ns, &events).await;
    let stream = stream_key(ns, CHAOS_EVENT);
    let last = ids.last().expect("published");
    wait_until_drained(&con, &stream, "group-a", last).await;
    wait_until_drained(&con, &stream, "group-b", last).await;

    let sources = entries(&mut con, &stream).await;
    let reports = wait_for_error_reports(&con, ns, 2 * faults.len()).await;
    assert_eq!(
        reports.len(),
        2 * faults.len(),
        "one error.occurred per dead letter: {reports:?}"
    );
    for (handler, attempts) in [("chaos-a", 2), ("chaos-b", 3)] {
        assert_handled_exactly_once(&kv(&mut con, ns, handler).await, &good);
        let letters = wait_for_dead_letters(&con, ns, handler, faults.len()).await;
        assert_eq!(letters.len(), faults.len(), "{handler}: {letters:?}");
        for (at, _, reason_prefix) in faults {
            let id = &ids[at as usize - 1];
            let letter = letter_for(&letters, id);
            let source = sources.iter().find(|e| &e.id == id).expect("in the stream");
            assert_dead_letter(
                letter,
                source,
                &Expected {
                    handler,
                    stream: &stream,
                    attempts,
                    reason_prefix,
                },
            );
            assert_reported_once(&reports, letter);
        }
    }
    assert!(host.is_running(), "no guest took the host down");
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_that_runs_out_of_fuel_is_stopped_and_dead_lettered() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_fuel";
    // The deadline is far away: only fuel can end the loop in time.
    let handler = HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT])
        .fuel(50_000_000)
        .timeout_ms(60_000)
        .max_attempts(2)
        .quick_retries();
    let host = Host::start(&HostConfig::new(redis.url(), ns).handler(handler)).await;

    let good = chaos_ok(2);
    let ids = publish_all(&mut con, ns, &[chaos_fault(1, "loop"), good.clone()]).await;
    let stream = stream_key(ns, CHAOS_EVENT);
    wait_until_drained(&con, &stream, DEFAULT_GROUP, &ids[1]).await;

    let letters = wait_for_dead_letters(&con, ns, "chaos", 1).await;
    let letter = letter_for(&letters, &ids[0]);
    assert_eq!(letter.field("dlq_attempts"), "2", "{letter:?}");
    let reason = letter.field("dlq_reason");
    assert!(
        reason.starts_with("max_attempts: ") && reason.contains("fuel"),
        "the reason says the fuel ran out: {letter:?}"
    );
    assert_handled_exactly_once(&kv(&mut con, ns, "chaos").await, &[good]);
    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_reconnects_after_redis_restarts_and_handles_every_event_once() {
    const EVENTS: u64 = 3_000;
    let mut redis = RedisServer::start_durable().await;
    let mut con = redis.connection().await;
    let ns = "t_redis_restart";
    let dir = tempfile::tempdir().expect("tempdir");
    let config = HostConfig::new(redis.url(), ns)
        .consumer("host-a")
        .handler(HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT]))
        .write_to(dir.path());
    let mut process = RunningProcess::run_host(&config);
    let stream = stream_key(ns, CHAOS_EVENT);
    wait_for_group(&con, &stream, DEFAULT_GROUP).await;

    let events: Vec<Event> = (1..=EVENTS).map(chaos_ok).collect();
    let mut last = String::new();
    for chunk in events.chunks(1000) {
        last = publish_all(&mut con, ns, chunk)
            .await
            .pop()
            .expect("published a chunk");
    }
    wait_for_handled(&con, ns, "chaos", EVENTS / 10, &mut process).await;

    // A crash, not a shutdown: the host's connections break mid-command.
    let before_crash = handled(&mut con, ns, "chaos").await;
    redis.restart().await;
    assert!(
        before_crash < EVENTS,
        "Redis went away in the middle of the run ({before_crash} handled)"
    );
    let con = redis.connection().await;
    wait_until_drained_within(
        Duration::from_secs(180),
        &con,
        &stream,
        DEFAULT_GROUP,
        &last,
    )
    .await;

    let mut con = con;
    assert_handled_exactly_once(&kv(&mut con, ns, "chaos").await, &events);
    assert!(
        !process.has_exited(),
        "the host rides out a Redis restart: {}",
        process.stderr_so_far()
    );
    process.terminate();
    let output = process.wait(Duration::from_secs(30)).await;
    assert!(output.success(), "the host still stops cleanly: {output}");
}

/// The `chaos` handler with retry pauses short enough for a `claim_idle_ms` of a second.
fn claimable_chaos() -> HandlerConfig {
    HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT]).quick_retries()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_killed_mid_stream_is_replaced_by_another_consumer_without_loss_or_duplicates() {
    const EVENTS: u64 = 20_000;
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_kill_nine";
    let stream = stream_key(ns, CHAOS_EVENT);
    let dir = tempfile::tempdir().expect("tempdir");
    let config_a = HostConfig::new(redis.url(), ns)
        .consumer("host-a")
        .handler(claimable_chaos())
        .write_to(dir.path());
    let mut host_a = RunningProcess::run_host(&config_a);
    wait_for_group(&con, &stream, DEFAULT_GROUP).await;

    let events: Vec<Event> = (1..=EVENTS).map(chaos_ok).collect();
    let publisher = {
        let mut con = con.clone();
        let events = events.clone();
        tokio::spawn(async move {
            let mut last = String::new();
            for chunk in events.chunks(1000) {
                last = publish_all(&mut con, ns, chunk)
                    .await
                    .pop()
                    .expect("published a chunk");
            }
            last
        })
    };

    wait_for_handled(&con, ns, "chaos", 1000, &mut host_a).await;
    host_a.kill().await;
    let handled_by_a = handled(&mut con, ns, "chaos").await;
    let last = publisher.await.expect("the publisher finished");
    assert!(
        handled_by_a < EVENTS,
        "host-a was killed before it could finish ({handled_by_a} handled)"
    );

    let config_b = HostConfig::new(redis.url(), ns)
        .consumer("host-b")
        .claim_idle_ms(1000)
        .claim_interval_ms(250)
        .handler(claimable_chaos());
    let host_b = Host::start(&config_b).await;
    wait_until_drained_within(
        Duration::from_secs(300),
        &con,
        &stream,
        DEFAULT_GROUP,
        &last,
    )
    .await;

    assert_handled_exactly_once(&kv(&mut con, ns, "chaos").await, &events);
    let left: Vec<(String, usize)> = consumers(&mut con, &stream, DEFAULT_GROUP)
        .await
        .into_iter()
        .filter(|(_, pending)| *pending > 0)
        .collect();
    assert!(left.is_empty(), "nothing left pending: {left:?}");
    host_b.stop().await.expect("host-b stops cleanly");
}

/// The warnings and errors among `log`'s JSON lines after the first `skip` lines.
fn warnings_after(log: &str, skip: usize) -> Vec<LogRecord> {
    let tail: String = log.lines().skip(skip).collect::<Vec<_>>().join("\n");
    log_records(&tail)
        .into_iter()
        .filter(LogRecord::is_warning)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_is_retried_quietly_until_redis_returns() {
    /// Reconnection attempts to see before Redis comes back.
    const ATTEMPTS: usize = 10;
    let mut redis = RedisServer::start_durable().await;
    let mut con = redis.connection().await;
    let ns = "t_redis_outage";
    let dir = tempfile::tempdir().expect("tempdir");
    let config = HostConfig::new(redis.url(), ns)
        .consumer("host-a")
        .handler(HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT]))
        .write_to(dir.path());
    let mut process = RunningProcess::run_host(&config);
    let before = chaos_ok(1);
    publish_all(&mut con, ns, std::slice::from_ref(&before)).await;
    wait_for_handled(&con, ns, "chaos", 1, &mut process).await;

    // Redis dies; something on its port hangs up on every connection and counts them.
    let lines_before = process.stderr_so_far().lines().count();
    redis.kill();
    let outage = OutageListener::bind(redis.port()).await;
    eventually(
        Duration::from_secs(60),
        &format!("{ATTEMPTS} attempts to reconnect"),
        || {
            let exited = process.has_exited();
            let attempts = outage.attempts();
            async move {
                assert!(!exited, "the host exited because Redis went away");
                if attempts >= ATTEMPTS {
                    Ok(())
                } else {
                    Err(format!("{attempts} attempts"))
                }
            }
        },
    )
    .await;
    let attempts = outage.attempts();
    let warnings = warnings_after(&process.stderr_so_far(), lines_before);
    assert!(
        warnings.len() <= ATTEMPTS,
        "{attempts} reconnection attempts logged {} warnings; an outage is logged when it \
         starts, not per attempt:\n{}",
        warnings.len(),
        warnings
            .iter()
            .map(|w| w.line.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );

    outage.close().await;
    redis.start_again().await;
    let mut con = redis.connection().await;
    let after = chaos_ok(2);
    publish_all(&mut con, ns, std::slice::from_ref(&after)).await;
    wait_for_field(&con, &kv_key(ns, "chaos"), &seen_key(&after), "1").await;
    assert!(!process.has_exited(), "the host kept running");
    process.terminate();
    let output = process.wait(Duration::from_secs(30)).await;
    assert!(output.success(), "the host still stops cleanly: {output}");
}

/// How long `run` may take to refuse to start.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_a_component_that_fails_to_instantiate_naming_handler_and_file() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let component = dir.path().join("traps-at-start.wasm");
    std::fs::write(&component, guests::traps_on_instantiation()).expect("write the component");
    let config = HostConfig::new(redis.url(), "t_bad_instance")
        .handler(HandlerConfig::new(
            "broken-at-start",
            &component,
            [CHAOS_EVENT],
        ))
        .write_to(dir.path());

    let output = run_until_exit(&config, REFUSAL_DEADLINE).await;
    let output = output.assert_failure();
    let text = output.combined().to_lowercase();
    for word in ["broken-at-start", "traps-at-start.wasm", "instantiat"] {
        assert!(text.contains(word), "expected {word:?} in {output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_a_retry_backoff_that_reaches_claim_idle_ms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = HostConfig::new(
        format!("redis://127.0.0.1:{}", free_port()),
        "t_bad_backoff",
    )
    .claim_idle_ms(1000)
    .handler(
        HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT])
            .retry_backoff_ms(100)
            .retry_backoff_max_ms(1000),
    )
    .write_to(dir.path());

    let output = run_until_exit(&path, REFUSAL_DEADLINE)
        .await
        .assert_failure();
    let text = output.combined();
    for word in [
        "watchtower.toml",
        "\"chaos\"",
        "retry_backoff_max_ms",
        "claim_idle_ms",
    ] {
        assert!(text.contains(word), "expected {word:?} in {output}");
    }
}
