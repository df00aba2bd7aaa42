//! The console's latency figures: exact percentiles over the window, from the durations of the
//! attempts themselves (each finished request's record), not interpolated inside histogram
//! buckets (a bucket from 1 s to 2.5 s would put the P50 of calls that all took 1.01 s at
//! 1.5 s). The Prometheus histograms stay what `/metrics` and `histogram_quantile` use.
//!
//! Kept only while the console is watched (the sampler runs), forgotten when it closes.
//! Bounded: per series (a target and provider, for attempt durations and for time to first
//! token) the newest [`MAX_SAMPLES`] of the last [`WINDOW`], at most [`MAX_SERIES`] series —
//! 8 bytes a sample, so at most 2 × 64 × 4 096 × 8 B = 4 MiB, whatever the traffic. Above
//! `MAX_SAMPLES` calls a minute to one target the figures cover its newest `MAX_SAMPLES`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::sampler::{TargetKey, WINDOW};
use crate::telemetry::{AttemptResult, RequestRecord};

/// Durations kept per series.
pub const MAX_SAMPLES: usize = 4096;
/// Series kept per kind (target labels are bounded by the config; this bounds the rest).
pub const MAX_SERIES: usize = 64;

/// One observation: when (tenths of a second since the store's epoch: 13 years fit) and how
/// long (µs, saturating at 71 minutes).
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: u32,
    micros: u32,
}

/// The samples of one kind, by target then provider (looked up without allocating).
#[derive(Default)]
struct Series {
    by_target: HashMap<String, Vec<(String, VecDeque<Sample>)>>,
    count: usize,
}

impl Series {
    fn push(&mut self, target: &str, provider: &str, sample: Sample, horizon: u32) {
        let known = self
            .by_target
            .get(target)
            .is_some_and(|l| l.iter().any(|(p, _)| p == provider));
        if !known {
            if self.count >= MAX_SERIES {
                return;
            }
            self.count += 1;
            let list = self.by_target.entry(target.to_string()).or_default();
            list.push((provider.to_string(), VecDeque::new()));
        }
        let Some(ring) = self.find(target, provider) else {
            return;
        };
        while ring
            .front()
            .is_some_and(|s| s.at < horizon || ring.len() >= MAX_SAMPLES)
        {
            ring.pop_front();
        }
        ring.push_back(sample);
    }

    fn find(&mut self, target: &str, provider: &str) -> Option<&mut VecDeque<Sample>> {
        self.by_target
            .get_mut(target)?
            .iter_mut()
            .find(|(p, _)| p == provider)
            .map(|(_, ring)| ring)
    }

    fn quantiles(&self, key: &TargetKey, horizon: u32) -> Option<Percentiles> {
        let (_, ring) = self
            .by_target
            .get(&key.0)?
            .iter()
            .find(|(p, _)| *p == key.1)?;
        let mut micros: Vec<u32> = ring
            .iter()
            .filter(|s| s.at >= horizon)
            .map(|s| s.micros)
            .collect();
        Percentiles::of(&mut micros)
    }
}

/// P50, P95 and P99 in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles (the smallest value with at least q of the samples at or below
    /// it: always an observed duration); `None` without samples.
    fn of(micros: &mut [u32]) -> Option<Percentiles> {
        if micros.is_empty() {
            return None;
        }
        micros.sort_unstable();
        let n = micros.len();
        let at = |q: f64| {
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            f64::from(micros[rank - 1]) / 1e6
        };
        Some(Percentiles {
            p50: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
        })
    }
}

/// Attempt durations and times to first token, per target, over the window.
pub struct Latencies {
    epoch: Instant,
    latency: Series,
    ttft: Series,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new(Instant::now())
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Latencies {
    pub fn new(epoch: Instant) -> Latencies {
        Latencies {
            epoch,
            latency: Series::default(),
            ttft: Series::default(),
        }
    }

    fn tenths(&self, at: Instant) -> u32 {
        u32::try_from(at.saturating_duration_since(self.epoch).as_millis() / 100)
            .unwrap_or(u32::MAX)
    }

    fn horizon(&self, now: Instant) -> u32 {
        self.tenths(now.checked_sub(WINDOW).unwrap_or(self.epoch))
    }

    /// Adds the attempts of a finished request: every attempt that ran (a target skipped for
    /// its open circuit, or a hedge dropped, has no duration of its own).
    pub fn record(&mut self, now: Instant, record: &RequestRecord) {
        let (at, horizon) = (self.tenths(now), self.horizon(now));
        for a in &record.attempts {
            if matches!(
                a.result,
                AttemptResult::CircuitOpen | AttemptResult::HedgeLost
            ) {
                continue;
            }
            let sample = |d| Sample {
                at,
                micros: micros(d),
            };
            self.latency
                .push(&a.target, &a.provider, sample(a.total), horizon);
            if let Some(first) = a.first_token {
                self.ttft
                    .push(&a.target, &a.provider, sample(first), horizon);
            }
        }
    }

    /// A target's attempt-duration percentiles over the window ending `now`.
    pub fn latency(&self, key: &TargetKey, now: Instant) -> Option<Percentiles> {
        self.latency.quantiles(key, self.horizon(now))
    }

    /// A target's time-to-first-token percentiles over the window ending `now`.
    pub fn ttft(&self, key: &TargetKey, now: Instant) -> Option<Percentiles> {
        self.ttft.quantiles(key, self.horizon(now))
    }

    /// Samples held, both kinds.
    pub fn held(&self) -> usize {
        let count = |s: &Series| -> usize {
            s.by_target
                .values()
                .flat_map(|l| l.iter().map(|(_, r)| r.len()))
                .sum()
        };
        count(&self.latency) + count(&self.ttft)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::AttemptRecord;

    fn attempt(target: &str, took_ms: u64, first_ms: Option<u64>) -> AttemptRecord {
        AttemptRecord {
            span_id: [0; 8],
            target: target.into(),
            provider: "p".into(),
            provider_kind: "openai",
            request_model: None,
            response_model: None,
            status: Some(200),
            result: AttemptResult::Ok,
            start: std::time::SystemTime::now(),
            connect: None,
            headers: None,
            first_token: first_ms.map(Duration::from_millis),
            total: Duration::from_millis(took_ms),
            usage: None,
        }
    }

    fn record(attempts: Vec<AttemptRecord>) -> RequestRecord {
        let mut r = crate::console::ring::tests::record(0, 0);
        r.attempts = attempts;
        r
    }

    fn key(target: &str) -> TargetKey {
        (target.to_string(), "p".to_string())
    }

    #[test]
    fn calls_that_all_took_the_same_time_have_that_time_as_every_percentile() {
        let t0 = Instant::now();
        let mut l = Latencies::new(t0);
        for i in 0..50 {
            l.record(
                t0 + Duration::from_millis(i * 100),
                &record(vec![attempt("t", 1010, Some(300))]),
            );
        }
        let now = t0 + Duration::from_secs(6);
        let p = l.latency(&key("t"), now).unwrap();
        assert_eq!((p.p50, p.p95, p.p99), (1.01, 1.01, 1.01));
        let f = l.ttft(&key("t"), now).unwrap();
        assert_eq!((f.p50, f.p95, f.p99), (0.3, 0.3, 0.3));
        assert!(l.latency(&key("other"), now).is_none());
    }

    #[test]
    fn percentiles_are_nearest_rank_over_the_window_only() {
        let t0 = Instant::now();
        let mut l = Latencies::new(t0);
        // An old outlier, then 1..=100 ms.
        l.record(t0, &record(vec![attempt("t", 20_000, None)]));
        let later = t0 + WINDOW + Duration::from_secs(1);
        for ms in 1..=100 {
            l.record(later, &record(vec![attempt("t", ms, None)]));
        }
        let p = l.latency(&key("t"), later).unwrap();
        assert_eq!((p.p50, p.p95, p.p99), (0.05, 0.095, 0.099));
        assert!(l.ttft(&key("t"), later).is_none(), "no stream, no TTFT");
        // Past the window nothing is left to report.
        assert!(l.latency(&key("t"), later + WINDOW * 2).is_none());
    }

    #[test]
    fn skipped_attempts_have_no_duration_and_memory_is_bounded() {
        let t0 = Instant::now();
        let mut l = Latencies::new(t0);
        let mut skipped = attempt("t", 0, None);
        skipped.result = AttemptResult::CircuitOpen;
        l.record(t0, &record(vec![skipped, attempt("t", 5, None)]));
        assert_eq!(l.latency(&key("t"), t0).unwrap().p50, 0.005);
        for i in 0..(MAX_SAMPLES * 2) {
            l.record(t0, &record(vec![attempt("t", 7, None)]));
            l.record(t0, &record(vec![attempt(&format!("x{i}"), 7, None)]));
        }
        assert!(l.held() <= MAX_SERIES * MAX_SAMPLES, "{}", l.held());
        assert_eq!(l.latency(&key("t"), t0).unwrap().p50, 0.007);
    }
}
