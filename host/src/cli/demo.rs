//! `watchtower demo`: a private `redis-server`, the example handlers in an in-process host,
//! a short fleet scenario, and a readable account of what the handlers did.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use watchtower::publisher::{PublishOptions, publish};
use watchtower::redis::dlq;
use watchtower_events::{ALERT_TRIGGERED, ERROR_OCCURRED, kv_key, stream_key};

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder holding speed-alert.wasm, trip-tracker.wasm and chaos.wasm (built by `just guests`).
    #[arg(long, default_value = "guest-examples")]
    pub components: PathBuf,
    /// The redis-server executable.
    #[arg(long, default_value = "redis-server")]
    pub redis_server: PathBuf,
}

const NAMESPACE: &str = "watch_tower";

/// Runs the demo start to finish and tears everything down.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let components = components(&args.components)?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let (mut server, url) = start_redis(&args.redis_server, dir.path()).await?;
    println!("Watchtower demo");
    println!(
        "  private redis-server at {url} (data in {}, removed at the end)",
        dir.path().display()
    );

    let config_path = dir.path().join("watchtower.toml");
    std::fs::write(&config_path, config_text(&url, &components))?;
    let config = watchtower::config::Config::from_toml_str(
        &std::fs::read_to_string(&config_path)?,
        &config_path,
    )?;
    println!(
        "  handlers: speed-alert (position.updated), trip-tracker (trip.created, trip.status_changed),"
    );
    println!("            chaos (truck.status_changed)\n");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let host = tokio::spawn(watchtower::run(config, async move {
        let _ = stopped.await;
    }));

    let result = scenario(&url).await;
    let _ = stop.send(());
    let host_result = host.await.context("the host task failed")?;
    let _ = server.kill().await;
    result?;
    host_result
}

async fn scenario(url: &str) -> anyhow::Result<()> {
    let mut conn = watchtower::redis::connect(url).await?;

    println!("Publishing a fleet scenario:");
    let positions = [
        ("t-101", "T-101", 52.52, 13.40, 72.0),
        ("t-102", "T-102", 53.55, 9.99, 104.0),
        ("t-103", "T-103", 48.14, 11.58, 88.0),
        ("t-101", "T-101", 52.61, 13.21, 81.0),
        ("t-102", "T-102", 53.40, 10.20, 97.0),
        ("t-103", "T-103", 48.30, 11.90, 65.0),
    ];
    for (id, number, lat, lng, speed) in positions {
        let data =
            json!({"truck_id": id, "truck_number": number, "lat": lat, "lng": lng, "speed": speed});
        send(
            &mut conn,
            "position.updated",
            data,
            Some(format!("route-{id}")),
        )
        .await?;
        println!("  position.updated      {number} at {speed} km/h");
    }
    let trips = [
        ("trip-1001", "t-101", "Berlin", "Hamburg"),
        ("trip-1002", "t-103", "Munich", "Leipzig"),
    ];
    for (trip, truck, from, to) in trips {
        let data = json!({"trip_id": trip, "truck_id": truck, "origin": from, "destination": to,
                          "planned_departure": "2026-12-04T08:00:00Z"});
        send(&mut conn, "trip.created", data, Some(trip.to_owned())).await?;
        println!("  trip.created          {trip}: {from} -> {to}");
    }
    // Creations and status changes travel on different streams, handled independently; as
    // in a real fleet, a trip exists well before it starts moving.
    wait_until_settled(&mut conn, Some("trip.created"), 0, Duration::from_secs(60)).await?;
    let transitions = [
        ("trip-1001", "t-101", "planned", "in_progress"),
        ("trip-1002", "t-103", "planned", "in_progress"),
        ("trip-1001", "t-101", "in_progress", "completed"),
        ("trip-1001", "t-101", "completed", "in_progress"),
    ];
    for (trip, truck, old, new) in transitions {
        let data =
            json!({"trip_id": trip, "truck_id": truck, "old_status": old, "new_status": new});
        send(
            &mut conn,
            "trip.status_changed",
            data,
            Some(trip.to_owned()),
        )
        .await?;
        println!("  trip.status_changed   {trip}: {old} -> {new}");
    }
    let trucks = [
        ("t-101", "T-101", "idle", "driving", None),
        ("t-102", "T-102", "driving", "maintenance", Some("panic")),
        ("t-103", "T-103", "idle", "driving", None),
    ];
    for (id, number, old, new, chaos) in trucks {
        let mut data =
            json!({"truck_id": id, "truck_number": number, "old_status": old, "new_status": new});
        if let Some(mode) = chaos {
            data["chaos"] = json!(mode);
        }
        send(&mut conn, "truck.status_changed", data, None).await?;
        let note = if chaos.is_some() {
            "  (tells the chaos handler to panic)"
        } else {
            ""
        };
        println!("  truck.status_changed  {number}: {old} -> {new}{note}");
    }

    // Everything is delivered and acknowledged: the bad trip transition is rejected at once,
    // the chaos panic is retried three times; both end as dead letters.
    println!("\nWaiting for the handlers (the panicking event is retried 3 times with backoff)...");
    wait_until_settled(&mut conn, None, 0, Duration::from_secs(60)).await?;
    wait_for_dead_letters(&mut conn, 2, Duration::from_secs(60)).await?;

    println!("\nWhat the handlers did:");
    let alerts: Vec<(String, Vec<(String, String)>)> =
        xrange(&mut conn, &stream_key(NAMESPACE, ALERT_TRIGGERED)).await?;
    println!(
        "  speed-alert published {} alert(s) to {}:",
        alerts.len(),
        stream_key(NAMESPACE, ALERT_TRIGGERED)
    );
    for (_, fields) in &alerts {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let data: Value = serde_json::from_str(field("data")).unwrap_or(Value::Null);
        println!(
            "    [{}] {}: {}  (correlation_id {})",
            data["severity"].as_str().unwrap_or("?"),
            data["alert_type"].as_str().unwrap_or("?"),
            data["message"].as_str().unwrap_or("?"),
            field("correlation_id"),
        );
    }
    let trips: BTreeMap<String, String> = conn.hgetall(kv_key(NAMESPACE, "trip-tracker")).await?;
    println!(
        "  trip-tracker projection (HGETALL {}):",
        kv_key(NAMESPACE, "trip-tracker")
    );
    for (key, status) in &trips {
        println!("    {key} = {status}");
    }
    if trips.get("trip:trip-1001").map(String::as_str) == Some("completed") {
        println!("    (the late trip-1001 completed -> in_progress was rejected and not applied)");
    }
    let chaos: BTreeMap<String, String> = conn.hgetall(kv_key(NAMESPACE, "chaos")).await?;
    println!(
        "  chaos handled {} truck event(s); the one that panicked trapped in its sandbox each time,",
        chaos.get("handled").map_or("0", String::as_str)
    );
    println!("    left no effects, and the host and the other handlers carried on");

    println!("\nDead letters (as `watchtower dlq list` shows them):");
    for handler in ["trip-tracker", "chaos"] {
        for letter in dlq::list(&mut conn, NAMESPACE, handler, 10).await? {
            println!(
                "  {handler:<13} after {} attempt(s): {}",
                letter.attempts,
                first_line(&letter.reason)
            );
        }
    }
    let errors: Vec<(String, Vec<(String, String)>)> =
        xrange(&mut conn, &stream_key(NAMESPACE, ERROR_OCCURRED)).await?;
    println!(
        "  and {} error.occurred event(s) on {}\n",
        errors.len(),
        stream_key(NAMESPACE, ERROR_OCCURRED)
    );

    println!("Streams (as `watchtower status` shows them):");
    for stream in watchtower::status::collect(&mut conn, NAMESPACE).await? {
        for group in &stream.groups {
            println!(
                "  {:<42} length {:>2}  group {}  pending {}  lag {}",
                stream.stream,
                stream.length,
                group.name,
                group.pending,
                group.lag.map_or_else(|| "?".to_owned(), |l| l.to_string())
            );
        }
    }
    println!("\nDemo finished; redis-server stopped.");
    Ok(())
}

async fn send(
    conn: &mut ConnectionManager,
    event_type: &str,
    data: Value,
    correlation_id: Option<String>,
) -> anyhow::Result<()> {
    let options = PublishOptions {
        correlation_id,
        ..PublishOptions::default()
    };
    publish(conn, NAMESPACE, event_type, &data.to_string(), options).await?;
    Ok(())
}

async fn xrange(
    conn: &mut ConnectionManager,
    stream: &str,
) -> anyhow::Result<Vec<(String, Vec<(String, String)>)>> {
    Ok(redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await?)
}

/// Waits until every group (of the streams of `event_type`, or of all streams) has read
/// everything and exactly `pending` entries are left unacknowledged across those groups.
async fn wait_until_settled(
    conn: &mut ConnectionManager,
    event_type: Option<&str>,
    pending: u64,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let wanted = event_type.map(|t| stream_key(NAMESPACE, t));
    loop {
        let streams = watchtower::status::collect(conn, NAMESPACE).await?;
        let groups: Vec<_> = streams
            .iter()
            .filter(|s| wanted.as_deref().is_none_or(|w| w == s.stream))
            .flat_map(|s| s.groups.iter())
            .collect();
        let all_read = !groups.is_empty() && groups.iter().all(|g| g.lag == Some(0));
        let left: u64 = groups.iter().map(|g| g.pending).sum();
        if all_read && left == pending {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the handlers did not finish within {limit:?} ({left} entries pending)");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `count` dead letters exist across the demo's handlers.
async fn wait_for_dead_letters(
    conn: &mut ConnectionManager,
    count: usize,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let mut total = 0;
        for handler in ["speed-alert", "trip-tracker", "chaos"] {
            total += dlq::count(conn, NAMESPACE, handler).await?;
        }
        if total >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("expected {count} dead letters within {limit:?}, found {total}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn first_line(text: &str) -> &str {
    let line = text.lines().next().unwrap_or("");
    line.char_indices()
        .nth(140)
        .map_or(line, |(i, _)| &line[..i])
}

/// Paths of the three example components, with the command to build them if missing.
fn components(dir: &Path) -> anyhow::Result<[PathBuf; 3]> {
    let paths =
        ["speed-alert", "trip-tracker", "chaos"].map(|name| dir.join(format!("{name}.wasm")));
    for path in &paths {
        if !path.is_file() {
            bail!(
                "{} not found: build the example handlers with `just guests`",
                path.display()
            );
        }
    }
    Ok(paths)
}

fn config_text(url: &str, [speed, trips, chaos]: &[PathBuf; 3]) -> String {
    let abs = |p: &PathBuf| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.clone())
            .display()
            .to_string()
    };
    format!(
        r#"[redis]
url = "{url}"
namespace = "{NAMESPACE}"
[consumer]
name = "demo"
block_ms = 200

[[handler]]
name = "speed-alert"
component = "{speed}"
events = ["position.updated"]
[handler.config]
speed_limit_kmh = "90"

[[handler]]
name = "trip-tracker"
component = "{trips}"
events = ["trip.created", "trip.status_changed"]

[[handler]]
name = "chaos"
component = "{chaos}"
events = ["truck.status_changed"]
max_attempts = 3
retry_backoff_ms = 100
"#,
        speed = abs(speed),
        trips = abs(trips),
        chaos = abs(chaos),
    )
}

/// Starts `redis-server` on a free loopback port in `dir` and waits until it answers.
async fn start_redis(binary: &Path, dir: &Path) -> anyhow::Result<(Child, String)> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(binary)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (install it with `apt-get install redis-server`)",
                binary.display()
            )
        })?;
    let url = format!("redis://127.0.0.1:{port}");
    let client = redis::Client::open(url.as_str())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
            let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
            if pong.is_ok() {
                return Ok((child, url));
            }
        }
        if Instant::now() > deadline {
            bail!("redis-server did not answer on port {port} within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
