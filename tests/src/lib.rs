//! The harness of Watchtower's end-to-end tests: real `redis-server` processes, real guest
//! components and a real host, driven from tests that wait on conditions instead of sleeping.
//!
//! # Running
//!
//! `just test` builds what the tests need and runs them. By hand:
//!
//! ```text
//! just guests                       # builds guest-examples/*.wasm
//! cargo build -p watchtower         # the `watchtower` binary the CLI tests run
//! cargo nextest run -p watchtower-tests    # or: cargo test -p watchtower-tests
//! ```
//!
//! The tests need `redis-server` (7.0 or newer) on `PATH`; each test starts its own on a free
//! loopback port with persistence off, so tests run in parallel and leave nothing behind. No
//! Docker, no shared Redis, no network beyond 127.0.0.1.
//!
//! # Writing a test
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn chaos_event_is_handled_once() {
//!     let redis = RedisServer::start().await;
//!     let mut con = redis.connection().await;
//!     let ns = "t_handled_once";
//!     let config = HostConfig::new(redis.url(), ns)
//!         .handler(HandlerConfig::new("chaos", guests::chaos(), ["chaos.test"]));
//!     let host = Host::start(&config).await;
//!
//!     let event = fixtures::chaos_ok(1);
//!     publish(&mut con, ns, &event).await;
//!     wait_for_field(&con, &kv_key(ns, "chaos"), &fixtures::seen_key(&event), "1").await;
//!
//!     host.stop().await.expect("host stops cleanly");
//! }
//! ```
//!
//! Rules the helpers carry: every wait is [`eventually`] with a deadline and says what it
//! waited for; every test uses its own server and namespace; a missing guest or binary fails
//! with the command that builds it.
//!
//! # Layout
//!
//! - [`redis_server`]: [`RedisServer`], one private `redis-server` per test (durable and
//!   restartable on request), and [`redis_server::OutageListener`] for while it is down.
//! - [`wait`]: [`eventually`], polling a condition until a deadline.
//! - [`guests`]: paths of the built example components, another build of one
//!   ([`guests::variant`]).
//! - [`config`]: [`HostConfig`] and [`HandlerConfig`], a `watchtower.toml` built key by key.
//! - [`host`]: [`Host`], a host running in-process from a [`HostConfig`] rendered to a
//!   temporary `watchtower.toml`.
//! - [`cli`]: running the `watchtower` binary ([`watchtower()`], [`RunningProcess`]), its
//!   JSON log.
//! - [`admin`]: the host's admin listener over HTTP: readiness, handler versions, reloads.
//! - [`ingest`]: the host's ingest listener over HTTP, and webhook signatures.
//! - [`browser`]: headless Chromium loading a page the host serves (skipped where absent).
//! - [`versions`]: deploying a new version of a component under a running host, version
//!   labels, and the host's log about swaps, refusals, rollbacks and its compile cache.
//! - [`streams`]: publishing in the wire format, reading entries back, handlers' kv state.
//! - [`groups`]: consumer groups: creating, reading without ack, pending entries, waits.
//! - [`dead_letters`]: dead-letter streams and the `error.occurred` events announcing them.
//! - [`fixtures`]: the events tests publish (positions, trips, `chaos` instructions) and
//!   checks of what `chaos` recorded.
//! - [`snapshot`]: everything a namespace holds in Redis, to show that something committed
//!   nothing.

// The harness is test code compiled as a library: a failed setup step has no caller to
// report to, so it panics with a message, as the tests themselves do.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test harness: failures panic with a message, like the tests that call it"
)]

pub mod admin;
pub mod browser;
pub mod cli;
pub mod config;
pub mod dead_letters;
pub mod fixtures;
pub mod groups;
pub mod guests;
pub mod host;
pub mod ingest;
pub mod redis_server;
pub mod snapshot;
pub mod streams;
pub mod versions;
pub mod wait;

pub use cli::CliOutput;
pub use cli::RunningProcess;
pub use cli::watchtower;
pub use config::HandlerConfig;
pub use config::HostConfig;
pub use host::Host;
pub use redis_server::RedisServer;
pub use streams::Event;
pub use streams::event_id;
pub use streams::publish;
pub use wait::PATIENCE;
pub use wait::eventually;

pub use watchtower_events::kv_key;
pub use watchtower_events::stream_key;
