//! The strategy engine: where a fallback happens. [`Router::run`] walks a config's target tree
//! — `single`, `fallback` (with hedging), `loadbalance` (weighted or least-latency),
//! `conditional` — retrying leaves on their `retry` codes, skipping targets whose circuit is
//! open, and stops at the first leaf whose response reached the commit point.
//!
//! It does no I/O itself: the proxy supplies [`Attempts`], which runs one upstream attempt up to
//! the commit point (nothing is written to the client before it), so any failure here can still
//! move on. Portkey semantics where Portkey defines them: fallback on any non-2xx unless
//! `on_status_codes` narrows it; a loadbalance group tries exactly one child; all failed → the
//! last failure.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::breaker::{Admission, Breaker, Breakers};
use super::condition::{self, Facts};
use super::retry::{self, RetryDecision};
use crate::config::{LbAlgorithm, Strategy, StrategyMode, Target, TargetKind};
use crate::telemetry::AttemptResult;
use crate::upstream::Phase;

/// Slow-call threshold when neither the breaker nor the target sets one.
const DEFAULT_SLOW_CALL: Duration = Duration::from_secs(10);

/// Why an attempt failed, as far as routing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The provider answered with this non-2xx status.
    Status(u16),
    Timeout(Phase),
    /// DNS, connect, TLS, or a reset before the response head.
    Connect,
    /// A stream that failed before its first content: an error event, no content at all, a
    /// reset or malformed framing.
    Stream,
    /// A conditional group matched no condition and has no default.
    NoRoute,
    /// The answer failed an output guardrail that denies it; `fallback` (`on_fail: fallback`,
    /// or Portkey's and the tutorial's spellings) lets the next target try; `retry` (`action:
    /// retry`) asks the same target again first.
    Guardrail {
        fallback: bool,
        retry: bool,
    },
}

impl FailureKind {
    /// How an attempt that failed this way ended (the `result` of
    /// `switchyard_upstream_attempts_total`, the `reason` of `switchyard_fallbacks_total`).
    pub fn result(self) -> AttemptResult {
        match self {
            FailureKind::Status(429) => AttemptResult::Status429,
            FailureKind::Status(s) if (400..500).contains(&s) => AttemptResult::Status4xx,
            FailureKind::Status(_) => AttemptResult::Status5xx,
            FailureKind::Timeout(Phase::Connect) => AttemptResult::TimeoutConnect,
            FailureKind::Timeout(Phase::Headers) => AttemptResult::TimeoutHeaders,
            FailureKind::Timeout(Phase::FirstChunk) => AttemptResult::TimeoutTtft,
            FailureKind::Timeout(Phase::Idle) => AttemptResult::TimeoutIdle,
            FailureKind::Timeout(Phase::Total) => AttemptResult::TimeoutTotal,
            FailureKind::Connect => AttemptResult::ConnectError,
            FailureKind::Stream => AttemptResult::StreamError,
            FailureKind::NoRoute => AttemptResult::NoRoute,
            FailureKind::Guardrail { .. } => AttemptResult::GuardrailFailed,
        }
    }

    /// The label of [`FailureKind::result`].
    pub fn label(self) -> &'static str {
        self.result().as_str()
    }

    /// Whether it counts against the target's circuit (a client's 400 does not).
    fn is_target_failure(self) -> bool {
        match self {
            FailureKind::Status(s) => s == 429 || s >= 500,
            FailureKind::NoRoute | FailureKind::Guardrail { .. } => false,
            _ => true,
        }
    }
}

/// A failed attempt: its kind, the provider's `Retry-After`, and what the client gets if
/// nothing else succeeds.
#[derive(Debug)]
pub struct Failure<D> {
    pub kind: FailureKind,
    pub retry_after: Option<Duration>,
    pub detail: D,
    /// Retries made on the failing leaf before giving up.
    pub retries: u32,
}

/// One upstream attempt, supplied by the proxy; plus what to count along the way.
#[async_trait]
pub trait Attempts: Sync {
    /// A response that reached the commit point (nothing written to the client yet).
    type Ready: Send;
    /// What the client gets if this is the last failure.
    type Detail: Send;

    async fn attempt(&self, leaf: &Target) -> Result<Self::Ready, Failure<Self::Detail>>;
    /// The reply for a conditional group that routes nowhere.
    fn no_route(&self) -> Self::Detail;
    /// Counted when a target's failure moves the request on to the next one.
    fn fell_back(&self, from: &Target, kind: FailureKind);
    /// Counted before each retry.
    fn retried(&self, leaf: &Target, kind: FailureKind);
    /// Counted for each leaf skipped because its circuit is open.
    fn skipped_open(&self, leaf: &Target);
    /// Counted when a hedged attempt loses the race and is dropped.
    fn hedge_lost(&self, leaf: &Target);
}

/// The leaf that answered.
pub struct Won<'t, R> {
    pub ready: R,
    pub leaf: &'t Target,
    /// Retries on that leaf before it answered.
    pub retries: u32,
    /// Whether an earlier target failed first (outcome `fallback_ok`).
    pub fell_back: bool,
}

type NodeFuture<'s, 't, A> = Pin<
    Box<
        dyn Future<
                Output = Result<Won<'t, <A as Attempts>::Ready>, Failure<<A as Attempts>::Detail>>,
            > + Send
            + 's,
    >,
>;

/// Runs one request's strategy tree.
pub struct Router<'a, A: Attempts> {
    pub attempts: &'a A,
    pub breakers: &'a Breakers,
    pub facts: Facts<'a>,
}

impl<A: Attempts> Router<'_, A> {
    pub async fn run<'t>(&self, root: &'t Target) -> Result<Won<'t, A::Ready>, Failure<A::Detail>> {
        self.node(root, true).await
    }

    /// The breaker of a leaf.
    fn breaker(&self, leaf: &Target) -> Arc<Breaker> {
        self.breakers.get(&leaf.breaker_key, leaf.label())
    }

    /// Whether any leaf under `node` would be admitted by its breaker now.
    fn available(&self, node: &Target) -> bool {
        match &node.kind {
            TargetKind::Leaf { .. } => self
                .breaker(node)
                .would_admit(&node.settings.circuit_breaker),
            TargetKind::Group { targets, .. } => targets.iter().any(|t| self.available(t)),
        }
    }

    /// When the most recently opened circuit under `node` opened (`None`: never).
    fn opened_at(&self, node: &Target) -> Option<Instant> {
        match &node.kind {
            TargetKind::Leaf { .. } => self.breaker(node).last_opened(),
            TargetKind::Group { targets, .. } => {
                targets.iter().filter_map(|t| self.opened_at(t)).max()
            }
        }
    }

    /// With every child open: the one whose circuit opened longest ago.
    fn least_recently_opened<'t>(
        &self,
        targets: impl IntoIterator<Item = &'t Target>,
    ) -> Option<&'t Target> {
        targets.into_iter().min_by_key(|t| self.opened_at(t))
    }

    fn node<'s, 't: 's>(&'s self, node: &'t Target, forced: bool) -> NodeFuture<'s, 't, A> {
        Box::pin(async move {
            match &node.kind {
                TargetKind::Leaf { .. } => self.leaf(node, forced).await,
                TargetKind::Group { strategy, targets } => match strategy.mode {
                    StrategyMode::Single => match targets.first() {
                        Some(t) => self.node(t, forced).await,
                        None => Err(self.no_route()),
                    },
                    StrategyMode::Fallback => self.fallback(strategy, targets).await,
                    StrategyMode::LoadBalance => match self.pick_balanced(strategy, targets) {
                        Some((t, forced)) => self.node(t, forced).await,
                        None => Err(self.no_route()),
                    },
                    StrategyMode::Conditional => {
                        let chosen = condition::choose(
                            &strategy.conditions,
                            strategy.default_target,
                            &self.facts,
                        )
                        .and_then(|i| targets.get(i));
                        match chosen {
                            Some(t) => self.node(t, forced).await,
                            None => Err(self.no_route()),
                        }
                    }
                },
            }
        })
    }

    fn no_route(&self) -> Failure<A::Detail> {
        Failure {
            kind: FailureKind::NoRoute,
            retry_after: None,
            detail: self.attempts.no_route(),
            retries: 0,
        }
    }

    /// One leaf: breaker admission, then the attempt and its retries.
    async fn leaf<'t>(
        &self,
        leaf: &'t Target,
        forced: bool,
    ) -> Result<Won<'t, A::Ready>, Failure<A::Detail>> {
        let settings = &leaf.settings;
        let breaker = self.breaker(leaf);
        let slow_threshold = settings
            .circuit_breaker
            .slow_call
            .or(settings.request_timeout)
            .unwrap_or(DEFAULT_SLOW_CALL);
        let mut retries = 0;
        loop {
            let admission = match breaker.admit(&settings.circuit_breaker) {
                // Every target is open and this one opened longest ago: try it anyway.
                Admission::Rejected if forced => Admission::Allowed,
                a => a,
            };
            let started = Instant::now();
            // If this future is dropped mid-attempt (a hedge loser), the probe slot comes back.
            let mut probe = ProbeGuard {
                breaker: &breaker,
                admission,
                armed: true,
            };
            let result = self.attempts.attempt(leaf).await;
            probe.armed = false;
            drop(probe);
            let took = started.elapsed();
            let failed_kind = result.as_ref().err().map(|f| f.kind);
            breaker.record(
                &settings.circuit_breaker,
                admission,
                failed_kind.is_some_and(FailureKind::is_target_failure),
                took,
                slow_threshold,
            );
            self.breakers.publish(&breaker);
            let mut failure = match result {
                Ok(ready) => {
                    return Ok(Won {
                        ready,
                        leaf,
                        retries,
                        fell_back: false,
                    })
                }
                Err(f) => f,
            };
            failure.retries = retries;
            let codes = &settings.retry.on_status_codes;
            let mut budget = settings.retry.attempts;
            let retryable = match failure.kind {
                FailureKind::Status(s) => codes.contains(&s),
                // A timeout is answered 408: retried when 408 is listed (Portkey).
                FailureKind::Timeout(_) => codes.contains(&408),
                // `action: retry`: the target's retry attempts, at least one.
                FailureKind::Guardrail { retry: true, .. } => {
                    budget = budget.max(1);
                    true
                }
                _ => false,
            };
            if !retryable {
                return Err(failure);
            }
            match retry::decide(
                retries,
                budget,
                failure.retry_after,
                settings.retry.use_retry_after,
            ) {
                RetryDecision::GiveUp => return Err(failure),
                RetryDecision::WaitThenRetry(wait) => {
                    self.attempts.retried(leaf, failure.kind);
                    tokio::time::sleep(wait).await;
                    retries += 1;
                }
            }
        }
    }

    /// Portkey: move on for any non-2xx unless `on_status_codes` narrows it; (+) always on a
    /// timeout, connect failure or a stream that failed before its commit point.
    fn falls_back(strategy: &Strategy, kind: FailureKind) -> bool {
        match kind {
            FailureKind::Status(s) => strategy
                .on_status_codes
                .as_ref()
                .is_none_or(|codes| codes.contains(&s)),
            FailureKind::NoRoute => false,
            FailureKind::Guardrail { fallback, .. } => fallback,
            _ => true,
        }
    }

    async fn fallback<'t>(
        &self,
        strategy: &Strategy,
        targets: &'t [Target],
    ) -> Result<Won<'t, A::Ready>, Failure<A::Detail>> {
        let open: Vec<bool> = targets.iter().map(|t| !self.available(t)).collect();
        if open.iter().all(|o| *o) {
            for t in targets {
                self.count_skipped(t);
            }
            return match self.least_recently_opened(targets) {
                Some(t) => self.node(t, true).await,
                None => Err(self.no_route()),
            };
        }
        let candidates: Vec<&'t Target> = targets
            .iter()
            .zip(&open)
            .filter_map(|(t, open)| {
                if *open {
                    self.count_skipped(t);
                    None
                } else {
                    Some(t)
                }
            })
            .collect();
        let mut last: Option<Failure<A::Detail>> = None;
        let mut i = 0;
        while i < candidates.len() {
            let current = candidates[i];
            let next = candidates.get(i + 1).copied();
            let (result, consumed) = match (strategy.hedge_after, next) {
                (Some(after), Some(next)) => self.hedged(current, next, after).await,
                _ => (self.node(current, false).await, 1),
            };
            match result {
                Ok(mut won) => {
                    // Served by a later target: an earlier one failed, or was skipped as open.
                    won.fell_back |= last.is_some() || open.first().copied().unwrap_or(false);
                    return Ok(won);
                }
                Err(failure) => {
                    let more = i + consumed < candidates.len();
                    if !(more && Self::falls_back(strategy, failure.kind)) {
                        return Err(failure);
                    }
                    self.attempts
                        .fell_back(candidates[i + consumed - 1], failure.kind);
                    last = Some(failure);
                    i += consumed;
                }
            }
        }
        Err(last.unwrap_or_else(|| self.no_route()))
    }

    /// Runs `first`; if it has not reached the commit point after `after`, starts `second` too.
    /// The first to commit wins and the other is dropped. Returns how many candidates it used.
    async fn hedged<'t>(
        &self,
        first: &'t Target,
        second: &'t Target,
        after: Duration,
    ) -> (Result<Won<'t, A::Ready>, Failure<A::Detail>>, usize) {
        let mut a = self.node(first, false);
        let early = tokio::select! {
            r = &mut a => Some(r),
            _ = tokio::time::sleep(after) => None,
        };
        if let Some(result) = early {
            return (result, 1);
        }
        let mut b = self.node(second, false);
        tokio::select! {
            ra = &mut a => match ra {
                Ok(won) => {
                    drop(b);
                    self.attempts.hedge_lost(second);
                    (Ok(won), 2)
                }
                Err(_) => (b.await.map(|mut w| { w.fell_back = true; w }), 2),
            },
            rb = &mut b => match rb {
                Ok(mut won) => {
                    drop(a);
                    self.attempts.hedge_lost(first);
                    won.fell_back = true;
                    (Ok(won), 2)
                }
                Err(_) => (a.await, 2),
            },
        }
    }

    /// The child a loadbalance group tries (exactly one, as Portkey), and whether it is forced
    /// because every child is open.
    fn pick_balanced<'t>(
        &self,
        strategy: &Strategy,
        targets: &'t [Target],
    ) -> Option<(&'t Target, bool)> {
        // A drained target (`weight: 0`) is never picked.
        let serving = || targets.iter().filter(|t| t.weight > 0.0);
        let open: Vec<&'t Target> = serving().filter(|t| self.available(t)).collect();
        if open.is_empty() {
            for t in serving() {
                self.count_skipped(t);
            }
            return self.least_recently_opened(serving()).map(|t| (t, true));
        }
        let picked = match strategy.algorithm {
            LbAlgorithm::WeightedRandom => pick_weighted(&open, rand::random::<f64>()),
            LbAlgorithm::LeastLatency => open
                .iter()
                .min_by(|x, y| {
                    // Unmeasured targets first, so each gets measured.
                    let lx = self.latency(x).unwrap_or(0.0);
                    let ly = self.latency(y).unwrap_or(0.0);
                    lx.total_cmp(&ly)
                })
                .copied(),
        };
        picked.map(|t| (t, false))
    }

    fn latency(&self, node: &Target) -> Option<f64> {
        match &node.kind {
            TargetKind::Leaf { .. } => self.breaker(node).latency(),
            TargetKind::Group { targets, .. } => targets
                .iter()
                .filter_map(|t| self.latency(t))
                .min_by(f64::total_cmp),
        }
    }

    fn count_skipped(&self, node: &Target) {
        match &node.kind {
            TargetKind::Leaf { .. } => self.attempts.skipped_open(node),
            TargetKind::Group { targets, .. } => {
                for t in targets {
                    self.count_skipped(t)
                }
            }
        }
    }
}

/// Releases a half-open probe whose attempt was dropped before it could be recorded.
struct ProbeGuard<'a> {
    breaker: &'a super::breaker::Breaker,
    admission: Admission,
    /// Cleared once the attempt finished and its result is recorded.
    armed: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.breaker.abandon(self.admission);
        }
    }
}

/// Weighted choice: `unit_sample` uniform in `[0, 1)`.
pub fn pick_weighted<'t>(targets: &[&'t Target], unit_sample: f64) -> Option<&'t Target> {
    let total: f64 = targets.iter().map(|t| t.weight).sum();
    if total.is_nan() || total <= 0.0 {
        return targets.first().copied();
    }
    let mut point = unit_sample.clamp(0.0, 1.0) * total;
    for t in targets {
        if point < t.weight {
            return Some(t);
        }
        point -= t.weight;
    }
    targets.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use std::sync::Mutex;

    /// A fake upstream: leaves whose label is in `failing` fail with 503; records every call.
    struct Fake {
        failing: Vec<&'static str>,
        calls: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Attempts for Fake {
        type Ready = String;
        type Detail = ();
        async fn attempt(&self, leaf: &Target) -> Result<String, Failure<()>> {
            self.calls.lock().unwrap().push(leaf.label().to_string());
            if self.failing.contains(&leaf.label()) {
                Err(Failure {
                    kind: FailureKind::Status(503),
                    retry_after: None,
                    detail: (),
                    retries: 0,
                })
            } else {
                Ok(leaf.label().to_string())
            }
        }
        fn no_route(&self) {}
        fn fell_back(&self, _: &Target, _: FailureKind) {}
        fn retried(&self, _: &Target, _: FailureKind) {}
        fn skipped_open(&self, _: &Target) {}
        fn hedge_lost(&self, _: &Target) {}
    }

    fn snapshot(config: &str) -> crate::config::Snapshot {
        let text = format!(
            "providers:\n  p: {{ kind: openai-compatible, base_url: \"http://127.0.0.1:1/v1\" }}\nvirtual_keys:\n  vk: {{ provider: p }}\nconfigs:\n  c:\n{config}"
        );
        load_str(&text, None).unwrap()
    }

    /// Fails `target` until its circuit opens (fresh breakers: the window holds only these).
    fn open_circuit(breakers: &Breakers, target: &Target) -> Arc<super::super::breaker::Breaker> {
        let breaker = breakers.get(&target.breaker_key, target.label());
        for _ in 0..target.settings.circuit_breaker.min_calls {
            breaker.record(
                &target.settings.circuit_breaker,
                Admission::Allowed,
                true,
                Duration::ZERO,
                DEFAULT_SLOW_CALL,
            );
        }
        breaker
    }

    fn router<'a>(fake: &'a Fake, breakers: &'a Breakers) -> Router<'a, Fake> {
        Router {
            attempts: fake,
            breakers,
            facts: Facts {
                metadata: None,
                params: None,
            },
        }
    }

    #[tokio::test]
    async fn loadbalance_shares_follow_the_weights_and_open_targets_get_none() {
        let s = snapshot(
            "    strategy: { mode: loadbalance }\n    targets:\n      - { name: a, virtual_key: vk, weight: 7 }\n      - { name: b, virtual_key: vk, weight: 2 }\n      - { name: c, virtual_key: vk, weight: 1 }\n",
        );
        let fake = Fake {
            failing: vec![],
            calls: Mutex::new(vec![]),
        };
        let breakers = Breakers::new(None);
        let r = router(&fake, &breakers);
        let root = &s.configs["c"].root;
        let n = 10_000;
        let mut counts = std::collections::HashMap::new();
        for _ in 0..n {
            let won = r.run(root).await.unwrap();
            *counts.entry(won.ready).or_insert(0u32) += 1;
        }
        // Chi-square goodness of fit, 2 degrees of freedom: 13.8 is the 0.1% critical value.
        let expected = [("a", 0.7), ("b", 0.2), ("c", 0.1)];
        let chi2: f64 = expected
            .iter()
            .map(|(k, p)| {
                let e = p * n as f64;
                let o = f64::from(*counts.get(*k).unwrap_or(&0));
                (o - e).powi(2) / e
            })
            .sum();
        assert!(chi2 < 13.8, "chi2 = {chi2}, counts = {counts:?}");

        // Open b's circuit (fresh breakers, so the window holds only these failures): it gets
        // no picks at all.
        let breakers = Breakers::new(None);
        let r = router(&fake, &breakers);
        let TargetKind::Group { targets, .. } = &root.kind else {
            panic!()
        };
        let b = &targets[1];
        let breaker = open_circuit(&breakers, b);
        assert_eq!(breaker.state(), super::super::breaker::CircuitState::Open);
        fake.calls.lock().unwrap().clear();
        for _ in 0..2_000 {
            r.run(root).await.unwrap();
        }
        assert!(!fake.calls.lock().unwrap().iter().any(|c| c == "b"));
    }

    #[tokio::test]
    async fn a_drained_target_is_never_picked_even_when_every_other_is_open() {
        let s = snapshot(
            "    strategy: { mode: loadbalance }\n    targets:\n      - { name: a, virtual_key: vk, weight: 0 }\n      - { name: b, virtual_key: vk, weight: 1 }\n",
        );
        let fake = Fake {
            failing: vec![],
            calls: Mutex::new(vec![]),
        };
        let breakers = Breakers::new(None);
        let r = router(&fake, &breakers);
        let root = &s.configs["c"].root;
        for _ in 0..2_000 {
            assert_eq!(r.run(root).await.unwrap().ready, "b");
        }
        // b's circuit open (fresh breakers, so the window holds only these failures): the
        // forced pick is still b, never the drained a.
        let breakers = Breakers::new(None);
        let r = router(&fake, &breakers);
        let TargetKind::Group { targets, .. } = &root.kind else {
            panic!()
        };
        let breaker = open_circuit(&breakers, &targets[1]);
        assert_eq!(breaker.state(), super::super::breaker::CircuitState::Open);
        fake.calls.lock().unwrap().clear();
        for _ in 0..100 {
            if let Ok(won) = r.run(root).await {
                assert_eq!(won.ready, "b");
            }
        }
        let calls = fake.calls.lock().unwrap();
        assert!(
            !calls.is_empty() && calls.iter().all(|c| c == "b"),
            "{calls:?}"
        );
    }

    #[tokio::test]
    async fn a_loadbalance_group_inside_a_fallback_tries_one_child_then_moves_on() {
        let s = snapshot(
            "    strategy: { mode: fallback }\n    targets:\n      - strategy: { mode: loadbalance }\n        targets:\n          - { name: a, virtual_key: vk }\n          - { name: b, virtual_key: vk }\n      - { name: c, virtual_key: vk }\n",
        );
        let fake = Fake {
            failing: vec!["a", "b"],
            calls: Mutex::new(vec![]),
        };
        let breakers = Breakers::new(None);
        let won = router(&fake, &breakers)
            .run(&s.configs["c"].root)
            .await
            .unwrap();
        assert_eq!(won.ready, "c");
        assert!(won.fell_back);
        let calls = fake.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[1], "c");
    }

    #[tokio::test]
    async fn on_status_codes_narrow_the_fallback() {
        let s = snapshot(
            "    strategy: { mode: fallback, on_status_codes: [429] }\n    targets:\n      - { name: a, virtual_key: vk }\n      - { name: b, virtual_key: vk }\n",
        );
        let fake = Fake {
            failing: vec!["a"],
            calls: Mutex::new(vec![]),
        };
        let breakers = Breakers::new(None);
        let err = router(&fake, &breakers)
            .run(&s.configs["c"].root)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind, FailureKind::Status(503));
        assert_eq!(*fake.calls.lock().unwrap(), ["a"]);
    }

    /// Leaf `a`'s answers always fail an output check with `action: retry`.
    struct RetryingGuard(Mutex<Vec<String>>);

    #[async_trait]
    impl Attempts for RetryingGuard {
        type Ready = String;
        type Detail = ();
        async fn attempt(&self, leaf: &Target) -> Result<String, Failure<()>> {
            self.0.lock().unwrap().push(leaf.label().to_string());
            if leaf.label() != "a" {
                return Ok(leaf.label().to_string());
            }
            Err(Failure {
                kind: FailureKind::Guardrail {
                    fallback: true,
                    retry: true,
                },
                retry_after: None,
                detail: (),
                retries: 0,
            })
        }
        fn no_route(&self) {}
        fn fell_back(&self, _: &Target, _: FailureKind) {}
        fn retried(&self, _: &Target, _: FailureKind) {}
        fn skipped_open(&self, _: &Target) {}
        fn hedge_lost(&self, _: &Target) {}
    }

    #[tokio::test]
    async fn a_retrying_guardrail_asks_again_then_falls_back() {
        // No `retry`: one more call; `retry.attempts: 2`: two more; then the next target.
        for (retry, calls) in [("", 2), ("retry: { attempts: 2 }, ", 3)] {
            let s = snapshot(&format!(
                "    strategy: {{ mode: fallback }}\n    targets:\n      - {{ name: a, {retry}virtual_key: vk }}\n      - {{ name: b, virtual_key: vk }}\n"
            ));
            let fake = RetryingGuard(Mutex::new(vec![]));
            let breakers = Breakers::new(None);
            let router = Router {
                attempts: &fake,
                breakers: &breakers,
                facts: Facts {
                    metadata: None,
                    params: None,
                },
            };
            let won = router.run(&s.configs["c"].root).await.ok().unwrap();
            assert_eq!(won.ready, "b");
            let seen = fake.0.lock().unwrap().clone();
            assert_eq!(seen.iter().filter(|c| *c == "a").count(), calls, "{seen:?}");
        }
    }
}
