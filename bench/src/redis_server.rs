//! A private `redis-server` for one benchmark run: a free loopback port, no persistence
//! (`--save ""`, `--appendonly no`), its files in a temporary directory, killed on drop.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client};
use tempfile::TempDir;

/// How long a command may take before it counts as failed; generous, because the machine
/// is saturated on purpose while figures are taken.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `redis-server` owned by this program.
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl RedisServer {
    /// Starts `binary` on a free port and waits until it answers `PING`.
    pub async fn start(binary: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("watchtower-bench-redis")
            .tempdir()?;
        let port = free_port()?;
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg(dir.path().join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "starting `{}` (install it: apt-get install redis-server)",
                    binary.display()
                )
            })?;
        let mut server = RedisServer { child, port, dir };
        server.wait_ready(Duration::from_secs(10)).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "redis-server exited at start ({status}); its log:\n{}",
                    self.log()
                );
            }
            if let Ok(mut conn) = self.connect().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "redis-server did not answer PING within {limit:?}; its log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's process id, for its CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new connection of its own (blocking reads must not share one).
    pub async fn connect(&self) -> anyhow::Result<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new().set_response_timeout(Some(RESPONSE_TIMEOUT));
        let conn = Client::open(self.url())?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(conn)
    }

    /// Where the server writes its log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // Nothing it holds is worth a graceful shutdown.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
///
/// The port is released before the caller binds it, so another process could take it in
/// between; on a benchmark machine that race is harmless.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
