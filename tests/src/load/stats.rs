//! Latency percentiles over a finished run.

use std::time::Duration;

/// Percentiles of a set of durations (nearest-rank).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest sample.
    pub max: Duration,
    /// Arithmetic mean.
    pub mean: Duration,
}

impl LatencySummary {
    /// Summarises `samples` (sorted in place). An empty set gives all zeros.
    pub fn from_samples(samples: &mut [Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let count = samples.len();
        let total: Duration = samples.iter().sum();
        Self {
            count,
            p50: percentile(samples, 50),
            p95: percentile(samples, 95),
            p99: percentile(samples, 99),
            max: samples[count - 1],
            // A run never holds more than u32::MAX samples; saturate rather than panic if it did.
            mean: total / u32::try_from(count).unwrap_or(u32::MAX),
        }
    }

    /// The summary as JSON, in milliseconds.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "count": self.count,
            "p50_ms": millis(self.p50),
            "p95_ms": millis(self.p95),
            "p99_ms": millis(self.p99),
            "max_ms": millis(self.max),
            "mean_ms": millis(self.mean),
        })
    }
}

/// Nearest-rank percentile of sorted, non-empty `samples`.
fn percentile(samples: &[Duration], percent: usize) -> Duration {
    let rank = (samples.len() * percent).div_ceil(100).max(1);
    samples[rank - 1]
}

/// Milliseconds with microsecond precision, for reports.
pub fn millis(duration: Duration) -> f64 {
    (duration.as_micros() as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let summary = LatencySummary::from_samples(&mut samples);
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50, Duration::from_millis(50));
        assert_eq!(summary.p95, Duration::from_millis(95));
        assert_eq!(summary.p99, Duration::from_millis(99));
        assert_eq!(summary.max, Duration::from_millis(100));
        let mut one = vec![Duration::from_millis(7)];
        assert_eq!(
            LatencySummary::from_samples(&mut one).p50,
            Duration::from_millis(7)
        );
        assert_eq!(LatencySummary::from_samples(&mut []).count, 0);
    }
}
