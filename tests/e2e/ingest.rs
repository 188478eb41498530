//! Ingest over HTTP and the admin token, as senders and operators meet them: every request
//! gets its status code, and afterwards Redis holds exactly the events that were answered
//! with a 2xx — no more (a refusal publishes nothing), no fewer (a 2xx means the `XADD` is
//! done).
//!
//! Each test runs a host in-process with the ingest listener on a free port and no handlers,
//! so nothing consumes the streams the test reads back.

use std::ffi::OsStr;

use serde_json::{Value, json};
use watchtower_tests::admin::{Admin, Reply};
use watchtower_tests::config::{IngestConfig, WebhookConfig};
use watchtower_tests::ingest::{Ingest, sign};
use watchtower_tests::streams::{Entry, entries, keys};
use watchtower_tests::{
    Host, HostConfig, PATIENCE, RedisServer, eventually, stream_key, watchtower,
};

/// A position every schema check accepts.
fn position(truck: &str) -> Value {
    json!({
        "truck_id": truck,
        "truck_number": "NL-0042",
        "lat": 52.37,
        "lng": 4.89,
        "speed": 83.5,
    })
}

/// Starts a host on `redis` in `ns` with `ingest`, and waits until the listener answers.
async fn start(redis: &RedisServer, ns: &str, ingest: IngestConfig) -> (Host, Ingest) {
    let client = Ingest::of(&ingest);
    let host = Host::start(&HostConfig::new(redis.url(), ns).ingest(ingest)).await;
    client.wait_ready().await;
    (host, client)
}

/// Panics showing `reply` unless it is a 202 naming the entry; returns the entry id.
fn accepted(reply: &Reply, ns: &str, event_type: &str) -> String {
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_eq!(
        reply.text("stream"),
        stream_key(ns, event_type),
        "{reply:?}"
    );
    assert!(!reply.text("event_id").is_empty(), "{reply:?}");
    reply.text("entry_id")
}

/// Panics showing `reply` unless it has `status` and a JSON error mentioning `needle`.
fn refused(reply: &Reply, status: u16, needle: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    let error = reply.text("error");
    assert!(
        error.contains(needle),
        "{needle:?} not in the error of {reply:?}"
    );
}

/// Every key of `ns`: the streams something was published to.
async fn streams_of(redis: &RedisServer, ns: &str) -> Vec<String> {
    keys(&mut redis.connection().await, &format!("{ns}:*")).await
}

async fn stream(redis: &RedisServer, ns: &str, event_type: &str) -> Vec<Entry> {
    entries(&mut redis.connection().await, &stream_key(ns, event_type)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_event_is_on_its_stream_with_the_correlation_id() {
    let redis = RedisServer::start().await;
    let ns = "t_ingest_valid";
    let (host, client) = start(&redis, ns, IngestConfig::on_free_port()).await;

    let payload = position("truck-1");
    let reply = client
        .post(
            "/events/position.updated",
            &[
                ("content-type", "application/json"),
                ("x-correlation-id", "trip-7781"),
            ],
            payload.to_string(),
        )
        .await;
    let entry_id = accepted(&reply, ns, "position.updated");

    // The answer came after the XADD: the entry is there without waiting.
    let on_stream = stream(&redis, ns, "position.updated").await;
    assert_eq!(on_stream.len(), 1, "{on_stream:?}");
    let entry = &on_stream[0];
    assert_eq!(entry.id, entry_id);
    assert_eq!(entry.field("event_id"), reply.text("event_id"));
    assert_eq!(entry.field("event_type"), "position.updated");
    assert_eq!(entry.field("correlation_id"), "trip-7781");
    assert_eq!(entry.data(), payload);
    host.stop().await.expect("the host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_events_get_their_status_and_publish_nothing() {
    let redis = RedisServer::start().await;
    let ns = "t_ingest_invalid";
    let ingest = IngestConfig::on_free_port().max_body_bytes(4096);
    let (host, client) = start(&redis, ns, ingest).await;

    // Strict by default: a well-formed custom type is not taken.
    let reply = client
        .event("billing.invoice_paid", r#"{"invoice": "A-1"}"#)
        .await;
    refused(&reply, 404, "strict");
    // Not an event type at all.
    let reply = client.event("Position", &position("t").to_string()).await;
    refused(&reply, 404, "Position");
    // Not JSON: 400 with the parser's reason.
    let reply = client
        .event("position.updated", r#"{"truck_id": "t1", "#)
        .await;
    refused(&reply, 400, "not valid JSON");
    refused(&reply, 400, "EOF");
    // JSON, but not an object.
    let reply = client.event("position.updated", "[1, 2, 3]").await;
    refused(&reply, 422, "JSON object");
    // An object that does not fit the schema: the field is named.
    let mut wrong = position("t1");
    wrong["speed"] = json!("fast");
    let reply = client.event("position.updated", &wrong.to_string()).await;
    refused(&reply, 422, "`speed`");
    let reply = client
        .event("position.updated", r#"{"truck_id": "t1"}"#)
        .await;
    refused(&reply, 422, "truck_number");
    // Over the body limit.
    let mut big = position("t1");
    big["padding"] = json!("x".repeat(8 * 1024));
    let reply = client.event("position.updated", &big.to_string()).await;
    refused(&reply, 413, "4096 bytes");
    // Only POST.
    let reply = client.get("/events/position.updated").await;
    assert_eq!(reply.status, 405, "{reply:?}");

    // One good event after all the refusals: the only thing in Redis.
    let reply = client
        .event("position.updated", &position("t2").to_string())
        .await;
    let entry_id = accepted(&reply, ns, "position.updated");
    assert_eq!(
        streams_of(&redis, ns).await,
        [stream_key(ns, "position.updated")]
    );
    let on_stream = stream(&redis, ns, "position.updated").await;
    let ids: Vec<&str> = on_stream.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [entry_id.as_str()]);
    host.stop().await.expect("the host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_types_are_taken_when_not_strict_and_known_ones_still_checked() {
    let redis = RedisServer::start().await;
    let ns = "t_ingest_custom";
    let (host, client) = start(&redis, ns, IngestConfig::on_free_port().strict(false)).await;

    let reply = client
        .event(
            "billing.invoice_paid",
            r#"{"invoice": "A-1", "amount": 12.5}"#,
        )
        .await;
    let entry_id = accepted(&reply, ns, "billing.invoice_paid");
    let reply = client
        .event("position.updated", r#"{"truck_id": "t1"}"#)
        .await;
    refused(&reply, 422, "truck_number");
    let reply = client.event("billing.invoice_paid", "[]").await;
    refused(&reply, 422, "JSON object");

    let on_stream = stream(&redis, ns, "billing.invoice_paid").await;
    assert_eq!(on_stream.len(), 1, "{on_stream:?}");
    assert_eq!(on_stream[0].id, entry_id);
    assert_eq!(
        on_stream[0].data(),
        json!({"invoice": "A-1", "amount": 12.5})
    );
    assert_eq!(
        streams_of(&redis, ns).await,
        [stream_key(ns, "billing.invoice_paid")]
    );
    host.stop().await.expect("the host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_published_only_with_a_good_signature() {
    let redis = RedisServer::start().await;
    let ns = "t_ingest_webhooks";
    let secret = "It's a Secret to Everybody";
    let ingest = IngestConfig::on_free_port().webhook(
        WebhookConfig::new("github")
            .secret(secret)
            .signature_header("X-Hub-Signature-256")
            .forward_header("X-GitHub-Event"),
    );
    let (host, client) = start(&redis, ns, ingest).await;
    let push = br#"{"ref": "refs/heads/main", "commits": 2}"#;
    let send = |signature: Option<String>, body: &'static [u8]| {
        let client = client.clone();
        async move {
            let mut headers = vec![
                ("content-type", "application/json".to_owned()),
                ("user-agent", "GitHub-Hookshot/abc".to_owned()),
                ("x-github-event", "push".to_owned()),
                ("x-unlisted", "dropped".to_owned()),
            ];
            if let Some(signature) = signature {
                headers.push(("x-hub-signature-256", signature));
            }
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            client.post("/webhooks/github", &headers, body).await
        }
    };

    // Missing, made with another secret, made over another body: 401, nothing published.
    refused(&send(None, push).await, 401, "missing signature");
    refused(
        &send(Some(sign("not the secret", push)), push).await,
        401,
        "does not match",
    );
    refused(
        &send(Some(sign(secret, b"{}")), push).await,
        401,
        "does not match",
    );
    refused(&send(Some("sha256=zz".into()), push).await, 401, "sha256=");
    assert_eq!(streams_of(&redis, ns).await, Vec::<String>::new());

    // A source nobody configured.
    let reply = client.post("/webhooks/gitlab", &[], &push[..]).await;
    refused(&reply, 404, "unknown webhook source `gitlab`");

    // Signed right: as `sha256=<hex>`, and as bare hex with a body that is not JSON.
    let good = send(Some(sign(secret, push)), push).await;
    let first = accepted(&good, ns, "webhook.received");
    let form: &'static [u8] = b"payload=ping";
    let bare = sign(secret, form).trim_start_matches("sha256=").to_owned();
    let second = accepted(&send(Some(bare), form).await, ns, "webhook.received");

    let on_stream = stream(&redis, ns, "webhook.received").await;
    let ids: Vec<&str> = on_stream.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str()]);
    let data = on_stream[0].data();
    assert_eq!(data["source"], "github");
    assert_eq!(
        data["headers"],
        json!({
            "content-type": "application/json",
            "user-agent": "GitHub-Hookshot/abc",
            "x-github-event": "push",
        }),
        "only content-type, user-agent and the listed headers are kept: {data}"
    );
    assert_eq!(
        data["body"],
        json!({"ref": "refs/heads/main", "commits": 2})
    );
    let received_at = data["received_at"].as_str().unwrap_or_default();
    assert!(
        received_at.ends_with('Z') && received_at.contains('T'),
        "{data}"
    );
    assert_eq!(on_stream[1].data()["body"], json!("payload=ping"));
    assert_eq!(
        streams_of(&redis, ns).await,
        [stream_key(ns, "webhook.received")]
    );
    host.stop().await.expect("the host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_webhooks_are_taken_only_when_allowed() {
    let redis = RedisServer::start().await;
    let ns = "t_ingest_unsigned";
    let ingest = IngestConfig::on_free_port().allow_unsigned_webhooks(true);
    let (host, client) = start(&redis, ns, ingest).await;

    let reply = client
        .post(
            "/webhooks/fleet-api",
            &[("x-correlation-id", "c-1")],
            "hello",
        )
        .await;
    accepted(&reply, ns, "webhook.received");
    // Names that cannot be a source are still refused.
    let reply = client.post("/webhooks/Fleet%20API", &[], "hello").await;
    assert_eq!(reply.status, 404, "{reply:?}");

    let on_stream = stream(&redis, ns, "webhook.received").await;
    assert_eq!(on_stream.len(), 1, "{on_stream:?}");
    assert_eq!(on_stream[0].field("correlation_id"), "c-1");
    assert_eq!(on_stream[0].data()["source"], "fleet-api");
    assert_eq!(on_stream[0].data()["body"], "hello");
    host.stop().await.expect("the host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_an_event_is_refused_with_503_and_not_published_later() {
    let mut redis = RedisServer::start().await;
    let ns = "t_ingest_outage";
    let (host, client) = start(&redis, ns, IngestConfig::on_free_port()).await;

    redis.stop();
    let reply = client
        .event("position.updated", &position("lost").to_string())
        .await;
    refused(&reply, 503, "try again");
    redis.start_again().await;

    // The sender retries until it gets a 2xx; each refusal published nothing.
    let entry_id = eventually(PATIENCE, "ingest to accept again", || {
        let client = client.clone();
        async move {
            let reply = client
                .event("position.updated", &position("kept").to_string())
                .await;
            match reply.status {
                202 => Ok(reply.text("entry_id")),
                503 => Err(format!("{reply:?}")),
                _ => panic!("only 202 or 503 is expected: {reply:?}"),
            }
        }
    })
    .await;
    let on_stream = stream(&redis, ns, "position.updated").await;
    let ids: Vec<&str> = on_stream.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [entry_id.as_str()]);
    assert_eq!(on_stream[0].data()["truck_id"], "kept");
    host.stop().await.expect("the host stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_posts_need_the_token_and_reads_do_not() {
    let redis = RedisServer::start().await;
    let ns = "t_admin_token";
    let config = HostConfig::new(redis.url(), ns)
        .admin_on_free_port()
        .admin_token("t0ken-for-tests");
    let host = Host::start(&config).await;
    let admin = Admin::of(&config);
    eventually(PATIENCE, "the admin listener to be ready", || async {
        admin
            .try_request("GET", "/readyz")
            .await
            .is_ok_and(|reply| reply.status == 200)
    })
    .await;

    // Reads stay open.
    for path in ["/healthz", "/readyz", "/admin/handlers"] {
        admin.get(path).await.assert_status(200);
    }
    // A reload without the token, or with another one, never reaches the handler.
    let path = "/admin/handlers/no-such-handler/reload";
    refused(&admin.post(path).await, 401, "Authorization: Bearer");
    let with_headers = Ingest::new(config.admin_addr().expect("a fixed admin address"));
    let wrong = with_headers
        .post(path, &[("authorization", "Bearer not-it")], "")
        .await;
    refused(&wrong, 401, "not the admin token");
    // With the token it does: the handler is unknown.
    let right = with_headers
        .post(path, &[("authorization", "Bearer t0ken-for-tests")], "")
        .await;
    assert_eq!(right.status, 404, "{right:?}");

    // `watchtower reload` finds the token in the config file…
    let config_path = host.config_path().as_os_str();
    let output = watchtower([
        OsStr::new("reload"),
        OsStr::new("no-such-handler"),
        OsStr::new("--config"),
        config_path,
    ])
    .await
    .assert_failure();
    assert!(output.stderr.contains("HTTP 404"), "{output}");
    // …and without it is refused.
    let output = watchtower([
        "reload",
        "no-such-handler",
        "--admin-url",
        admin.url(),
        "--config",
        "/nonexistent/watchtower.toml",
    ])
    .await
    .assert_failure();
    assert!(output.stderr.contains("HTTP 401"), "{output}");
    host.stop().await.expect("the host stops cleanly");
}
