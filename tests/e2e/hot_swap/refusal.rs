//! New versions the host must refuse: each refusal answers with its reason (HTTP 422, a
//! failing `watchtower reload`, a warning in the log), and the old version keeps handling.

use std::ffi::OsStr;

use watchtower_tests::fixtures::CHAOS_EVENT;
use watchtower_tests::versions::{
    deploy_copy, handler_version, label_of, refusals, show, write_in_place,
};
use watchtower_tests::{
    HandlerConfig, PATIENCE, RedisServer, eventually, guests, publish, watchtower,
};

use super::{Running, alert_for, speeding, swap_config};

/// A file the host must refuse as a new version, and what its reason must say.
struct Refused {
    what: &'static str,
    bytes: Vec<u8>,
    /// Words the reason contains (compared in lowercase).
    reason: &'static [&'static str],
}

/// `len` bytes of noise that start like no WebAssembly file (a fixed seed: the same noise
/// every run).
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    bytes[0] = 0x7f;
    bytes
}

fn refused_versions() -> Vec<Refused> {
    vec![
        Refused {
            what: "random bytes",
            bytes: noise(4096),
            reason: &["webassembly"],
        },
        Refused {
            what: "a core module",
            bytes: wat::parse_str("(module)").expect("an empty module is valid WAT"),
            reason: &["core", "not a component"],
        },
        Refused {
            what: "a component of another world",
            bytes: std::fs::read(guests::wrong_world()).expect("read wrong-world"),
            reason: &["world"],
        },
        Refused {
            what: "a component that traps when instantiated",
            bytes: guests::traps_on_instantiation(),
            reason: &["instantiat"],
        },
    ]
}

/// Panics unless `text` contains every word of `refused.reason`.
fn assert_reason(text: &str, refused: &Refused, context: &str) {
    let lower = text.to_lowercase();
    for word in refused.reason {
        assert!(
            lower.contains(word),
            "{}: the reason should mention {word:?}; {context}: {text}",
            refused.what
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_that_cannot_serve_are_refused_with_their_reason_and_the_old_version_keeps_handling()
 {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_swap_refused";
    let dir = tempfile::tempdir().expect("tempdir");
    let component = deploy_copy(&guests::speed_alert(), dir.path());
    let old = label_of(&component);
    let config = swap_config(&redis, ns, dir.path()).handler(HandlerConfig::new(
        "speed-alert",
        &component,
        ["position.updated"],
    ));
    let host = Running::start(&config, dir.path()).await;
    let first = speeding(1);
    publish(&mut con, ns, &first).await;
    assert_eq!(handler_version(&alert_for(&con, ns, &first).await), old);

    let cases = refused_versions();
    for (n, refused) in (2..).zip(&cases) {
        write_in_place(&component, &refused.bytes);

        let reply = host.admin.reload("speed-alert").await;
        assert_eq!(reply.status, 422, "{}: {reply:?}", refused.what);
        assert_reason(&reply.text("error"), refused, "POST reload answered");

        let output = watchtower([
            OsStr::new("reload"),
            OsStr::new("speed-alert"),
            OsStr::new("--config"),
            host.config.as_os_str(),
        ])
        .await
        .assert_failure();
        assert_reason(&output.combined(), refused, "`watchtower reload` printed");

        let position = speeding(n);
        publish(&mut con, ns, &position).await;
        let alert = alert_for(&con, ns, &position).await;
        assert_eq!(
            handler_version(&alert),
            old,
            "after refusing {}, the old version handles",
            refused.what
        );
        assert_eq!(host.admin.handler("speed-alert").await.version, old);
    }

    let expected = 2 * cases.len();
    let logged = eventually(PATIENCE, "a warning for each refused reload", || {
        let log = host.log();
        async move {
            let warnings = refusals(&log, "speed-alert");
            (warnings.len() >= expected).then_some(warnings)
        }
    })
    .await;
    for refused in &cases {
        assert!(
            logged.iter().any(|w| {
                let line = w.line.to_lowercase();
                refused.reason.iter().all(|word| line.contains(word))
            }),
            "{}: a refusal warning gives the reason:\n{}",
            refused.what,
            show(&logged)
        );
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_of_an_unknown_handler_is_not_found() {
    let redis = RedisServer::start().await;
    let ns = "t_swap_unknown";
    let dir = tempfile::tempdir().expect("tempdir");
    let component = deploy_copy(&guests::noop(), dir.path());
    let config = swap_config(&redis, ns, dir.path()).handler(HandlerConfig::new(
        "quiet",
        &component,
        [CHAOS_EVENT],
    ));
    let host = Running::start(&config, dir.path()).await;
    host.admin.get("/healthz").await.assert_status(200);

    host.admin
        .reload("no-such-handler")
        .await
        .assert_status(404);
    let output = watchtower([
        OsStr::new("reload"),
        OsStr::new("no-such-handler"),
        OsStr::new("--config"),
        host.config.as_os_str(),
    ])
    .await
    .assert_failure();
    assert!(
        output.combined().contains("no-such-handler"),
        "the failure names the handler: {output}"
    );
    host.stop().await;
}
