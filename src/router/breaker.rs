//! Circuit breakers, one per target, that open on error rate **or slow-call rate** (gray
//! failure) over a sliding window once `min_calls` have been seen; an open target is skipped;
//! after `open_for` a bounded number of half-open probes decide. Breakers live outside the
//! config snapshot, keyed by config and target, so their state survives a reload for every
//! target that still exists. Each also keeps a decaying average of its latency for
//! `algorithm: least_latency`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::IntGaugeVec;

use crate::config::CircuitBreakerSettings;
use crate::telemetry::metrics::{CircuitLabel, Family};

/// `switchyard_circuit_state{target}`.
pub type CircuitGauge = Family<IntGaugeVec, CircuitLabel<'static>, 1>;

/// Weight of the newest sample in the latency average.
const LATENCY_EWMA_ALPHA: f64 = 0.3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    /// The `switchyard_circuit_state` value: 0 closed, 1 open, 2 half-open.
    pub fn code(self) -> i64 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
        }
    }
}

/// Whether a call may go to this target now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// A half-open probe: its result closes or re-opens the circuit.
    Probe,
    Rejected,
}

#[derive(Debug, Default, Clone, Copy)]
struct Bucket {
    second: u64,
    calls: u32,
    failures: u32,
    slow: u32,
}

#[derive(Debug)]
enum Phase {
    Closed,
    Open {
        since: Instant,
    },
    HalfOpen {
        probes_in_flight: u32,
        successes: u32,
    },
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    buckets: VecDeque<Bucket>,
    last_opened: Option<Instant>,
    latency_ewma: Option<f64>,
}

/// One target's breaker.
#[derive(Debug)]
pub struct Breaker {
    label: String,
    epoch: Instant,
    inner: Mutex<Inner>,
}

impl Breaker {
    fn new(label: &str) -> Self {
        Breaker {
            label: label.to_string(),
            epoch: Instant::now(),
            inner: Mutex::new(Inner {
                phase: Phase::Closed,
                buckets: VecDeque::new(),
                last_opened: None,
                latency_ewma: None,
            }),
        }
    }

    pub fn state(&self) -> CircuitState {
        match self.inner.lock().map(|i| match i.phase {
            Phase::Closed => CircuitState::Closed,
            Phase::Open { .. } => CircuitState::Open,
            Phase::HalfOpen { .. } => CircuitState::HalfOpen,
        }) {
            Ok(s) => s,
            Err(_) => CircuitState::Closed,
        }
    }

    /// The state now and, while open, how long until a half-open probe is let through (zero:
    /// the next call is the probe). For the console; changes nothing.
    pub fn status(&self, settings: &CircuitBreakerSettings) -> (CircuitState, Option<Duration>) {
        let Ok(inner) = self.inner.lock() else {
            return (CircuitState::Closed, None);
        };
        match inner.phase {
            Phase::Closed => (CircuitState::Closed, None),
            Phase::Open { since } => (
                CircuitState::Open,
                Some(settings.open_for.saturating_sub(since.elapsed())),
            ),
            Phase::HalfOpen { .. } => (CircuitState::HalfOpen, None),
        }
    }

    /// Whether `admit` would let a call through now (without reserving a probe).
    pub fn would_admit(&self, settings: &CircuitBreakerSettings) -> bool {
        if !settings.enabled {
            return true;
        }
        let Ok(inner) = self.inner.lock() else {
            return true;
        };
        match inner.phase {
            Phase::Closed => true,
            Phase::Open { since } => since.elapsed() >= settings.open_for,
            Phase::HalfOpen {
                probes_in_flight, ..
            } => probes_in_flight < settings.half_open_probes,
        }
    }

    /// Admits a call (reserving a half-open probe when it is one).
    pub fn admit(&self, settings: &CircuitBreakerSettings) -> Admission {
        if !settings.enabled {
            return Admission::Allowed;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return Admission::Allowed;
        };
        match inner.phase {
            Phase::Closed => Admission::Allowed,
            Phase::Open { since } if since.elapsed() >= settings.open_for => {
                inner.phase = Phase::HalfOpen {
                    probes_in_flight: 1,
                    successes: 0,
                };
                Admission::Probe
            }
            Phase::Open { .. } => Admission::Rejected,
            Phase::HalfOpen {
                ref mut probes_in_flight,
                ..
            } if *probes_in_flight < settings.half_open_probes => {
                *probes_in_flight += 1;
                Admission::Probe
            }
            Phase::HalfOpen { .. } => Admission::Rejected,
        }
    }

    /// Gives back a probe whose call never finished (its attempt was dropped, e.g. a hedge
    /// loser), so the half-open circuit can admit another.
    pub fn abandon(&self, admission: Admission) {
        if admission != Admission::Probe {
            return;
        }
        if let Ok(mut inner) = self.inner.lock() {
            if let Phase::HalfOpen {
                ref mut probes_in_flight,
                ..
            } = inner.phase
            {
                *probes_in_flight = probes_in_flight.saturating_sub(1);
            }
        }
    }

    /// When the circuit last opened (for "all open: try the least recently opened").
    pub fn last_opened(&self) -> Option<Instant> {
        self.inner.lock().ok().and_then(|i| i.last_opened)
    }

    /// The decaying average latency of successful calls, in seconds.
    pub fn latency(&self) -> Option<f64> {
        self.inner.lock().ok().and_then(|i| i.latency_ewma)
    }

    /// Records the result of an admitted call. `failed` means a fallback-able failure
    /// (timeouts included); `slow` is judged by the caller against the slow-call threshold.
    pub fn record(
        &self,
        settings: &CircuitBreakerSettings,
        admission: Admission,
        failed: bool,
        took: Duration,
        slow_threshold: Duration,
    ) {
        let slow = took >= slow_threshold;
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if !failed {
            let secs = took.as_secs_f64();
            inner.latency_ewma = Some(match inner.latency_ewma {
                Some(avg) => avg + LATENCY_EWMA_ALPHA * (secs - avg),
                None => secs,
            });
        }
        if !settings.enabled {
            return;
        }
        let now = Instant::now();
        if admission == Admission::Probe {
            if let Phase::HalfOpen {
                probes_in_flight,
                successes,
            } = inner.phase
            {
                if failed || slow {
                    inner.phase = Phase::Open { since: now };
                    inner.last_opened = Some(now);
                } else if successes + 1 >= settings.half_open_probes {
                    inner.phase = Phase::Closed;
                    inner.buckets.clear();
                } else {
                    inner.phase = Phase::HalfOpen {
                        probes_in_flight: probes_in_flight.saturating_sub(1),
                        successes: successes + 1,
                    };
                }
            }
            return;
        }
        if !matches!(inner.phase, Phase::Closed) {
            return;
        }
        let second = now.duration_since(self.epoch).as_secs();
        let window = settings.window.as_secs().max(1);
        while inner
            .buckets
            .front()
            .is_some_and(|b| b.second + window <= second)
        {
            inner.buckets.pop_front();
        }
        match inner.buckets.back_mut() {
            Some(b) if b.second == second => {
                b.calls += 1;
                b.failures += u32::from(failed);
                b.slow += u32::from(slow);
            }
            _ => inner.buckets.push_back(Bucket {
                second,
                calls: 1,
                failures: u32::from(failed),
                slow: u32::from(slow),
            }),
        }
        let (calls, failures, slows) = inner.buckets.iter().fold((0u32, 0u32, 0u32), |a, b| {
            (a.0 + b.calls, a.1 + b.failures, a.2 + b.slow)
        });
        if calls >= settings.min_calls {
            let failure_rate = f64::from(failures) / f64::from(calls);
            let slow_rate = f64::from(slows) / f64::from(calls);
            if failure_rate >= settings.failure_rate || slow_rate >= settings.slow_call_rate {
                inner.phase = Phase::Open { since: now };
                inner.last_opened = Some(now);
                inner.buckets.clear();
                tracing::warn!(target_label = %self.label, calls, failures, slow = slows, "circuit opened");
            }
        }
    }
}

/// Every breaker, by key (`<config>/<target path>`), with the state gauge. The file's configs
/// have a fixed set; inline configs (`inline:<content hash>/…`) are whatever clients send, so
/// theirs live in a bounded cache: the least recently used are dropped past
/// [`MAX_INLINE_BREAKERS`] or after an hour unused (a dropped breaker starts closed again).
pub struct Breakers {
    map: Mutex<HashMap<String, Arc<Breaker>>>,
    inline: moka::sync::Cache<String, Arc<Breaker>>,
    gauge: Option<CircuitGauge>,
}

/// Breakers of inline configs kept at most.
pub const MAX_INLINE_BREAKERS: u64 = 4096;
const INLINE_PREFIX: &str = "inline:";

impl Breakers {
    pub fn new(gauge: Option<CircuitGauge>) -> Self {
        Breakers {
            map: Mutex::new(HashMap::new()),
            inline: moka::sync::Cache::builder()
                .max_capacity(MAX_INLINE_BREAKERS)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            gauge,
        }
    }

    /// The breaker for `key`, created on first use.
    pub fn get(&self, key: &str, label: &str) -> Arc<Breaker> {
        if key.starts_with(INLINE_PREFIX) {
            return self
                .inline
                .get_with_by_ref(key, || Arc::new(Breaker::new(label)));
        }
        let Ok(mut map) = self.map.lock() else {
            return Arc::new(Breaker::new(label));
        };
        if let Some(b) = map.get(key) {
            return b.clone();
        }
        let b = Arc::new(Breaker::new(label));
        map.insert(key.to_string(), b.clone());
        b
    }

    /// The breaker for `key` if one exists (never creates one).
    pub fn peek(&self, key: &str) -> Option<Arc<Breaker>> {
        if key.starts_with(INLINE_PREFIX) {
            return self.inline.get(key);
        }
        self.map.lock().ok()?.get(key).cloned()
    }

    /// Publishes a breaker's state to `switchyard_circuit_state{target}`.
    pub fn publish(&self, breaker: &Breaker) {
        if let Some(g) = &self.gauge {
            g.with(&CircuitLabel {
                target: &breaker.label,
            })
            .set(breaker.state().code());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CircuitBreakerSettings {
        CircuitBreakerSettings {
            min_calls: 4,
            open_for: Duration::from_millis(50),
            ..Default::default()
        }
    }

    const SLOW: Duration = Duration::from_millis(100);

    #[test]
    fn opens_on_failure_rate_after_min_calls_and_probes_close_it() {
        let s = settings();
        let b = Breaker::new("t");
        for failed in [true, false, true] {
            assert_eq!(b.admit(&s), Admission::Allowed);
            b.record(&s, Admission::Allowed, failed, Duration::ZERO, SLOW);
        }
        assert_eq!(b.state(), CircuitState::Closed, "below min_calls");
        b.record(&s, Admission::Allowed, true, Duration::ZERO, SLOW);
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.admit(&s), Admission::Rejected);
        let (state, left) = b.status(&s);
        assert_eq!(state, CircuitState::Open);
        assert!(left.is_some_and(|d| d <= s.open_for));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.status(&s).1, Some(Duration::ZERO));
        assert_eq!(b.admit(&s), Admission::Probe);
        assert_eq!(b.status(&s), (CircuitState::HalfOpen, None));
        assert_eq!(b.admit(&s), Admission::Rejected, "one probe at a time");
        b.record(&s, Admission::Probe, false, Duration::ZERO, SLOW);
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[test]
    fn opens_on_slow_calls_alone_and_a_failed_probe_reopens() {
        let s = settings();
        let b = Breaker::new("t");
        for _ in 0..4 {
            b.record(
                &s,
                Admission::Allowed,
                false,
                Duration::from_millis(150),
                SLOW,
            );
        }
        assert_eq!(
            b.state(),
            CircuitState::Open,
            "gray failure: slow successes"
        );
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.admit(&s), Admission::Probe);
        b.record(&s, Admission::Probe, true, Duration::ZERO, SLOW);
        assert_eq!(b.state(), CircuitState::Open);
        assert!(b.last_opened().is_some());
    }

    #[test]
    fn an_abandoned_probe_frees_its_slot() {
        let s = settings();
        let b = Breaker::new("t");
        for _ in 0..4 {
            b.record(&s, Admission::Allowed, true, Duration::ZERO, SLOW);
        }
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.admit(&s), Admission::Probe);
        assert_eq!(b.admit(&s), Admission::Rejected);
        b.abandon(Admission::Probe);
        assert_eq!(b.admit(&s), Admission::Probe);
    }

    #[test]
    fn disabled_breakers_always_admit() {
        let s = CircuitBreakerSettings {
            enabled: false,
            ..settings()
        };
        let b = Breaker::new("t");
        for _ in 0..10 {
            b.record(&s, Admission::Allowed, true, Duration::ZERO, SLOW);
        }
        assert_eq!(b.admit(&s), Admission::Allowed);
        assert!(b.would_admit(&s));
    }
}
