//! The status page on the admin listener: `GET /admin/status` reports streams, groups,
//! handlers with their versions and dead letters, and `GET /` renders it in a real browser
//! (headless Chromium), escaping whatever names and reasons Redis holds.

use watchtower_tests::admin::Admin;
use watchtower_tests::browser;
use watchtower_tests::dead_letters::wait_for_dead_letters;
use watchtower_tests::fixtures::{CHAOS_EVENT, DEFAULT_GROUP, chaos_fault, chaos_ok};
use watchtower_tests::groups::wait_until_drained;
use watchtower_tests::streams::{publish_all, xadd};
use watchtower_tests::{HandlerConfig, Host, HostConfig, RedisServer, guests, stream_key};

/// A stream whose name is markup: the page must show it as text.
const MARKUP_TYPE: &str = "<b>bold</b>.<script>document.title='pwned'</script>";

/// A host running `chaos` that has handled two events and dead-lettered one, next to a
/// stream nobody consumes whose name is markup. Returns the host, its admin client and the
/// handler's version.
async fn host_with_history(redis: &RedisServer, ns: &str) -> (Host, Admin, String) {
    let mut con = redis.connection().await;
    let config = HostConfig::new(redis.url(), ns)
        .admin_on_free_port()
        .handler(HandlerConfig::new("chaos", guests::chaos(), [CHAOS_EVENT]));
    let host = Host::start(&config).await;
    let admin = Admin::of(&config);
    let events = [chaos_ok(1), chaos_fault(2, "reject"), chaos_ok(3)];
    let ids = publish_all(&mut con, ns, &events).await;
    let stream = stream_key(ns, CHAOS_EVENT);
    wait_until_drained(&con, &stream, DEFAULT_GROUP, &ids[2]).await;
    wait_for_dead_letters(&con, ns, "chaos", 1).await;
    xadd(
        &mut con,
        &format!("{ns}:events:{MARKUP_TYPE}"),
        &[("note", "x")],
    )
    .await;
    let version = admin.handler("chaos").await.version;
    (host, admin, version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_reports_streams_groups_handlers_and_dead_letters() {
    let redis = RedisServer::start().await;
    let ns = "t_status_json";
    let (host, admin, version) = host_with_history(&redis, ns).await;

    let status = admin.get("/admin/status").await.assert_status(200).json();
    assert_eq!(status["namespace"], ns);
    let stream = stream_key(ns, CHAOS_EVENT);
    let streams = status["streams"].as_array().unwrap();
    let chaos = streams
        .iter()
        .find(|s| s["stream"] == stream.as_str())
        .unwrap_or_else(|| panic!("no {stream} in {status:#}"));
    assert_eq!(chaos["length"], 3, "{chaos:#}");
    let group = &chaos["groups"][0];
    assert_eq!(group["name"], DEFAULT_GROUP, "{chaos:#}");
    assert_eq!(group["pending"], 0, "{chaos:#}");
    assert_eq!(group["lag"], 0, "{chaos:#}");

    let handler = &status["handlers"][0];
    assert_eq!(handler["name"], "chaos", "{status:#}");
    assert_eq!(handler["version"], version.as_str(), "{status:#}");
    assert_eq!(handler["versions"][0]["handled"], 2, "{status:#}");
    assert_eq!(handler["versions"][0]["failed"], 1, "{status:#}");

    let letters = &status["dead_letters"]["chaos"];
    assert_eq!(letters["count"], 1, "{status:#}");
    assert_eq!(
        letters["latest"][0]["reason"], "rejected: chaos: asked to reject",
        "{status:#}"
    );
    assert!(
        letters["latest"][0].get("fields").is_none(),
        "payloads stay out"
    );

    let page = admin.get("/").await.assert_status(200);
    assert!(
        page.body.contains("<title>Watchtower status</title>"),
        "{page:?}"
    );
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_streams_handlers_and_dead_letters_in_chromium() {
    if browser::chromium().is_none() {
        eprintln!("skipped: chromium not installed (apt-get install chromium)");
        return;
    }
    let redis = RedisServer::start().await;
    let ns = "t_status_page";
    let (host, admin, version) = host_with_history(&redis, ns).await;

    let dom = browser::dump_dom(&format!("{}/", admin.url()))
        .await
        .expect("chromium is installed");
    let shows = |text: &str| {
        assert!(
            dom.contains(text),
            "the page does not show {text:?}:\n{dom}"
        );
    };
    shows(&stream_key(ns, CHAOS_EVENT));
    shows(DEFAULT_GROUP);
    shows("chaos");
    shows(&version);
    shows("rejected: chaos: asked to reject");
    shows("updated ");
    // Markup from Redis is text on the page: escaped in the DOM, never an element.
    shows("&lt;b&gt;bold&lt;/b&gt;");
    assert!(
        !dom.contains("<b>bold</b>"),
        "a stream name became markup:\n{dom}"
    );
    assert!(
        !dom.contains("pwned</title>"),
        "a stream name ran as a script:\n{dom}"
    );
    host.stop().await.unwrap();
}
