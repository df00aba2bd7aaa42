//! Governance: per-virtual-key limits (`virtual_keys.*.limits`: `rpm`, `tpm`, `concurrent`,
//! `usd_per_day`, `usd_per_month`), checked when a request is admitted and settled with its real
//! usage and cost when it ends. Model allowlists and `disabled` keys are refused earlier, in
//! ingress and the proxy.
//!
//! - **Which keys**: the virtual key the client presented (when it has limits) *and* every limited
//!   key its config can route to (`RouteConfig::governed_keys`, computed once per config): all
//!   must admit, so neither naming a config nor presenting an unlimited key escapes a limit. The
//!   presented key is charged what the request used, and so is the config's key that answered.
//!   `x-ratelimit-*` headers show, per dimension, the governing key with the least left.
//! - **Admission** ([`Governance::admit`]) reserves before the call: one request (`rpm`), an
//!   estimate of its tokens (`tpm`: prompt bytes / 4 plus `max_tokens`, or a default), a slot
//!   (`concurrent`) and the estimate's price (`usd_per_*`). All checks pass or none is charged.
//! - **Settlement** ([`Ticket::settle`]) frees the slot and replaces the reservations by the
//!   request's real tokens and cost; a request that used more than it reserved is charged all of
//!   it (the bucket goes into debt and later requests wait).
//! - **State**: in this process ([`local`]) by default; with `state: { redis_url }` in Redis
//!   ([`shared`]), one script round trip per admission, settlements sent off the request path.
//!
//! Requests whose key has no limits never reach this module's engines: the cost is one branch.

pub mod engine;
pub mod gcra;
pub mod local;
pub mod period;
pub mod shared;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::config::{RouteConfig, Snapshot, StateSettings, Target, TargetKind, VirtualKey};
use crate::error::GatewayError;
use crate::ingress::Resolved;
use crate::providers::Usage;
use crate::telemetry::metrics::{GovernanceMetrics, LimitLabels};
use crate::telemetry::{AttemptResult, RequestRecord};

use gcra::Standing;
use local::LocalEngine;
use period::Periods;
use shared::SharedEngine;

/// Output tokens reserved for a generation that names no `max_tokens`.
pub const DEFAULT_OUTPUT_TOKENS: u64 = 1024;

/// One pico-dollar per 1e-12 USD.
const PICO_PER_USD: f64 = 1e12;

pub use crate::vocab::LimitKind;
pub use engine::{AdmitError, Charge, KeyReport, Refusal};

/// What governance needs to know about a request body.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub body: &'a [u8],
    /// The parsed body, when routing already parsed it.
    pub json: Option<&'a serde_json::Map<String, serde_json::Value>>,
    pub model: Option<&'a str>,
    /// `gen_ai.operation.name` of the route (`chat`, `embeddings`, …).
    pub operation: &'static str,
}

/// A refused request: the error to answer with and its headers (`Retry-After`,
/// `x-ratelimit-*`).
#[derive(Debug)]
pub struct Rejection {
    pub error: GatewayError,
    pub headers: Vec<(&'static str, String)>,
}

/// Per-virtual-key limits for the whole process; state local or in Redis.
pub struct Governance {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    metrics: GovernanceMetrics,
    /// The config hash last seen, and the keys that have gauges: a reload that drops a key
    /// drops its counters and series.
    seen: Mutex<(String, HashSet<String>)>,
}

enum Engine {
    Local(LocalEngine),
    /// Redis, and this process's own counters for while Redis cannot be asked and
    /// `on_state_error` is `allow`: failing open never means unlimited.
    Shared {
        redis: Arc<SharedEngine>,
        fallback: LocalEngine,
    },
}

/// Which counters admitted a request (and so settle it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Engine,
    /// The process-local fallback of a shared engine (Redis unreachable, `allow`).
    Fallback,
}

impl Governance {
    /// Local state, or Redis when `state` is configured (connected in the background: the
    /// gateway starts while Redis is down, and `on_state_error` applies until it answers).
    pub fn new(state: Option<&StateSettings>, metrics: GovernanceMetrics) -> Governance {
        let engine = match state {
            Some(s) => match SharedEngine::start(s, metrics.clone()) {
                Ok(redis) => Engine::Shared {
                    redis,
                    fallback: LocalEngine::new(),
                },
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the Redis state client; limits fall back to this process");
                    Engine::Local(LocalEngine::new())
                }
            },
            None => Engine::Local(LocalEngine::new()),
        };
        Governance {
            inner: Arc::new(Inner {
                engine,
                metrics,
                seen: Mutex::new((String::new(), HashSet::new())),
            }),
        }
    }

    /// Admits a request or refuses it. `Ok(None)`: nothing governs it (no limits).
    pub async fn admit(
        &self,
        snapshot: &Snapshot,
        resolved: &Resolved,
        request: RequestView<'_>,
    ) -> Result<Option<Ticket>, Rejection> {
        // Limits follow the route: the presented key (when it has limits) and every limited key
        // the config can route to all govern the request, so presenting an unlimited key next
        // to a config header never escapes the config's limits.
        let presented = resolved
            .virtual_key
            .as_ref()
            .filter(|k| !k.limits.is_empty());
        let route_keys = &resolved.route.governed_keys;
        if presented.is_none() && route_keys.is_empty() {
            return Ok(None);
        }
        self.inner.observe(snapshot);
        let estimate = estimate_tokens(request);
        let (keys, presented) = governing_keys(presented, route_keys);
        let charges: Vec<Charge> = keys
            .iter()
            .map(|key| charge_for(snapshot, key, request.model, &estimate))
            .collect();
        // Another key than the presented one may answer: settlement needs the route to find it.
        let route =
            (charges.len() > usize::from(presented.is_some())).then(|| resolved.route.clone());
        let periods = Periods::now();
        let mut reports = Vec::with_capacity(charges.len());
        let m = &self.inner.metrics;
        match self.inner.admit(&charges, &periods, &mut reports).await {
            Ok((lease, via)) => {
                // Gauges show the shared standing, not the fallback's per-process one.
                if via == Via::Engine {
                    for (c, r) in charges.iter().zip(&reports) {
                        m.report(&c.key, r);
                    }
                }
                let headers = rate_headers(&strictest(&reports));
                Ok(Some(Ticket {
                    inner: self.inner.clone(),
                    route,
                    charges,
                    presented,
                    periods,
                    lease,
                    via,
                    headers,
                    settled: false,
                }))
            }
            Err(AdmitError::Refused(refusal, report)) => {
                let charge = &charges[refusal.key_index.min(charges.len() - 1)];
                m.limit_rejections_total
                    .with(&LimitLabels {
                        virtual_key: &charge.key.label,
                        limit: refusal.limit.as_str(),
                    })
                    .inc();
                if let Some(r) = &report {
                    m.report(&charge.key, r);
                }
                Err(rejection(charge, refusal, report.as_ref()))
            }
            Err(AdmitError::StateDown { .. }) => {
                let error = GatewayError::StateUnavailable(
                    "limits cannot be checked: the shared state (Redis) is unreachable and state.on_state_error is deny".into(),
                );
                Err(Rejection {
                    error,
                    headers: vec![("retry-after", "1".into())],
                })
            }
        }
    }
}

impl Inner {
    /// Runs the engine: `Ok((lease, via))` when admitted. While Redis cannot be asked,
    /// `on_state_error: allow` admits against this process's own counters — a state error never
    /// admits a burst past a key's limit from one replica (it used to admit every request
    /// unchecked, and a Redis restart made the first call fail on the dropped connection).
    async fn admit(
        &self,
        charges: &[Charge],
        periods: &Periods,
        reports: &mut Vec<KeyReport>,
    ) -> Result<(Option<String>, Via), AdmitError> {
        match &self.engine {
            Engine::Local(l) => l
                .admit(charges, periods, reports)
                .map(|()| (None, Via::Engine)),
            // Boxed: the Redis call's future is large, and only governed requests pay for it.
            Engine::Shared { redis, fallback } => {
                match Box::pin(redis.admit(charges, periods, reports)).await {
                    Err(AdmitError::StateDown { deny }) => {
                        for c in charges {
                            self.metrics
                                .limit_rejections_total
                                .with(&LimitLabels {
                                    virtual_key: &c.key.label,
                                    limit: "state_unavailable",
                                })
                                .inc();
                        }
                        if deny {
                            return Err(AdmitError::StateDown { deny });
                        }
                        reports.clear();
                        fallback
                            .admit(charges, periods, reports)
                            .map(|()| (None, Via::Fallback))
                    }
                    other => other.map(|lease| (lease, Via::Engine)),
                }
            }
        }
    }

    /// On a new config: forget the counters and series of keys it no longer has.
    fn observe(&self, snapshot: &Snapshot) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.0 == snapshot.hash {
            return;
        }
        seen.0.clone_from(&snapshot.hash);
        let gone: Vec<String> = seen
            .1
            .iter()
            .filter(|k| {
                snapshot
                    .virtual_keys
                    .get(k.as_str())
                    .is_none_or(|v| v.limits.is_empty())
            })
            .cloned()
            .collect();
        for key in gone {
            seen.1.remove(&key);
            self.metrics.forget(&key);
        }
        seen.1.extend(
            snapshot
                .virtual_keys
                .values()
                .filter(|k| !k.limits.is_empty())
                .map(|k| k.name.clone()),
        );
        let (Engine::Local(l) | Engine::Shared { fallback: l, .. }) = &self.engine;
        l.retain(|k| snapshot.virtual_keys.contains_key(k));
    }
}

/// An admitted request's reservations. Settle it with the request's record when it ends; one
/// dropped unsettled (a panic) frees its slot and keeps its reservations as charged.
pub struct Ticket {
    inner: Arc<Inner>,
    charges: Vec<Charge>,
    /// Where the key the client presented is in `charges` (sorted by name), when it has limits;
    /// the others are the limited keys the config can route to.
    presented: Option<usize>,
    /// The config, to find which of its keys answered (`None`: only the presented key governs).
    route: Option<Arc<RouteConfig>>,
    periods: Periods,
    /// The Redis concurrency lease.
    lease: Option<String>,
    /// Which counters hold its reservations.
    via: Via,
    headers: Vec<(&'static str, String)>,
    settled: bool,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field(
                "keys",
                &self.charges.iter().map(|c| &c.key.name).collect::<Vec<_>>(),
            )
            .field("via", &self.via)
            .finish()
    }
}

/// What a request turned out to use, as settlement sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Used {
    /// Input plus output tokens, when the provider reported usage.
    pub tokens: Option<u64>,
    /// Its price, when the model has one.
    pub pico: Option<u64>,
    /// A response was sent (2xx): without usage, the reservation stands as the charge.
    pub answered: bool,
}

impl Used {
    pub fn from_record(record: &RequestRecord) -> Used {
        Used {
            tokens: record.usage.as_ref().map(Usage::total_tokens),
            pico: record.cost_usd.map(usd_to_pico),
            answered: (200..300).contains(&record.status),
        }
    }
}

impl Ticket {
    /// `x-ratelimit-*` headers of the strictest governing key, for the response.
    pub fn headers(&self) -> &[(&'static str, String)] {
        &self.headers
    }

    /// Frees the slot and replaces the reservations by the request's real tokens and cost.
    pub fn settle(mut self, record: &RequestRecord) {
        let answering = self
            .route
            .as_ref()
            .and_then(|route| answering_key(route, record));
        self.finish(Used::from_record(record), answering.as_deref());
    }

    fn finish(&mut self, used: Used, answering: Option<&str>) {
        self.settled = true;
        let deltas: Vec<(i64, i64)> = self
            .charges
            .iter()
            .enumerate()
            .map(|(i, c)| {
                // The presented key pays for what its client used; a key of the config pays
                // only when it answered.
                let charged = self.presented == Some(i) || answering == Some(c.key.name.as_str());
                let reserved = (signed(c.tokens), signed(c.pico));
                match (charged, used.tokens) {
                    (true, Some(tokens)) => (
                        signed(tokens) - reserved.0,
                        used.pico.map_or(0, |p| signed(p) - reserved.1),
                    ),
                    // Answered without usage (a stream cut short): the estimate is the charge.
                    (true, None) if used.answered => (0, 0),
                    // No answer, or another key answered: give the reservation back.
                    _ => (-reserved.0, -reserved.1),
                }
            })
            .collect();
        let mut reports = Vec::with_capacity(self.charges.len());
        match (&self.inner.engine, self.via) {
            (Engine::Local(l), _) => {
                l.settle(&self.charges, &deltas, &self.periods, &mut reports);
                for (c, r) in self.charges.iter().zip(&reports) {
                    self.inner.metrics.report(&c.key, r);
                }
            }
            (Engine::Shared { redis, .. }, Via::Engine) => redis.settle(
                std::mem::take(&mut self.charges),
                deltas,
                self.periods,
                self.lease.take(),
            ),
            (Engine::Shared { redis, fallback }, Via::Fallback) => {
                fallback.settle(&self.charges, &deltas, &self.periods, &mut reports);
                // Nothing was reserved in Redis: what the request is finally charged (its
                // reservation plus the correction) goes there too, so an outage's usage still
                // counts if Redis answers by the time the request ends.
                let totals = self
                    .charges
                    .iter()
                    .zip(&deltas)
                    .map(|(c, d)| {
                        (
                            signed(c.tokens).saturating_add(d.0),
                            signed(c.pico).saturating_add(d.1),
                        )
                    })
                    .collect();
                redis.settle(
                    std::mem::take(&mut self.charges),
                    totals,
                    self.periods,
                    None,
                );
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.settled {
            self.finish(
                Used {
                    answered: true,
                    ..Used::default()
                },
                None,
            );
        }
    }
}

/// The virtual key of the target that answered (its attempt `ok`, else the last with a 2xx).
fn answering_key(route: &RouteConfig, record: &RequestRecord) -> Option<String> {
    let attempt = record
        .attempts
        .iter()
        .rev()
        .find(|a| a.result == AttemptResult::Ok)
        .or_else(|| {
            record
                .attempts
                .iter()
                .rev()
                .find(|a| a.status.is_some_and(|s| (200..300).contains(&s)))
        })?;
    leaf_key(&route.root, &attempt.target).map(|k| k.name.clone())
}

fn leaf_key<'a>(target: &'a Target, path: &str) -> Option<&'a Arc<VirtualKey>> {
    match &target.kind {
        TargetKind::Leaf { virtual_key } => (target.path == path).then_some(virtual_key),
        TargetKind::Group { targets, .. } => targets.iter().find_map(|t| leaf_key(t, path)),
    }
}

/// The keys that govern a request, sorted by name without duplicates (the engines lock and
/// script them in this order): the config's limited keys with the presented one merged in, and
/// where the presented one is.
fn governing_keys<'a>(
    presented: Option<&'a Arc<VirtualKey>>,
    route_keys: &'a [Arc<VirtualKey>],
) -> (Vec<&'a Arc<VirtualKey>>, Option<usize>) {
    let mut keys: Vec<&Arc<VirtualKey>> = Vec::with_capacity(route_keys.len() + 1);
    keys.extend(route_keys);
    let at = presented.map(
        |p| match keys.binary_search_by(|k| k.name.as_str().cmp(&p.name)) {
            Ok(i) => i,
            Err(i) => {
                keys.insert(i, p);
                i
            }
        },
    );
    (keys, at)
}

/// What a request reserves against one key: its token estimate (at most the key's `tpm`) and,
/// when the key has a spend cap, the estimate's price at the key's provider.
fn charge_for(
    snapshot: &Snapshot,
    key: &Arc<VirtualKey>,
    model: Option<&str>,
    estimate: &Usage,
) -> Charge {
    let l = &key.limits;
    let pico = if l.usd_per_day.is_some() || l.usd_per_month.is_some() {
        model
            .and_then(|m| {
                snapshot
                    .telemetry
                    .prices
                    .cost_pico_usd(key.provider.kind.as_str(), m, estimate)
            })
            .map(|p| u64::try_from(p).unwrap_or(u64::MAX))
            .unwrap_or(0)
    } else {
        0
    };
    Charge {
        key: key.clone(),
        tokens: l.tpm.map_or(0, |t| estimate.total_tokens().min(t)),
        pico,
        day_cap: l.usd_per_day.map(usd_to_pico),
        month_cap: l.usd_per_month.map(usd_to_pico),
    }
}

/// Per dimension, the standing with the least left among the governing keys: what the client
/// will run into first.
fn strictest(reports: &[KeyReport]) -> KeyReport {
    let least = |pick: fn(&KeyReport) -> Option<Standing>| {
        reports
            .iter()
            .filter_map(pick)
            .min_by_key(|s| (s.remaining, std::cmp::Reverse(s.reset_us)))
    };
    KeyReport {
        requests: least(|r| r.requests),
        tokens: least(|r| r.tokens),
        ..KeyReport::default()
    }
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub fn usd_to_pico(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * PICO_PER_USD).round() as u64
    } else {
        0
    }
}

fn pico_to_usd(pico: u64) -> f64 {
    pico as f64 / PICO_PER_USD
}

/// The tokens a request is expected to use: its body's bytes / 4 (JSON overhead makes this
/// generous for text) plus the output it may generate (`max_tokens`, `max_completion_tokens` or
/// `max_output_tokens`, times `n`; [`DEFAULT_OUTPUT_TOKENS`] when a generation names none).
pub fn estimate_tokens(request: RequestView<'_>) -> Usage {
    #[derive(serde::Deserialize, Default)]
    struct Peek {
        max_tokens: Option<u64>,
        max_completion_tokens: Option<u64>,
        max_output_tokens: Option<u64>,
        n: Option<u64>,
    }
    let input = (request.body.len() as u64).div_ceil(4);
    let generates = matches!(
        request.operation,
        "chat" | "text_completion" | "generate_content"
    );
    let output = if !generates {
        0
    } else {
        let peek = match request.json {
            Some(map) => {
                let num = |k: &str| map.get(k).and_then(serde_json::Value::as_u64);
                Peek {
                    max_tokens: num("max_tokens"),
                    max_completion_tokens: num("max_completion_tokens"),
                    max_output_tokens: num("max_output_tokens"),
                    n: num("n"),
                }
            }
            None => serde_json::from_slice(request.body).unwrap_or_default(),
        };
        let per_choice = peek
            .max_completion_tokens
            .or(peek.max_tokens)
            .or(peek.max_output_tokens)
            .unwrap_or(DEFAULT_OUTPUT_TOKENS);
        per_choice.saturating_mul(peek.n.unwrap_or(1).clamp(1, 128))
    };
    Usage {
        input_tokens: input,
        output_tokens: output,
        ..Usage::default()
    }
}

/// `x-ratelimit-*` headers like OpenAI's, for the limits the key has.
fn rate_headers(report: &KeyReport) -> Vec<(&'static str, String)> {
    let mut h = Vec::with_capacity(6);
    if let Some(s) = report.requests {
        h.push(("x-ratelimit-limit-requests", s.limit.to_string()));
        h.push(("x-ratelimit-remaining-requests", s.remaining.to_string()));
        h.push(("x-ratelimit-reset-requests", openai_duration(s.reset_us)));
    }
    if let Some(s) = report.tokens {
        h.push(("x-ratelimit-limit-tokens", s.limit.to_string()));
        h.push(("x-ratelimit-remaining-tokens", s.remaining.to_string()));
        h.push(("x-ratelimit-reset-tokens", openai_duration(s.reset_us)));
    }
    h
}

fn rejection(charge: &Charge, refusal: Refusal, report: Option<&KeyReport>) -> Rejection {
    let retry_after = Duration::from_micros(refusal.retry_after_us);
    let l = &charge.key.limits;
    let limit_value = match refusal.limit {
        LimitKind::Rpm => l.rpm.unwrap_or(0).to_string(),
        LimitKind::Tpm => l.tpm.unwrap_or(0).to_string(),
        LimitKind::Concurrent => l.concurrent.unwrap_or(0).to_string(),
        LimitKind::UsdPerDay => format!("${:.2}", l.usd_per_day.unwrap_or(0.0)),
        LimitKind::UsdPerMonth => format!("${:.2}", l.usd_per_month.unwrap_or(0.0)),
    };
    let mut headers = vec![
        (
            "retry-after",
            retry_after.as_secs_f64().ceil().max(1.0).to_string(),
        ),
        (
            "retry-after-ms",
            (refusal.retry_after_us.div_ceil(1000)).to_string(),
        ),
    ];
    // The refused key is the strictest one: its standing is what the client runs into.
    if let Some(r) = report {
        headers.extend(rate_headers(r));
    }
    let error = if refusal.limit.is_budget() {
        GatewayError::BudgetExceeded {
            virtual_key: charge.key.label.clone(),
            limit: refusal.limit,
            limit_value,
            resets_in: openai_duration(refusal.retry_after_us),
        }
    } else {
        GatewayError::RateLimited {
            virtual_key: charge.key.label.clone(),
            limit: refusal.limit,
            limit_value,
            retry_in: openai_duration(refusal.retry_after_us),
        }
    };
    Rejection { error, headers }
}

/// A duration as OpenAI writes `x-ratelimit-reset-*`: `20ms`, `1.5s`, `6m0s`, `1h2m3s`.
pub fn openai_duration(us: u64) -> String {
    let ms = us.div_ceil(1000);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let secs = rest as f64 / 1000.0;
    let s = format!("{secs:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

impl GovernanceMetrics {
    /// Sets the remaining-budget gauges of one key.
    fn report(&self, key: &VirtualKey, r: &KeyReport) {
        let l = &key.limits;
        let set = |limit: LimitKind, v: f64| {
            self.limit_remaining
                .with(&LimitLabels {
                    virtual_key: &key.label,
                    limit: limit.as_str(),
                })
                .set(v)
        };
        if let Some(s) = r.requests {
            set(LimitKind::Rpm, s.remaining as f64);
        }
        if let Some(s) = r.tokens {
            set(LimitKind::Tpm, s.remaining as f64);
        }
        if let Some(c) = l.concurrent {
            set(LimitKind::Concurrent, c.saturating_sub(r.inflight) as f64);
        }
        if let Some(cap) = l.usd_per_day {
            set(
                LimitKind::UsdPerDay,
                (cap - pico_to_usd(r.day_spent_pico)).max(0.0),
            );
        }
        if let Some(cap) = l.usd_per_month {
            set(
                LimitKind::UsdPerMonth,
                (cap - pico_to_usd(r.month_spent_pico)).max(0.0),
            );
        }
    }

    /// Drops every series of a key the config no longer limits.
    fn forget(&self, key: &str) {
        // The series is labelled with the key's label: its hash, or its name (key_labels: name).
        let hashed = crate::config::key_label(key, false);
        for label in [key, hashed.as_str()] {
            for limit in LimitKind::ALL {
                self.limit_remaining.remove(&LimitLabels {
                    virtual_key: label,
                    limit: limit.as_str(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_openai_headers() {
        assert_eq!(openai_duration(0), "0ms");
        assert_eq!(openai_duration(19_500), "20ms");
        assert_eq!(openai_duration(1_000_000), "1s");
        assert_eq!(openai_duration(1_500_000), "1.5s");
        assert_eq!(openai_duration(360_000_000), "6m0s");
        assert_eq!(openai_duration(3_723_000_000), "1h2m3s");
    }

    #[test]
    fn estimates_use_body_size_and_max_tokens() {
        let body = br#"{"model":"m","max_tokens":50,"n":2,"messages":[]}"#;
        let view = |body: &'static [u8], operation| RequestView {
            body,
            json: None,
            model: Some("m"),
            operation,
        };
        let u = estimate_tokens(view(body, "chat"));
        assert_eq!(u.input_tokens, (body.len() as u64).div_ceil(4));
        assert_eq!(u.output_tokens, 100);
        let u = estimate_tokens(view(br#"{"model":"m"}"#, "chat"));
        assert_eq!(u.output_tokens, DEFAULT_OUTPUT_TOKENS);
        let u = estimate_tokens(view(br#"{"input":"x"}"#, "embeddings"));
        assert_eq!(u.output_tokens, 0);
        assert_eq!(estimate_tokens(view(b"", "other")).total_tokens(), 0);
    }

    #[test]
    fn limit_codes_round_trip() {
        for (i, l) in LimitKind::ALL.iter().enumerate() {
            assert_eq!(shared::limit_from_code(i as i64 + 1), Some(*l));
        }
        assert_eq!(shared::limit_from_code(0), None);
        assert_eq!(shared::limit_from_code(6), None);
    }
}
