//! A fixed-size latency histogram (no allocation after creation), for load runs.
//!
//! Buckets are log-linear: 16 sub-buckets per power of two of microseconds, so a percentile is
//! reported with at most 1/16 (6.25 %) relative error, from 1 µs to about 67 s.

use std::time::Duration;

const SUB: usize = 16;
const POWERS: usize = 26;

/// Counts of latencies in log-linear buckets.
#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    buckets: Vec<u64>,
    count: u64,
    max_us: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: vec![0; SUB * POWERS],
            count: 0,
            max_us: 0,
        }
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record one latency.
    pub fn record(&mut self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        self.buckets[bucket_of(us)] += 1;
        self.count += 1;
        self.max_us = self.max_us.max(us);
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Largest recorded value in microseconds.
    pub fn max_us(&self) -> u64 {
        self.max_us
    }

    /// The value at quantile `q` (0..=1) in microseconds: the upper edge of its bucket.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return upper_edge(i).min(self.max_us);
            }
        }
        self.max_us
    }

    /// Add another histogram's counts.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.max_us = self.max_us.max(other.max_us);
    }
}

fn bucket_of(us: u64) -> usize {
    if us < SUB as u64 {
        return us as usize;
    }
    let power = 63 - us.leading_zeros() as usize; // ≥ 4
    let shift = power - 4;
    let sub = ((us >> shift) as usize) - SUB;
    ((power - 3) * SUB + sub).min(SUB * POWERS - 1)
}

fn upper_edge(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let power = i / SUB + 3;
    let sub = i % SUB;
    let shift = power - 4;
    (((SUB + sub + 1) as u64) << shift) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_bucket_error() {
        let mut h = LatencyHistogram::new();
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.count(), 10_000);
        for (q, exact) in [(0.5, 5_000.0), (0.99, 9_900.0), (0.999, 9_990.0)] {
            let got = h.quantile_us(q) as f64;
            assert!(
                got >= exact && got <= exact * 1.0625 + 1.0,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.quantile_us(1.0), 10_000);
        assert_eq!(LatencyHistogram::new().quantile_us(0.5), 0);
    }

    #[test]
    fn buckets_are_monotonic() {
        let mut last = 0;
        for us in [0u64, 1, 15, 16, 17, 31, 32, 33, 1000, 1_000_000, 60_000_000] {
            let b = bucket_of(us);
            assert!(b >= last);
            assert!(upper_edge(b) >= us, "{us}");
            last = b;
        }
    }
}
