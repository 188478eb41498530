//! Hot swap: a new version of a handler's component replaces the old one inside a running
//! host, triggered by `POST /admin/handlers/{name}/reload`, `watchtower reload NAME` or a
//! change of the file on disk, and observed the way an operator observes it: the
//! `handler_version` label on published events, `GET /admin/handlers`, and the host's log.
//!
//! Every test runs the `watchtower` binary with JSON logs against its own Redis, on a private
//! copy of each component (so it can change the file) and a private compile cache. Unless a
//! test is about the file watcher, watching is off and the test asks for the reload itself,
//! so the file it wrote and the reload it asked for cannot race.

mod cache;
mod canary;
mod command;
mod flow;
mod refusal;
mod rollback;
mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use watchtower_tests::admin::Admin;
use watchtower_tests::fixtures::position;
use watchtower_tests::streams::{Entry, entries};
use watchtower_tests::{
    Event, HostConfig, PATIENCE, RedisServer, RunningProcess, eventually, stream_key,
};

/// How long a host may take to exit after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// A `watchtower run` process with its admin listener answering.
struct Running {
    process: RunningProcess,
    admin: Admin,
    config: PathBuf,
}

impl Running {
    /// Writes `config` into `dir`, starts the binary on it and waits until `/readyz` says
    /// its consumers run.
    async fn start(config: &HostConfig, dir: &Path) -> Running {
        let path = config.write_to(dir);
        let mut process = RunningProcess::run_host(&path);
        let admin = Admin::of(config);
        admin.wait_ready(&mut process).await;
        Running {
            process,
            admin,
            config: path,
        }
    }

    /// Everything the host has logged so far.
    fn log(&self) -> String {
        self.process.stderr_so_far()
    }

    /// Stops the host with SIGTERM and checks that it exits with status 0.
    async fn stop(self) {
        self.process.terminate();
        let output = self.process.wait(STOP_DEADLINE).await;
        assert!(output.success(), "the host stops cleanly: {output}");
    }
}

/// A host on `redis` in namespace `ns` that reloads only on request, with its admin listener
/// on a free port and its compile cache in `dir`.
fn swap_config(redis: &RedisServer, ns: &str, dir: &Path) -> HostConfig {
    HostConfig::new(redis.url(), ns)
        .admin_on_free_port()
        .reload_watch(false)
        .cache_dir(dir.join("cache"))
}

/// A position of truck `n` at 120 km/h, above speed-alert's default limit.
fn speeding(n: u64) -> Event {
    position(n, 120.0)
}

/// The `alert.triggered` id speed-alert gives the alert of `position`.
fn alert_id(position: &Event) -> String {
    format!("speeding-{}", position.event_id)
}

/// The `alert_id` of an alert entry.
fn alert_id_of(alert: &Entry) -> String {
    alert
        .data()
        .get("alert_id")
        .and_then(|id| id.as_str())
        .unwrap_or_else(|| panic!("an alert without `alert_id`: {alert:?}"))
        .to_owned()
}

/// Waits for the alert speed-alert publishes for `position` and returns it.
async fn alert_for(con: &MultiplexedConnection, ns: &str, position: &Event) -> Entry {
    let id = alert_id(position);
    let alerts = stream_key(ns, "alert.triggered");
    eventually(PATIENCE, &format!("alert {id}"), || {
        let mut con = con.clone();
        let (alerts, id) = (alerts.clone(), id.clone());
        async move {
            let all = entries(&mut con, &alerts).await;
            let count = all.len();
            all.into_iter()
                .find(|alert| alert_id_of(alert) == id)
                .ok_or(format!("{count} other alerts"))
        }
    })
    .await
}
