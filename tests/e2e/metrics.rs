//! What a host tells its operators: the series of `GET /metrics` after known workloads
//! (outcomes, traps by kind, dead letters, a backlog's pending entries and lag, reloads and
//! the live version), and the `event` span that JSON log lines logged while handling an
//! event carry.

use std::collections::BTreeMap;

use serde_json::Value;
use watchtower_tests::admin::Admin;
use watchtower_tests::cli::{RunningProcess, log_records};
use watchtower_tests::fixtures::{
    CHAOS_EVENT, DEFAULT_GROUP, chaos_fault, chaos_ok, chaos_retry_until, chaos_slow, seen_key,
};
use watchtower_tests::streams::{publish_all, wait_for_field};
use watchtower_tests::versions::{deploy_copy, label_of, write_in_place};
use watchtower_tests::{
    HandlerConfig, Host, HostConfig, PATIENCE, RedisServer, eventually, guests, kv_key, stream_key,
};

/// How often the hosts of these tests read stream figures from Redis.
const POLL_MS: u64 = 100;

/// One sample of a scrape.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// One answer of `GET /metrics`, parsed.
#[derive(Debug)]
struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    /// Scrapes `admin`'s host; panics unless it answers 200 with a complete exposition.
    async fn of(admin: &Admin) -> Scrape {
        let reply = admin.get("/metrics").await.assert_status(200);
        assert!(
            reply.body.trim_end().ends_with("# EOF"),
            "an OpenMetrics exposition ends with `# EOF`: {}",
            reply.body
        );
        let samples = reply
            .body
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(parse_sample)
            .collect();
        Scrape {
            text: reply.body,
            samples,
        }
    }

    /// The samples of `name` whose labels include `labels`.
    fn matching(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of the one sample of `name` with `labels`; `None` if there is none, a
    /// panic if several match.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        match self.matching(name, labels).as_slice() {
            [] => None,
            [one] => Some(one.value),
            many => panic!("{name} {labels:?} matches several samples: {many:?}"),
        }
    }

    /// Like [`Scrape::get`], but a missing sample is a panic showing the scrape.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?} in the scrape:\n{}", self.text))
    }
}

/// `name{k="v",…} value` (labels optional).
fn parse_sample(line: &str) -> Sample {
    let (series, value) = line
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("a sample line is `series value`: {line:?}"));
    let value: f64 = value
        .parse()
        .unwrap_or_else(|err| panic!("sample value of {line:?}: {err}"));
    let (name, labels) = match series.split_once('{') {
        None => (series, BTreeMap::new()),
        Some((name, rest)) => {
            let body = rest
                .strip_suffix('}')
                .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
            let labels = body
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("label `{pair}` in {line:?}"));
                    (key.to_owned(), value.trim_end_matches('"').to_owned())
                })
                .collect();
            (name, labels)
        }
    };
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

/// Scrapes until `done` holds for a scrape, and returns that scrape; the timeout panic
/// shows what `summary` made of the last one.
async fn scrape_until(
    admin: &Admin,
    what: &str,
    done: impl Fn(&Scrape) -> bool,
    summary: impl Fn(&Scrape) -> String,
) -> Scrape {
    eventually(PATIENCE, what, || {
        let admin = admin.clone();
        let done = &done;
        let summary = &summary;
        async move {
            let scrape = Scrape::of(&admin).await;
            if done(&scrape) {
                Ok(scrape)
            } else {
                Err(summary(&scrape))
            }
        }
    })
    .await
}

const HANDLED: &str = "watchtower_events_handled_total";

/// Waits until the in-process host behind `admin` answers `GET /readyz` with 200.
async fn wait_ready(admin: &Admin) {
    eventually(PATIENCE, "the admin listener to report ready", || async {
        match admin.try_request("GET", "/readyz").await {
            Ok(reply) if reply.status == 200 => Ok(()),
            Ok(reply) => Err(format!("{reply:?}")),
            Err(err) => Err(err),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_workload_shows_in_outcomes_traps_durations_and_dead_letters() {
    let redis = RedisServer::start().await;
    let con = redis.connection().await;
    let ns = "t_metrics_workload";
    let config = HostConfig::new(redis.url(), ns)
        .admin_on_free_port()
        .metrics_interval_ms(POLL_MS)
        .handler(
            HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT])
                .max_attempts(2)
                .retry_backoff_ms(10)
                .timeout_ms(300),
        );
    let admin = Admin::of(&config);
    let host = Host::start(&config).await;
    wait_ready(&admin).await;

    // 10 successes; a rejection (dead letter at once); a retry that would succeed only at
    // attempt 5, a panic and an endless loop (each: one retry, then a dead letter).
    let mut events: Vec<_> = (1..=10).map(chaos_ok).collect();
    events.push(chaos_fault(11, "reject"));
    events.push(chaos_retry_until(12, 5));
    events.push(chaos_fault(13, "panic"));
    events.push(chaos_fault(14, "loop"));
    publish_all(&mut con.clone(), ns, &events).await;

    let stream = stream_key(ns, CHAOS_EVENT);
    let chaos = ("handler", "chaos");
    let of_stream = [("stream", stream.as_str()), ("group", DEFAULT_GROUP)];
    let scrape = scrape_until(
        &admin,
        "the workload's outcomes and dead letters in /metrics",
        |s| {
            s.get(HANDLED, &[chaos, ("outcome", "ok")]) == Some(10.0)
                && s.get(HANDLED, &[chaos, ("outcome", "dead_letter")]) == Some(4.0)
                && s.get("watchtower_dead_letters", &[chaos]) == Some(4.0)
                && s.get("watchtower_group_pending", &of_stream) == Some(0.0)
                && s.get("watchtower_group_lag", &of_stream) == Some(0.0)
        },
        |s| {
            format!(
                "ok {:?}, dead_letter {:?}, dead_letters {:?}, pending {:?}, lag {:?}",
                s.get(HANDLED, &[chaos, ("outcome", "ok")]),
                s.get(HANDLED, &[chaos, ("outcome", "dead_letter")]),
                s.get("watchtower_dead_letters", &[chaos]),
                s.get("watchtower_group_pending", &of_stream),
                s.get("watchtower_group_lag", &of_stream),
            )
        },
    )
    .await;

    let typed = |outcome| [chaos, ("event_type", CHAOS_EVENT), ("outcome", outcome)];
    assert_eq!(scrape.value(HANDLED, &typed("ok")), 10.0);
    assert_eq!(
        scrape.value(HANDLED, &typed("retry")),
        3.0,
        "first attempts of 12, 13, 14"
    );
    assert_eq!(scrape.value(HANDLED, &typed("dead_letter")), 4.0);
    let traps = "watchtower_traps_total";
    assert_eq!(scrape.value(traps, &[chaos, ("kind", "trap")]), 2.0);
    assert_eq!(scrape.value(traps, &[chaos, ("kind", "timeout")]), 2.0);
    let all_traps: f64 = scrape
        .matching(traps, &[chaos])
        .iter()
        .map(|s| s.value)
        .sum();
    assert_eq!(
        all_traps, 4.0,
        "retry and reject are answers, not traps:\n{}",
        scrape.text
    );
    // Every call is timed: 10 + 1 + 2 + 2 + 2.
    let calls = scrape.value("watchtower_handle_duration_seconds_count", &[chaos]);
    assert_eq!(calls, 17.0);
    let slowest = scrape.value(
        "watchtower_handle_duration_seconds_bucket",
        &[chaos, ("le", "0.25")],
    );
    assert!(
        slowest <= 15.0,
        "the two timed-out calls took 300 ms each: {slowest} calls under 250 ms"
    );
    assert_eq!(
        scrape.value("watchtower_stream_length", &[("stream", &stream)]),
        14.0
    );
    assert_eq!(
        scrape.value("watchtower_group_oldest_pending_idle_seconds", &of_stream),
        0.0
    );
    assert_eq!(scrape.value("watchtower_redis_reconnects_total", &[]), 0.0);
    let version = admin.handler("chaos").await.version;
    assert_eq!(
        scrape.value(
            "watchtower_handler_info",
            &[chaos, ("version", version.as_str())]
        ),
        1.0
    );
    // The dead letters announce themselves on `error.occurred`, a stream this host does not
    // consume: it is not polled.
    let errors = stream_key(ns, "error.occurred");
    assert!(
        scrape
            .matching("watchtower_stream_length", &[("stream", &errors)])
            .is_empty(),
        "only consumed streams are polled:\n{}",
        scrape.text
    );

    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_shows_as_pending_and_lag_until_the_handler_catches_up() {
    let redis = RedisServer::start().await;
    let con = redis.connection().await;
    let ns = "t_metrics_backlog";
    // Published before the host starts: one entry per read (and one read ahead), 400 ms
    // each, so most of the backlog waits undelivered while the first entries are handled.
    let events: Vec<_> = (1..=8).map(|n| chaos_slow(n, 400)).collect();
    publish_all(&mut con.clone(), ns, &events).await;
    let config = HostConfig::new(redis.url(), ns)
        .admin_on_free_port()
        .metrics_interval_ms(POLL_MS)
        .batch_size(1)
        .handler(HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT]));
    let admin = Admin::of(&config);
    let host = Host::start(&config).await;
    wait_ready(&admin).await;

    let stream = stream_key(ns, CHAOS_EVENT);
    let of_stream = [("stream", stream.as_str()), ("group", DEFAULT_GROUP)];
    let figures = |s: &Scrape| {
        format!(
            "pending {:?}, lag {:?}, oldest idle {:?}, handled {:?}",
            s.get("watchtower_group_pending", &of_stream),
            s.get("watchtower_group_lag", &of_stream),
            s.get("watchtower_group_oldest_pending_idle_seconds", &of_stream),
            s.get(HANDLED, &[("handler", "chaos"), ("outcome", "ok")]),
        )
    };
    let busy = scrape_until(
        &admin,
        "the backlog as pending and lag in /metrics",
        |s| {
            s.get("watchtower_group_pending", &of_stream).unwrap_or(0.0) >= 1.0
                && s.get("watchtower_group_lag", &of_stream).unwrap_or(0.0) > 0.0
        },
        figures,
    )
    .await;
    assert!(
        busy.value("watchtower_group_pending", &of_stream) <= 2.0
            && busy.value("watchtower_group_lag", &of_stream) <= 7.0,
        "one entry is being handled and at most one more was read ahead: {}",
        figures(&busy)
    );
    assert_eq!(
        busy.value("watchtower_stream_length", &[("stream", &stream)]),
        8.0
    );

    let caught_up = scrape_until(
        &admin,
        "pending and lag back at 0 once the backlog is handled",
        |s| {
            s.get(HANDLED, &[("handler", "chaos"), ("outcome", "ok")]) == Some(8.0)
                && s.get("watchtower_group_pending", &of_stream) == Some(0.0)
                && s.get("watchtower_group_lag", &of_stream) == Some(0.0)
        },
        figures,
    )
    .await;
    assert_eq!(
        caught_up.value("watchtower_group_oldest_pending_idle_seconds", &of_stream),
        0.0
    );
    assert_eq!(
        caught_up.value("watchtower_dead_letters", &[("handler", "chaos")]),
        0.0
    );

    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_are_counted_by_result_and_handler_info_follows_the_live_version() {
    let redis = RedisServer::start().await;
    let con = redis.connection().await;
    let ns = "t_metrics_reloads";
    let dir = tempfile::tempdir().unwrap();
    let component = deploy_copy(&guests::chaos(), dir.path());
    let first = label_of(&component);
    let config = HostConfig::new(redis.url(), ns)
        .admin_on_free_port()
        .metrics_interval_ms(POLL_MS)
        .reload_watch(false)
        .cache_dir(dir.path().join("cache"))
        .handler(
            HandlerConfig::new("chaos", &component, [CHAOS_EVENT])
                .max_attempts(2)
                .retry_backoff_ms(10)
                .rollback_on_error_rate(0.5)
                .rollback_window(2),
        );
    let admin = Admin::of(&config);
    let host = Host::start(&config).await;
    wait_ready(&admin).await;
    admin.wait_for_version("chaos", &first).await;

    let wrong = std::fs::read(guests::wrong_world()).unwrap();
    write_in_place(&component, &wrong);
    admin.reload("chaos").await.assert_status(422);
    let second_bytes = guests::variant(&guests::chaos(), "metrics-2");
    write_in_place(&component, &second_bytes);
    admin.reload("chaos").await.assert_status(200);
    let second = label_of(&component);
    assert_ne!(first, second);

    let info = "watchtower_handler_info";
    let chaos = ("handler", "chaos");
    let reloads = "watchtower_reloads_total";
    let swapped = Scrape::of(&admin).await;
    assert_eq!(swapped.value(reloads, &[chaos, ("result", "refused")]), 1.0);
    assert_eq!(swapped.value(reloads, &[chaos, ("result", "swapped")]), 1.0);
    assert_eq!(swapped.value(info, &[chaos, ("version", &second)]), 1.0);
    assert_eq!(
        swapped.matching(info, &[chaos]).len(),
        1,
        "only the live version is shown:\n{}",
        swapped.text
    );

    // Both calls of the new version fail (a panic and its retry): more than half of its
    // first two, so the host swaps back by itself.
    publish_all(&mut con.clone(), ns, &[chaos_fault(1, "panic")]).await;
    let rolled_back = scrape_until(
        &admin,
        "a rollback in /metrics",
        |s| s.get(reloads, &[chaos, ("result", "rolled_back")]) == Some(1.0),
        |s| format!("{:?}", s.matching(reloads, &[chaos])),
    )
    .await;
    assert_eq!(rolled_back.value(info, &[chaos, ("version", &first)]), 1.0);
    assert_eq!(rolled_back.matching(info, &[chaos]).len(), 1);

    host.stop().await.expect("host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_logged_while_handling_carry_the_event_span() {
    let redis = RedisServer::start().await;
    let con = redis.connection().await;
    let ns = "t_metrics_span";
    let dir = tempfile::tempdir().unwrap();
    let config = HostConfig::new(redis.url(), ns)
        .handler(HandlerConfig::new(
            "printer",
            guests::chaos(),
            [CHAOS_EVENT],
        ))
        .write_to(dir.path());
    let host = RunningProcess::run_host(&config);

    // One event with a correlation id, one without: that one's trace starts with it.
    let events = [
        chaos_fault(1, "sandbox").with_correlation_id("route-42"),
        chaos_fault(2, "sandbox"),
    ];
    let ids = publish_all(&mut con.clone(), ns, &events).await;
    for event in &events {
        wait_for_field(&con, &kv_key(ns, "printer"), &seen_key(event), "1").await;
    }

    let version = label_of(&guests::chaos());
    for ((event, id), correlation_id) in events
        .iter()
        .zip(&ids)
        .zip(["route-42", &events[1].event_id])
    {
        let printed = eventually(PATIENCE, "the guest's stdout line in the JSON log", || {
            let log = host.stderr_so_far();
            let probe = format!("chaos: sandbox probe for {}", event.event_id);
            async move {
                log_records(&log)
                    .into_iter()
                    .find(|r| r.message.contains(&probe))
            }
        })
        .await;
        let line: Value = serde_json::from_str(&printed.line).unwrap();
        let span = line
            .get("span")
            .unwrap_or_else(|| panic!("no `span` on the guest's line: {}", printed.line));
        let field = |name: &str| {
            span.get(name)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("no `{name}` in the span: {}", printed.line))
                .to_owned()
        };
        assert_eq!(span.get("name").and_then(Value::as_str), Some("event"));
        assert_eq!(field("handler"), "printer");
        assert_eq!(field("stream"), stream_key(ns, CHAOS_EVENT));
        assert_eq!(field("entry"), *id);
        assert_eq!(field("event_id"), event.event_id);
        assert_eq!(field("correlation_id"), correlation_id);
        assert_eq!(field("version"), version);
        assert!(
            line.get("spans").is_none(),
            "only the current span is logged: {}",
            printed.line
        );
    }

    host.kill().await;
}
