//! The report as text: the machine, the table, then comparisons, goals and notes.

use std::fmt::Write as _;

use crate::report::{Report, Row, Sample, Status};

/// The report as text: the table, then the comparisons, goals and notes.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", report.machine.summary());
    if let Some(fill) = &report.fill {
        let _ = writeln!(
            out,
            "stream: {} position.updated entries, payload {:.0} B (entry {:.0} B), \
             {:.0}% over 90 km/h; filled at {} entries/s (pipelined XADD)",
            fill.events,
            fill.mean_payload_bytes,
            fill.mean_entry_bytes,
            crate::fill::SPEEDING_SHARE * 100.0,
            count(fill.xadd_per_sec)
        );
    }
    out.push('\n');
    out.push_str(&table(&report.rows));
    out.push('\n');
    if let Some(idle) = &report.idle {
        let _ = writeln!(
            out,
            "idle host (speed-alert, trip-tracker, chaos): RSS {:.1} MB \
             (peak {:.1} MB since start); spawn to every consumer joined: {:.2} s",
            idle.rss_mb, idle.peak_rss_mb, idle.ready_secs
        );
    }
    match &report.swap {
        Some(swap) => {
            let _ = writeln!(out, "{}", swap.summary());
        }
        None => {
            let _ = writeln!(out, "{}", crate::swap::NOT_MEASURED);
        }
    }
    match &report.python {
        Some(p) => {
            let _ = writeln!(
                out,
                "speed-alert warm, 1 process: {} events/s = {:.1}x original design \
                 (measured separately: 3.9-5.2k ev/s, median {})",
                count(p.watchtower_per_sec),
                p.times,
                count(p.python_per_sec)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "x original design: not measured (needs the warm speed-alert row)"
            );
        }
    }
    out.push_str("\ngoals (issue 5):\n");
    for goal in &report.goals {
        let verdict = match goal.met {
            Some(true) => "met   ",
            Some(false) => "MISSED",
            None => "n/a   ",
        };
        let measured = match (goal.measured, goal.unit) {
            (None, _) => "not measured".to_owned(),
            (Some(m), "events/s") => format!("{} events/s", count(m)),
            (Some(m), unit) => format!("{m:.1} {unit}"),
        };
        let _ = writeln!(out, "  {verdict} {:<60} {measured}", goal.goal);
    }
    let notes: Vec<String> = report.rows.iter().flat_map(row_notes).collect();
    if !notes.is_empty() {
        out.push_str("\nnotes:\n");
        for note in notes {
            let _ = writeln!(out, "  - {note}");
        }
    }
    let _ = writeln!(out, "\ntotal: {:.0} s", report.total_secs);
    out
}

fn row_notes(row: &Row) -> Vec<String> {
    let mut notes = Vec::new();
    match &row.status {
        Status::Measured => {}
        Status::Unsupported(reason) => notes.push(format!("{}: {reason}", row.scenario)),
        Status::Failed(error) => notes.push(format!("{}: failed: {error}", row.scenario)),
    }
    for (n, sample) in row.samples.iter().enumerate() {
        for note in &sample.notes {
            notes.push(format!("{} (run {}): {note}", row.scenario, n + 1));
        }
    }
    notes
}

const HEADER: [&str; 13] = [
    "scenario",
    "runs",
    "ev/s min",
    "ev/s median",
    "ev/s max",
    "× ceiling",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "host CPU µs/ev",
    "Redis CPU µs/ev",
    "× ceiling by CPU",
    "peak RSS MB",
];

/// The rows as an aligned text table (scenario left-aligned, figures right-aligned).
pub fn table(rows: &[Row]) -> String {
    let dash = || "-".to_owned();
    let opt = |v: Option<f64>, digits: usize| v.map_or_else(dash, |v| format!("{v:.digits$}"));
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut cells = vec![row.scenario.clone(), row.samples.len().to_string()];
            match (&row.status, row.events_per_sec) {
                (Status::Measured, Some(rate)) => {
                    cells.extend([count(rate.min), count(rate.median), count(rate.max)]);
                }
                (Status::Unsupported(_), _) => {
                    cells.extend([dash(), "unsupported".to_owned(), dash()]);
                }
                _ => cells.extend([dash(), "failed".to_owned(), dash()]),
            }
            cells.push(
                row.ratio_to_ceiling
                    .map_or_else(dash, |r| format!("{:.0}%", r * 100.0)),
            );
            let latency = row.latency.as_ref();
            cells.push(opt(latency.map(|l| l.p50_ms), 2));
            cells.push(opt(latency.map(|l| l.p99_ms), 2));
            cells.push(opt(latency.map(|l| l.p999_ms), 2));
            cells.push(opt(row.cpu_us_per_event, 2));
            cells.push(opt(row.redis_cpu_us_per_event, 2));
            cells.push(
                row.cpu_ratio_to_ceiling
                    .map_or_else(dash, |r| format!("{:.0}%", r * 100.0)),
            );
            cells.push(opt(row.peak_rss_mb, 1));
            cells
        })
        .collect();
    let mut widths: Vec<usize> = HEADER.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i == 0 {
                let _ = write!(text, "{cell:<width$}");
            } else {
                let _ = write!(text, "  {cell:>width$}");
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let header: Vec<String> = HEADER.iter().map(|h| (*h).to_owned()).collect();
    let mut out = line(&header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(&rule));
    for row in &cells {
        out.push_str(&line(row));
    }
    out
}

/// `1234567.8` as `1,234,568`.
pub fn count(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One run's result in a line.
pub fn describe(sample: &Sample) -> String {
    let mut line = format!(
        "{} ev/s ({} events in {:.2} s)",
        count(sample.events_per_sec),
        sample.events,
        sample.seconds
    );
    if let Some(cpu) = sample.cpu_us_per_event {
        line.push_str(&format!(", {cpu:.2} µs CPU/ev"));
    }
    if let Some(rss) = sample.peak_rss_mb {
        line.push_str(&format!(", peak RSS {rss:.1} MB"));
    }
    for note in &sample.notes {
        line.push_str(&format!(" [{note}]"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0.4), "0");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(1000.0), "1,000");
        assert_eq!(count(1_234_567.8), "1,234,568");
    }
}
