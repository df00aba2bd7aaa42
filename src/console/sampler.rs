//! Last-minute counts from the cumulative Prometheus counters (the same state `/metrics`
//! serves; no second bookkeeping). Each [`Sampler::push`] reads the counters once; a window is
//! the difference between two samples. Latency percentiles are not read here: interpolating
//! inside histogram buckets is what `histogram_quantile` must do across pods, but one console
//! has the durations themselves ([`super::latency`]).
//!
//! Two bounded rings: one sample a second for the last minute (counters and histograms; dropped
//! when the console closes), and per-config counters every ten seconds for ten minutes (the
//! sparklines; a few hundred bytes per config).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::proto::{Metric, MetricFamily};

use crate::telemetry::{AttemptResult, Metrics};

/// The live window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Sparkline resolution and length.
pub const SPARK_STEP: Duration = Duration::from_secs(10);
pub const SPARK_POINTS: usize = 60;

/// `(target, provider)`: how the console's latency figures are keyed (over all models).
pub type TargetKey = (String, String);
/// `(config, target, provider)`: how attempts are counted.
pub type AttemptKey = (String, String, String);

/// One config's request, fallback and retry counters.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ConfigCounts {
    pub requests: u64,
    pub fallback_ok: u64,
    pub errors: u64,
    pub fallbacks: u64,
    pub retries: u64,
}

impl ConfigCounts {
    fn minus(&self, o: &ConfigCounts) -> ConfigCounts {
        ConfigCounts {
            requests: self.requests.saturating_sub(o.requests),
            fallback_ok: self.fallback_ok.saturating_sub(o.fallback_ok),
            errors: self.errors.saturating_sub(o.errors),
            fallbacks: self.fallbacks.saturating_sub(o.fallbacks),
            retries: self.retries.saturating_sub(o.retries),
        }
    }
}

/// One target's attempts by result class.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct AttemptCounts {
    /// Calls made (skipped and dropped hedges excluded).
    pub calls: u64,
    pub ok: u64,
    /// Failures other than timeouts.
    pub errors: u64,
    pub timeouts: u64,
    /// Skipped because the circuit was open.
    pub skipped: u64,
}

impl AttemptCounts {
    fn minus(&self, o: &AttemptCounts) -> AttemptCounts {
        AttemptCounts {
            calls: self.calls.saturating_sub(o.calls),
            ok: self.ok.saturating_sub(o.ok),
            errors: self.errors.saturating_sub(o.errors),
            timeouts: self.timeouts.saturating_sub(o.timeouts),
            skipped: self.skipped.saturating_sub(o.skipped),
        }
    }
}

/// Every counter the console shows, cumulative, at one instant.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub configs: BTreeMap<String, ConfigCounts>,
    pub attempts: BTreeMap<AttemptKey, AttemptCounts>,
}

fn label<'a>(m: &'a Metric, name: &str) -> &'a str {
    m.get_label()
        .iter()
        .find(|l| l.name() == name)
        .map(|l| l.value())
        .unwrap_or("")
}

/// Adds every series of `family` to its config's field (`field` picks which).
fn add_per_config(
    configs: &mut BTreeMap<String, ConfigCounts>,
    family: Vec<MetricFamily>,
    field: fn(&mut ConfigCounts) -> &mut u64,
) {
    for m in family.iter().flat_map(|f| f.get_metric()) {
        *field(configs.entry(label(m, "config").to_string()).or_default()) += counter(m);
    }
}

fn counter(m: &Metric) -> u64 {
    m.get_counter().get_value() as u64
}

impl Counts {
    /// Reads the families once.
    pub fn read(metrics: &Metrics) -> Counts {
        let mut c = Counts::default();
        for m in metrics
            .requests_total
            .collect()
            .iter()
            .flat_map(|f| f.get_metric())
        {
            let e = c.configs.entry(label(m, "config").to_string()).or_default();
            let n = counter(m);
            e.requests += n;
            match label(m, "outcome") {
                "fallback_ok" => e.fallback_ok += n,
                "error" | "timeout" | "stream_aborted" => e.errors += n,
                _ => {}
            }
        }
        add_per_config(&mut c.configs, metrics.fallbacks_total.collect(), |e| {
            &mut e.fallbacks
        });
        add_per_config(&mut c.configs, metrics.retries_total.collect(), |e| {
            &mut e.retries
        });
        for m in metrics
            .upstream_attempts_total
            .collect()
            .iter()
            .flat_map(|f| f.get_metric())
        {
            let key = (
                label(m, "config").to_string(),
                label(m, "target").to_string(),
                label(m, "provider").to_string(),
            );
            let e = c.attempts.entry(key).or_default();
            let n = counter(m);
            match AttemptResult::from_label(label(m, "result")) {
                Some(AttemptResult::CircuitOpen) => e.skipped += n,
                Some(AttemptResult::HedgeLost) => {}
                Some(AttemptResult::Ok) => {
                    e.calls += n;
                    e.ok += n;
                }
                Some(r) if r.is_timeout() => {
                    e.calls += n;
                    e.timeouts += n;
                }
                _ => {
                    e.calls += n;
                    e.errors += n;
                }
            }
        }
        c
    }
}

/// What changed between two samples.
#[derive(Debug, Default, Clone)]
pub struct Window {
    /// Its length (0 when only one sample exists yet).
    pub span: Duration,
    pub configs: BTreeMap<String, ConfigCounts>,
    pub attempts: BTreeMap<AttemptKey, AttemptCounts>,
    /// The newest sample's cumulative attempt keys (targets ever called).
    pub seen: Vec<AttemptKey>,
}

/// One sparkline point: a config's fallback and retry rates over one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparkPoint {
    /// Seconds before now at which the step ended.
    pub ago_s: f64,
    pub fallback_rate: Option<f64>,
    pub retry_rate: Option<f64>,
}

/// The two rings.
#[derive(Default)]
pub struct Sampler {
    fine: VecDeque<(Instant, Arc<Counts>)>,
    coarse: VecDeque<(Instant, BTreeMap<String, ConfigCounts>)>,
}

impl Sampler {
    /// Adds a sample taken at `at`.
    pub fn push(&mut self, at: Instant, counts: Counts) {
        // The oldest sample kept is the one at least WINDOW old (the window's base).
        while self.fine.len() >= 2 && at.duration_since(self.fine[1].0) >= WINDOW {
            self.fine.pop_front();
        }
        if self
            .coarse
            .back()
            .is_none_or(|(t, _)| at.duration_since(*t) >= SPARK_STEP)
        {
            self.coarse.push_back((at, counts.configs.clone()));
            while self.coarse.len() > SPARK_POINTS + 1 {
                self.coarse.pop_front();
            }
        }
        self.fine.push_back((at, Arc::new(counts)));
    }

    /// Forgets the per-second samples (the console closed); the sparkline counters stay.
    pub fn clear_fine(&mut self) {
        self.fine = VecDeque::new();
    }

    /// Per-second samples held.
    pub fn held(&self) -> usize {
        self.fine.len()
    }

    /// The window from the oldest kept sample to the newest.
    pub fn window(&self) -> Window {
        let (Some((t1, newest)), Some((t0, base))) = (self.fine.back(), self.fine.front()) else {
            return Window::default();
        };
        let same = Arc::ptr_eq(newest, base);
        Window {
            span: t1.duration_since(*t0),
            configs: newest
                .configs
                .iter()
                .map(|(k, v)| {
                    let d = match base.configs.get(k) {
                        _ if same => ConfigCounts::default(),
                        Some(b) => v.minus(b),
                        None => *v,
                    };
                    (k.clone(), d)
                })
                .collect(),
            attempts: newest
                .attempts
                .iter()
                .map(|(k, v)| {
                    let d = match base.attempts.get(k) {
                        _ if same => AttemptCounts::default(),
                        Some(b) => v.minus(b),
                        None => *v,
                    };
                    (k.clone(), d)
                })
                .collect(),
            seen: newest.attempts.keys().cloned().collect(),
        }
    }

    /// A config's sparkline, oldest point first, over the last ten minutes.
    pub fn spark(&self, config: &str, now: Instant) -> Vec<SparkPoint> {
        let mut points = Vec::with_capacity(SPARK_POINTS);
        for pair in self.coarse.iter().collect::<Vec<_>>().windows(2) {
            let ((t0, c0), (t1, c1)) = (pair[0], pair[1]);
            // A gap (the console was closed) is not one step.
            if t1.duration_since(*t0) > SPARK_STEP + SPARK_STEP / 2 {
                continue;
            }
            let ago = now.saturating_duration_since(*t1);
            if ago > SPARK_STEP * SPARK_POINTS as u32 {
                continue;
            }
            let zero = ConfigCounts::default();
            let d = c1
                .get(config)
                .unwrap_or(&zero)
                .minus(c0.get(config).unwrap_or(&zero));
            let rate = |n: u64| (d.requests > 0).then(|| n as f64 / d.requests as f64);
            points.push(SparkPoint {
                ago_s: ago.as_secs_f64(),
                fallback_rate: rate(d.fallbacks),
                retry_rate: rate(d.retries),
            });
        }
        points
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::{FallbackLabels, RequestLabels, UpstreamAttemptLabels};

    #[test]
    fn a_window_is_the_difference_from_a_minute_ago() {
        let metrics = Metrics::new().unwrap();
        let mut s = Sampler::default();
        let t0 = Instant::now();
        s.push(t0, Counts::read(&metrics));
        assert_eq!(s.window().span, Duration::ZERO);
        for i in 1..=70u64 {
            metrics
                .upstream_attempts_total
                .with(&UpstreamAttemptLabels {
                    config: "chat",
                    target: "t",
                    provider: "p",
                    model: "m",
                    result: AttemptResult::Ok,
                })
                .inc();
            metrics
                .requests_total
                .with(&RequestLabels {
                    config: "chat",
                    status_class: "2xx",
                    outcome: "fallback_ok",
                })
                .inc();
            metrics
                .fallbacks_total
                .with(&FallbackLabels {
                    config: "chat",
                    from_target: "t0",
                    reason: AttemptResult::TimeoutHeaders,
                })
                .inc();
            s.push(t0 + Duration::from_secs(i), Counts::read(&metrics));
        }
        assert!(s.held() <= 62, "bounded: {}", s.held());
        let w = s.window();
        assert_eq!(w.span, WINDOW);
        assert_eq!(w.configs["chat"].requests, 60);
        assert_eq!(w.configs["chat"].fallbacks, 60);
        assert_eq!(
            w.attempts[&("chat".to_string(), "t".to_string(), "p".to_string())].calls,
            60
        );
        let spark = s.spark("chat", t0 + Duration::from_secs(70));
        assert!(spark.len() >= 6, "{spark:?}");
        assert!(spark.iter().all(|p| p.fallback_rate == Some(1.0)));
        assert!(spark.iter().all(|p| p.retry_rate == Some(0.0)));
        s.clear_fine();
        assert_eq!(s.held(), 0);
        assert_eq!(s.window().span, Duration::ZERO);
    }
}
