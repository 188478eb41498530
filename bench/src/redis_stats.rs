//! What a consumer asks of Redis per event: calls and server time per command, from
//! `INFO commandstats` between a `CONFIG RESETSTAT` and the end of a run.
//!
//! This is where batching shows (or does not): the ceiling makes one `XREADGROUP` and one
//! `XACK` per 500 events; a host that commits per event shows a command per event. Commands run
//! inside a script are counted both on their own and in the script's time. The benchmark's
//! own polling (`XINFO`) is left out.

use std::collections::BTreeMap;

use redis::aio::MultiplexedConnection;
use serde::Serialize;

/// One command's share of a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CommandCost {
    /// Calls per event.
    pub calls_per_event: f64,
    /// Server time per event, µs.
    pub usec_per_event: f64,
}

/// Zeroes the server's command statistics.
pub async fn reset(conn: &mut MultiplexedConnection) -> anyhow::Result<()> {
    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(conn)
        .await?;
    Ok(())
}

/// Command statistics since the last [`reset`], divided by `events`.
pub async fn per_event(
    conn: &mut MultiplexedConnection,
    events: u64,
) -> anyhow::Result<BTreeMap<String, CommandCost>> {
    let text: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await?;
    let events = events.max(1) as f64;
    Ok(parse(&text)
        .into_iter()
        .filter(|(name, _)| !is_own(name))
        .map(|(name, (calls, usec))| {
            let cost = CommandCost {
                calls_per_event: calls as f64 / events,
                usec_per_event: usec as f64 / events,
            };
            (name, cost)
        })
        .collect())
}

/// Commands the benchmark itself sends while a run is measured (polling and these
/// statistics), as opposed to the consumer's.
fn is_own(command: &str) -> bool {
    let base = command.split('|').next().unwrap_or(command);
    matches!(base, "xinfo" | "info" | "config")
}

/// `cmdstat_NAME:calls=N,usec=U,…` lines as NAME → (calls, usec).
fn parse(info: &str) -> BTreeMap<String, (u64, u64)> {
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |key: &str| {
                fields
                    .split(',')
                    .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            Some((name.to_owned(), (field("calls")?, field("usec")?)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_lines_are_parsed() {
        let info = "# Commandstats\r\n\
            cmdstat_xadd:calls=10,usec=130,usec_per_call=13.00,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_xinfo|groups:calls=1,usec=3,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n";
        let stats = parse(info);
        assert_eq!(stats.get("xadd"), Some(&(10, 130)));
        assert_eq!(stats.get("xinfo|groups"), Some(&(1, 3)));
        assert_eq!(stats.len(), 2);
        assert!(is_own("xinfo|groups") && is_own("config|resetstat"));
        assert!(!is_own("xreadgroup"));
    }
}
