//! Watchtower end to end: real `redis-server` processes, real components, a real host.
//! One test binary for all topics (one link on a 2-core machine); see the harness docs in
//! `tests/src/lib.rs` for how to run it.

// Helpers shared by the tests of a file are test code too; clippy's in-test allowances only
// reach `#[test]` functions.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "end-to-end tests: a failed step panics with a message"
)]

mod cli;
mod container;
mod dead_letter;
mod dead_letter_cli;
mod delivery;
mod examples;
mod faults;
mod hot_swap;
mod ingest;
mod isolation;
mod metrics;
mod reclaim;
mod recovery;
mod replay;
mod retries;
mod sandbox;
mod shutdown;
mod status_page;
mod wire_format;
