//! Everything Watchtower asks of Redis: connections ([`client`]), consumer groups
//! ([`group`]), reading entries ([`reader`]), taking entries over ([`claim`]) and committing a handler's effects together
//! with the acknowledgement ([`commit`]).
//!
//! Commands used: `XGROUP CREATE … MKSTREAM`, `XREADGROUP` (own pending with an id, new
//! entries with `>`), `XPENDING` (delivery counts), `HGET` (kv reads), and one server-side
//! script per commit that runs `XACK`, `XADD` and `HSET`/`HDEL` atomically.

pub mod claim;
pub mod client;
pub mod commit;
pub mod dlq;
pub mod group;
pub mod reader;

pub use client::{connect, connect_blocking};
pub use commit::{CommitItem, Committer};
pub use group::ensure_group;
pub use reader::{ReadFrom, StreamEntry, read_group};
