//! A handler that misbehaves on request, for testing how the host contains failures.
//!
//! Subscribe it to any event type. The string field `chaos` of the payload picks what it
//! does:
//!
//! | `data.chaos` | behaviour | what the host should make of it |
//! |---|---|---|
//! | `panic` | panics | a trap: retried, instance discarded |
//! | `loop` | spins forever | a timeout (epoch interruption): retried |
//! | `oom` | allocates and touches 1 MiB chunks without end | the memory cap: a trap, retried |
//! | `retry` | returns `HandleError::Retry` | retried with backoff |
//! | `reject` | returns `HandleError::Reject` | dead-lettered at once |
//! | `publish-then-panic` | publishes an `alert.triggered`, then panics | a trap; the alert is never committed |
//! | `retry-until` | returns `HandleError::Retry` until `event.attempt` reaches `data.succeed_at` (default 3), then counts like a normal event and sets kv `attempt:{event_id}` to the attempt | retried with backoff; shows the attempt number reaching the guest |
//! | `sandbox` | prints a line on stdout and one on stderr, then records what the sandbox lets it see: kv `sandbox:env` (variable `CHAOS_PROBE` or `unset`), `sandbox:args` (its arguments, space-separated), `sandbox:file` (contents of `/data/probe.txt` or `error`) | the grants of the handler's config, and guest output in the log |
//! | `slow` | busy-waits `data.ms` milliseconds (default 200), then counts like a normal event | a call still in flight, for shutdown and swap tests |
//!
//! Any other event (no `chaos` field, or another value) is handled normally and leaves
//! evidence in kv, so tests can count deliveries and commits:
//!
//! - `handled`: incremented by one per successful call (absent counts as 0);
//! - `seen:{event_id}`: its value plus one (absent counts as 0), so `1` after the first
//!   committed handling of an event and more if the same event was committed again.
//!
//! Both are read, incremented and written within one call; the host commits the writes only
//! if the call succeeds, so a count above what was published shows duplicated effects.

use std::hint::black_box;

use watchtower_guest::events::{AlertTriggered, Severity};
use watchtower_guest::{Event, HandleError, Handler, export_handler, kv, log, publish};

/// Size of one allocation in `oom` mode.
const CHUNK: usize = 1 << 20;

/// The failure-on-request handler.
struct Chaos;

impl Handler for Chaos {
    fn handle(event: Event) -> Result<(), HandleError> {
        let data = event.json()?;
        let mode = data
            .get("chaos")
            .and_then(|mode| mode.as_str())
            .unwrap_or("");
        match mode {
            "panic" => {
                log::warn("chaos: panicking as asked");
                panic!("chaos: asked to panic (event {})", event.event_id());
            }
            "loop" => {
                log::warn("chaos: spinning forever as asked");
                spin_forever()
            }
            "oom" => {
                log::warn("chaos: allocating without bound as asked");
                exhaust_memory()
            }
            "retry" => Err(HandleError::retry("chaos: asked to retry")),
            "reject" => Err(HandleError::reject("chaos: asked to reject")),
            "publish-then-panic" => {
                publish(&AlertTriggered {
                    alert_id: format!("chaos-{}", event.event_id()),
                    alert_type: "chaos".to_owned(),
                    severity: Severity::Info,
                    truck_id: None,
                    trip_id: None,
                    message: "published before a panic; must never be committed".to_owned(),
                })?;
                panic!(
                    "chaos: asked to panic after publishing (event {})",
                    event.event_id()
                );
            }
            "retry-until" => {
                let succeed_at = data.get("succeed_at").and_then(|n| n.as_u64()).unwrap_or(3);
                if u64::from(event.attempt()) < succeed_at {
                    return Err(HandleError::retry(format!(
                        "chaos: attempt {} of {succeed_at}",
                        event.attempt()
                    )));
                }
                kv::set(
                    &format!("attempt:{}", event.event_id()),
                    &event.attempt().to_string(),
                );
                count(&event)
            }
            "sandbox" => {
                println!("chaos: sandbox probe for {}", event.event_id());
                eprintln!("chaos: probing the sandbox");
                probe_sandbox();
                count(&event)
            }
            "slow" => {
                let ms = data.get("ms").and_then(|ms| ms.as_u64()).unwrap_or(200);
                busy_wait(std::time::Duration::from_millis(ms));
                count(&event)
            }
            _ => count(&event),
        }
    }
}

/// The normal path: bump `handled` and `seen:{event_id}`.
fn count(event: &Event) -> Result<(), HandleError> {
    increment("handled")?;
    increment(&format!("seen:{}", event.event_id()))?;
    Ok(())
}

/// Reads `key` as a counter (absent = 0), adds one and writes it back.
fn increment(key: &str) -> Result<u64, HandleError> {
    let current = match kv::get(key) {
        Some(text) => text.parse::<u64>().map_err(|err| {
            HandleError::reject(format!("kv {key} = {text:?} is not a counter: {err}"))
        })?,
        None => 0,
    };
    let next = current + 1;
    kv::set(key, &next.to_string());
    Ok(next)
}

/// Records what the sandbox grants: an environment variable, the arguments, a file.
fn probe_sandbox() {
    let env = std::env::var("CHAOS_PROBE").unwrap_or_else(|_| "unset".to_owned());
    kv::set("sandbox:env", &env);
    let args: Vec<String> = std::env::args().collect();
    kv::set("sandbox:args", &args.join(" "));
    let file = std::fs::read_to_string("/data/probe.txt").unwrap_or_else(|_| "error".to_owned());
    kv::set("sandbox:file", file.trim());
}

/// Spins for `duration` of wall-clock time (the guest's clock comes from the host).
fn busy_wait(duration: std::time::Duration) {
    let start = std::time::Instant::now();
    let mut counter: u64 = 0;
    while start.elapsed() < duration {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Never returns. `black_box` keeps the loop body opaque to the optimizer, so the loop stays
/// a real loop and only the host's deadline can end it.
fn spin_forever() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Never returns: allocates 1 MiB chunks, writes every byte and keeps them all, until the
/// host's memory limit (or the 4 GiB address space) makes an allocation fail, which aborts.
fn exhaust_memory() -> ! {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        let chunk = vec![0xA5_u8; CHUNK];
        kept.push(black_box(chunk));
    }
}

export_handler!(Chaos);
