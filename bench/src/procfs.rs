//! CPU time and memory of a process, read from Linux's `/proc`.
//!
//! The host runs as a child process precisely so these figures are its own: `/proc/PID/stat`
//! counts user + system time of all its threads, and `/proc/PID/status` has the resident set
//! now (`VmRSS`) and at its peak (`VmHWM`). Both must be read before the process is reaped.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context as _, bail};

/// CPU time (user + system, all threads) of process `pid` so far.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    parse_cpu_time(&read(&format!("/proc/{pid}/stat"))?, clock_ticks())
}

/// CPU time of this program so far.
pub fn own_cpu_time() -> anyhow::Result<Duration> {
    parse_cpu_time(&read("/proc/self/stat")?, clock_ticks())
}

/// Resident memory of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Resident set now, bytes.
    pub rss: u64,
    /// Highest resident set so far (the high-water mark), bytes.
    pub peak: u64,
}

/// Resident memory of process `pid`.
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    parse_memory(&read(&format!("/proc/{pid}/status"))?)
}

fn read(path: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {path}"))
}

/// Clock ticks per second of the `stat` times (`getconf CLK_TCK`; 100 on every usual Linux).
fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .filter(|&ticks| ticks > 0)
            .unwrap_or(100)
    })
}

/// utime + stime from the text of `/proc/PID/stat`. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted from the last `)`.
fn parse_cpu_time(stat: &str, ticks_per_sec: u64) -> anyhow::Result<Duration> {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        bail!("unexpected /proc stat format");
    };
    // After ")": state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| -> anyhow::Result<u64> {
        let text = fields.get(index).context("short /proc stat line")?;
        Ok(text.parse()?)
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_micros(total * 1_000_000 / ticks_per_sec))
}

fn parse_memory(status: &str) -> anyhow::Result<Memory> {
    let kib = |key: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .with_context(|| format!("no {key} in /proc status"))?;
        let number = line
            .trim_start_matches(':')
            .split_whitespace()
            .next()
            .unwrap_or_default();
        Ok(number.parse::<u64>()? * 1024)
    };
    Ok(Memory {
        rss: kib("VmRSS")?,
        peak: kib("VmHWM")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_counts_fields_after_the_command_name() {
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 2083 0 0 0 \
                    250 50 0 0 20 0 9 0 12345 1000 500 18446744073709551615";
        assert_eq!(
            parse_cpu_time(stat, 100).unwrap(),
            Duration::from_millis(3000)
        );
    }

    #[test]
    fn memory_reads_rss_and_high_water_mark() {
        let status = "Name:\twatchtower\nVmHWM:\t  61440 kB\nVmRSS:\t  40960 kB\n";
        let memory = parse_memory(status).unwrap();
        assert_eq!(memory.rss, 40 * 1024 * 1024);
        assert_eq!(memory.peak, 60 * 1024 * 1024);
    }

    #[test]
    fn this_process_can_be_read() {
        assert!(own_cpu_time().is_ok());
        assert!(memory(std::process::id()).unwrap().peak > 0);
    }
}
