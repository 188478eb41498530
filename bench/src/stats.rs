//! Summaries of repeated measurements: min / median / max over runs, percentiles of latencies.

use std::time::Duration;

use serde::Serialize;

/// The spread of one figure over several runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Lowest run.
    pub min: f64,
    /// Median run (the mean of the middle two for an even count).
    pub median: f64,
    /// Highest run.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`, or `None` when there are none (or one is not a number).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut sorted: Vec<f64> = values.into_iter().collect();
        if sorted.is_empty() || sorted.iter().any(|v| v.is_nan()) {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Spread {
            min: sorted[0],
            median,
            max: sorted[n - 1],
        })
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Samples behind the figures.
    pub samples: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest sample.
    pub max_ms: f64,
}

impl Percentiles {
    /// Percentiles of `samples` (sorted in place), or `None` when there are none.
    pub fn of(samples: &mut [Duration]) -> Option<Percentiles> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        Some(Percentiles {
            samples: samples.len(),
            p50_ms: ms(nearest_rank(samples, 0.50)),
            p99_ms: ms(nearest_rank(samples, 0.99)),
            p999_ms: ms(nearest_rank(samples, 0.999)),
            max_ms: ms(samples[samples.len() - 1]),
        })
    }
}

/// The nearest-rank percentile `q` (0..=1) of sorted, non-empty `sorted`: the smallest sample
/// with at least `q` of all samples at or below it.
fn nearest_rank(sorted: &[Duration], q: f64) -> Duration {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_odd_and_even_counts() {
        let odd = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.min, odd.median, odd.max), (1.0, 2.0, 3.0));
        let even = Spread::of([4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(even.median, 2.5);
        assert_eq!(Spread::of([]), None);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=1000).rev().map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut samples).unwrap();
        assert_eq!(p.samples, 1000);
        assert_eq!(p.p50_ms, 500.0);
        assert_eq!(p.p99_ms, 990.0);
        assert_eq!(p.p999_ms, 999.0);
        assert_eq!(p.max_ms, 1000.0);
        let mut one = vec![Duration::from_millis(7)];
        assert_eq!(Percentiles::of(&mut one).unwrap().p999_ms, 7.0);
    }
}
