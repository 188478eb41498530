//! What the container image relies on, checked without Docker: its configuration
//! (`deploy/watchtower.toml`) is valid and names the example handlers, and
//! `watchtower healthcheck`, its `HEALTHCHECK`, follows the admin listener.

use watchtower_tests::guests::repo_root;
use watchtower_tests::{Host, HostConfig, RedisServer, eventually, watchtower};

#[test]
fn the_image_configuration_runs_the_example_handlers() {
    let path = repo_root().join("deploy/watchtower.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    // In the image the components live in /opt/watchtower/handlers; here, where
    // `just guests` put them.
    let here = repo_root().join("guest-examples");
    let text = text.replace("/opt/watchtower/handlers", &here.to_string_lossy());
    let config = watchtower::config::Config::from_toml_str(&text, &path)
        .unwrap_or_else(|err| panic!("deploy/watchtower.toml does not validate: {err}"));
    assert_eq!(
        config.redis.url, "redis://redis:6379",
        "the Redis of compose.yaml"
    );
    assert_eq!(
        config.admin.listen.to_string(),
        "0.0.0.0:9464",
        "reachable from outside"
    );
    let handlers: Vec<(&str, Vec<&str>)> = config
        .handlers
        .iter()
        .map(|h| {
            (
                h.name.as_str(),
                h.events.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        handlers,
        [
            ("speed-alert", vec!["position.updated"]),
            ("trip-tracker", vec!["trip.created", "trip.status_changed"]),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_passes_while_the_admin_listener_answers_and_fails_once_it_is_gone() {
    let redis = RedisServer::start().await;
    let config = HostConfig::new(redis.url(), "t_healthcheck").admin_on_free_port();
    let addr = config.admin_addr().unwrap().to_owned();
    let url = format!("http://{addr}/healthz");
    let host = Host::start(&config).await;

    eventually(
        watchtower_tests::PATIENCE,
        "watchtower healthcheck to pass",
        || {
            let url = url.clone();
            async move {
                let output = watchtower(["healthcheck", "--url", &url]).await;
                output.success().then_some(()).ok_or(output.to_string())
            }
        },
    )
    .await;
    // Without --url it reads `[admin] listen` from the config, as the image does.
    let config_path = host.config_path().to_string_lossy().into_owned();
    watchtower(["healthcheck", "--config", &config_path])
        .await
        .assert_success();

    host.stop().await.unwrap();
    let output = watchtower(["healthcheck", "--url", &url, "--timeout", "2"])
        .await
        .assert_failure();
    assert!(
        output.stderr.contains(&addr),
        "the error names what was asked: {output}"
    );
}
