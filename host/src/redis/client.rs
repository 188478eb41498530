//! Connections. All are [`ConnectionManager`]s, which reconnect by themselves after a drop;
//! a blocking read gets a connection of its own because a blocked command holds up every
//! command queued behind it on the same connection.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisResult};

/// How long a non-blocking command may take before it counts as failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long establishing a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

fn config(response_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response_timeout))
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_secs(2))
}

/// A shared connection for commands that never block (commits, kv reads, admin queries).
pub async fn connect(url: &str) -> RedisResult<ConnectionManager> {
    let client = Client::open(url)?;
    client
        .get_connection_manager_with_config(config(RESPONSE_TIMEOUT))
        .await
}

/// A connection for one reader whose `XREADGROUP … BLOCK` waits up to `block`.
pub async fn connect_blocking(url: &str, block: Duration) -> RedisResult<ConnectionManager> {
    let client = Client::open(url)?;
    client
        .get_connection_manager_with_config(config(block + RESPONSE_TIMEOUT))
        .await
}
