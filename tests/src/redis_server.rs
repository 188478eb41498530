//! [`RedisServer`]: a private `redis-server` process for one test.
//!
//! Each test gets its own server on a free loopback port, with its log and working directory
//! in a temporary directory, so tests never share state and a failed test leaves no files
//! behind. The server dies with its handle; the log is quoted in every panic about the
//! server, because "connection refused" alone explains nothing.
//!
//! Persistence is off unless a test asks for a [durable](RedisServer::start_durable) server,
//! which writes an append-only file synced on every write and so survives
//! [`RedisServer::restart`] (a crash and a start on the same port) without losing anything it
//! acknowledged. While a server is down, an [`OutageListener`] can hold its port to count
//! how often clients try to come back.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a fresh server may take to answer `PING`.
const READY_DEADLINE: Duration = Duration::from_secs(10);

/// How long [`RedisServer::stop`] waits for a clean exit before killing.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// How many free ports to try: another process can take a port between our probe and the
/// server's bind.
const PORT_ATTEMPTS: usize = 5;

/// A running `redis-server` bound to 127.0.0.1 on a port of its own. Dropping it kills the
/// process.
pub struct RedisServer {
    /// `None` once the process has been stopped or killed.
    child: Option<Child>,
    port: u16,
    /// Holds the log file and the server's working directory (and, when durable, its
    /// append-only file); deleted on drop.
    dir: TempDir,
    /// Whether the server keeps an append-only file synced on every write.
    durable: bool,
}

impl RedisServer {
    /// Starts a server without persistence and returns once it answers `PING`.
    ///
    /// Panics (with the server's log) if `redis-server` is missing, exits, or does not become
    /// ready within ten seconds.
    pub async fn start() -> RedisServer {
        RedisServer::start_with(false).await
    }

    /// Starts a server that keeps an append-only file with `appendfsync always`: every write
    /// is on disk before it is acknowledged, so a crash ([`RedisServer::kill`]) followed by
    /// [`RedisServer::start_again`] loses nothing a client was told had happened.
    pub async fn start_durable() -> RedisServer {
        RedisServer::start_with(true).await
    }

    async fn start_with(durable: bool) -> RedisServer {
        let mut dir = tempfile::Builder::new()
            .prefix("watchtower-redis-")
            .tempdir()
            .expect("create a temporary directory for redis-server");
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let child = spawn(port, &dir, durable);
            let mut server = RedisServer {
                child: Some(child),
                port,
                dir,
                durable,
            };
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(Startup::PortTaken) => {
                    server.kill();
                    dir = server.take_dir();
                }
                Err(Startup::Failed(why)) => {
                    panic!(
                        "redis-server on port {port} did not start: {why}\n{}",
                        server.log_excerpt()
                    )
                }
            }
        }
        panic!("redis-server found no free port in {PORT_ATTEMPTS} attempts")
    }

    /// The server's TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:{port}`, the URL to put in a host's configuration.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A client for this server.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("a redis:// URL of 127.0.0.1 parses")
    }

    /// A new multiplexed connection to this server.
    ///
    /// Its response timeout is 10 s instead of redis-rs's 500 ms, so a large pipeline on a
    /// busy test machine is not mistaken for a dead server.
    pub async fn connection(&self) -> MultiplexedConnection {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(10)));
        match self
            .client()
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(con) => con,
            Err(err) => panic!("connect to {}: {err}\n{}", self.url(), self.log_excerpt()),
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_else(|err| format!("(no log: {err})"))
    }

    /// Stops the server the way an operator would (SIGTERM) and waits for it to exit; kills
    /// it if it takes longer than ten seconds. A durable server keeps its data for
    /// [`RedisServer::start_again`]; any other loses it.
    pub fn stop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run `kill`");
        assert!(
            status.success(),
            "`kill -TERM` of redis-server failed: {status}"
        );
        let give_up = std::time::Instant::now() + STOP_DEADLINE;
        while std::time::Instant::now() < give_up {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
    }

    /// Kills the server with SIGKILL, as a crash would, and reaps it. The port is free
    /// once this returns.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An error means the process has exited already, which is what we want.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again after [`RedisServer::kill`] or [`RedisServer::stop`], on the
    /// same port and in the same directory (so a durable server reloads its append-only
    /// file), and returns once it answers `PING`. Connections made before are dead; clients
    /// reconnect to the same URL.
    ///
    /// Panics if the server is still running or cannot get its port back.
    pub async fn start_again(&mut self) {
        assert!(
            self.child.is_none(),
            "start_again needs a stopped server; kill it first"
        );
        self.child = Some(spawn(self.port, &self.dir, self.durable));
        match self.wait_ready().await {
            Ok(()) => {}
            Err(Startup::PortTaken) => panic!(
                "redis-server could not get port {} back: it is taken\n{}",
                self.port,
                self.log_excerpt()
            ),
            Err(Startup::Failed(why)) => panic!(
                "redis-server on port {} did not start again: {why}\n{}",
                self.port,
                self.log_excerpt()
            ),
        }
    }

    /// Crashes the server (SIGKILL) and starts it again on the same port: a restart as a
    /// container runtime does it after an out-of-memory kill. Only a durable server keeps
    /// its data.
    pub async fn restart(&mut self) {
        self.kill();
        self.start_again().await;
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// The end of the log, framed for a panic message.
    fn log_excerpt(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "--- redis-server log ({}) ---\n{tail}\n--- end of log ---",
            self.log_path().display()
        )
    }

    async fn wait_ready(&mut self) -> Result<(), Startup> {
        let give_up = Instant::now() + READY_DEADLINE;
        let client = self.client();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)));
        let mut last_error = String::from("no attempt yet");
        while Instant::now() < give_up {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(if self.log().contains("Address already in use") {
                    Startup::PortTaken
                } else {
                    Startup::Failed(format!("exited with {status}"))
                });
            }
            match client
                .get_multiplexed_async_connection_with_config(&config)
                .await
            {
                Ok(mut con) => match redis::cmd("PING").query_async::<String>(&mut con).await {
                    Ok(pong) if pong == "PONG" => return Ok(()),
                    Ok(other) => last_error = format!("PING answered {other:?}"),
                    Err(err) => last_error = err.to_string(),
                },
                Err(err) => last_error = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(Startup::Failed(format!(
            "no PONG within {READY_DEADLINE:?} (last error: {last_error})"
        )))
    }

    /// Moves the temporary directory out of a server that failed to start, so the next
    /// attempt reuses it; the failed server is dropped without a directory to delete.
    fn take_dir(mut self) -> TempDir {
        let placeholder = tempfile::tempdir().expect("create a temporary directory");
        std::mem::replace(&mut self.dir, placeholder)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

/// Why a start attempt failed.
enum Startup {
    /// Another process bound the port first; try another.
    PortTaken,
    /// Anything else; the caller panics with this and the log.
    Failed(String),
}

fn spawn(port: u16, dir: &TempDir, durable: bool) -> Child {
    let log = dir.path().join("redis.log");
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""]);
    if durable {
        command
            .args(["--appendonly", "yes"])
            .args(["--appendfsync", "always"]);
    } else {
        command.args(["--appendonly", "no"]);
    }
    command
        .args(["--daemonize", "no"])
        .arg("--logfile")
        .arg(&log)
        .arg("--dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|err| panic!("start `redis-server` (is it installed and on PATH?): {err}"))
}

/// A loopback port nothing listens on at the moment of asking.
///
/// Ports come from below the kernel's ephemeral range (32768 and up by default), so an
/// outgoing connection of another test cannot take the port between this answer and the
/// server binding it. Each process starts at its own random point of the range and moves
/// on from there, so parallel test processes rarely try the same port.
pub fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let start = {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        std::process::id().wrapping_mul(2_654_435_761) ^ nanos
    };
    let _ = NEXT.compare_exchange(u32::MAX, start % COUNT, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..COUNT {
        let offset = NEXT.fetch_add(1, Ordering::SeqCst) % COUNT;
        let port = u16::try_from(FIRST + offset).expect("the range fits in a port number");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener
        .local_addr()
        .expect("a bound socket has an address")
        .port()
}

/// Holds the port of a server that is down, accepting every connection and closing it at
/// once, and counts the attempts: what a client that keeps trying to reconnect looks like
/// from the server's side. Redis itself would refuse the connection, which leaves no trace
/// a test can count.
pub struct OutageListener {
    attempts: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl OutageListener {
    /// Binds `127.0.0.1:port` (the port of a killed [`RedisServer`]).
    pub async fn bind(port: u16) -> OutageListener {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|err| panic!("hold port {port} during the outage: {err}"));
        let attempts = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&attempts);
        let task = tokio::spawn(async move {
            // The connection is dropped at once: the client sees the server hang up.
            while let Ok((_connection, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        OutageListener { attempts, task }
    }

    /// How many connections clients have opened so far.
    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }

    /// Stops listening and frees the port (once this returns, the server can bind it again).
    pub async fn close(self) {
        self.task.abort();
        // The task owns the listener: once it has ended, the socket is closed.
        let _ = self.task.await;
    }
}
