//! `watchtower reload NAME` as an operator runs it after copying a new build into place:
//! it finds the host through the config file (or `--admin-url`), prints the version now
//! serving, and exits 0.

use std::ffi::OsStr;

use watchtower_tests::versions::{
    deploy_copy, handler_version, label_of, version_label, write_in_place,
};
use watchtower_tests::{CliOutput, HandlerConfig, RedisServer, guests, publish, watchtower};

use super::{Running, alert_for, speeding, swap_config};

/// `watchtower reload speed-alert` with `how` (`--config FILE` or `--admin-url URL`).
async fn reload(how: [&OsStr; 2]) -> CliOutput {
    watchtower([
        OsStr::new("reload"),
        OsStr::new("speed-alert"),
        how[0],
        how[1],
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variant_of_a_component_passes_check_under_another_digest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let original = guests::speed_alert();
    let path = dir.path().join("speed-alert-variant.wasm");
    let bytes = guests::variant(&original, "another build");
    write_in_place(&path, &bytes);
    assert_ne!(version_label(&bytes), label_of(&original));
    let output = watchtower([OsStr::new("check"), path.as_os_str()])
        .await
        .assert_success();
    assert!(
        output.stdout.contains(&version_label(&bytes)),
        "check names the variant's version: {output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_command_swaps_the_handler_and_prints_the_new_version() {
    let redis = RedisServer::start().await;
    let mut con = redis.connection().await;
    let ns = "t_reload_command";
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

    // Found through the config file.
    let second_build = guests::variant(&component, "second build");
    let second = version_label(&second_build);
    write_in_place(&component, &second_build);
    let by_config = [OsStr::new("--config"), host.config.as_os_str()];
    let output = reload(by_config).await.assert_success();
    assert!(output.stdout.contains(&second), "prints {second}: {output}");
    let position = speeding(2);
    publish(&mut con, ns, &position).await;
    assert_eq!(
        handler_version(&alert_for(&con, ns, &position).await),
        second
    );

    // Found through the admin URL.
    let third_build = guests::variant(&guests::speed_alert(), "third build");
    let third = version_label(&third_build);
    write_in_place(&component, &third_build);
    let output = reload([OsStr::new("--admin-url"), OsStr::new(host.admin.url())])
        .await
        .assert_success();
    assert!(output.stdout.contains(&third), "prints {third}: {output}");
    let position = speeding(3);
    publish(&mut con, ns, &position).await;
    assert_eq!(
        handler_version(&alert_for(&con, ns, &position).await),
        third
    );

    // Nothing changed: still a success, still the same version.
    let output = reload(by_config).await.assert_success();
    assert!(output.stdout.contains(&third), "prints {third}: {output}");
    assert_eq!(host.admin.handler("speed-alert").await.version, third);
    host.stop().await;
}
