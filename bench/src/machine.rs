//! The machine the figures were taken on: cores, CPU model, memory, and the versions of
//! Redis and Rust, read from `/proc` and from the tools themselves.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

/// Where a run happened.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    /// Cores available to this program.
    pub cores: usize,
    /// `model name` of `/proc/cpuinfo`.
    pub cpu: String,
    /// `MemTotal` of `/proc/meminfo`, GiB.
    pub memory_gib: f64,
    /// `redis-server --version`.
    pub redis: String,
    /// `rustc --version`.
    pub rustc: String,
    /// Load average (1 min) when the run started: other work on the machine skews figures.
    pub load_at_start: Option<f64>,
}

impl Machine {
    /// Reads everything now.
    pub fn read(redis_server: &Path) -> Machine {
        let proc_file = |path| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = proc_file("/proc/cpuinfo");
        let meminfo = proc_file("/proc/meminfo");
        Machine {
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            cpu: field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".to_owned()),
            memory_gib: field(&meminfo, "MemTotal")
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / (1024.0 * 1024.0)),
            redis: version(redis_server.as_os_str(), "--version"),
            rustc: version("rustc".as_ref(), "--version"),
            load_at_start: proc_file("/proc/loadavg")
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok()),
        }
    }

    /// One line for the top of the report.
    pub fn summary(&self) -> String {
        let load = self
            .load_at_start
            .map_or_else(String::new, |l| format!(", load {l:.2} at start"));
        format!(
            "machine: {} cores, {}, {:.1} GiB RAM{load}; {}; {}",
            self.cores, self.cpu, self.memory_gib, self.redis, self.rustc
        )
    }
}

/// The value of the first `key: value` line of a `/proc` file.
fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name.trim() == key).then(|| value.trim().to_owned())
    })
}

/// The first line a tool prints for `flag`, or `unknown`.
fn version(program: &std::ffi::OsStr, flag: &str) -> String {
    Command::new(program)
        .arg(flag)
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_are_found_by_key() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\nflags\t: fpu\n";
        assert_eq!(
            field(cpuinfo, "model name").as_deref(),
            Some("Example CPU @ 2.0GHz")
        );
        assert_eq!(field(cpuinfo, "model"), None);
    }
}
