//! The Prometheus registry and every metric family (DESIGN.md §6). Names are part of our
//! interface. Label values come only from the config (config, target, provider and configured
//! model names) or from small fixed sets; anything else is reported as `other`.
//!
//! Every labelled family is a [`Family`] whose label set is a type ([`labels`]): the compiler
//! checks label names and order at each call site. The families are built in groups
//! (requests, upstream, config, console, guardrails, forward proxy, cache, GenAI, governance,
//! downstream), each by its own constructor.

pub mod family;
pub mod labels;

pub use family::{Family, LabelSet};
pub use labels::*;

use super::genai::GenAiMetrics;
use prometheus::{
    Encoder, GaugeVec, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Registry, TextEncoder,
};

/// End-to-end and per-attempt durations: LLM calls are slow, a 45 s gray failure must land in a
/// real bucket.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0,
    45.0, 60.0, 90.0, 120.0,
];
/// Time to first token of a stream.
const TTFT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0,
];
/// Time spent in Switchyard itself: proves the sidecar adds no latency.
const OVERHEAD_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
];

/// Every metric family, registered in one private registry.
pub struct Metrics {
    registry: Registry,
    pub requests_total: Family<IntCounterVec, RequestLabels<'static>, 3>,
    pub request_duration_seconds: Family<HistogramVec, ConfigLabel<'static>, 1>,
    pub upstream_attempts_total: Family<IntCounterVec, UpstreamAttemptLabels<'static>, 5>,
    pub upstream_duration_seconds: Family<HistogramVec, TargetLabels<'static>, 3>,
    pub time_to_first_token_seconds: Family<HistogramVec, TargetLabels<'static>, 3>,
    pub overhead_seconds: Family<HistogramVec, ConfigLabel<'static>, 1>,
    pub config_reloads_total: Family<IntCounterVec, ReloadResult, 1>,
    pub config_info: Family<IntGaugeVec, ConfigHash<'static>, 1>,
    pub inflight_requests: IntGauge,
    pub fallbacks_total: Family<IntCounterVec, FallbackLabels<'static>, 3>,
    pub retries_total: Family<IntCounterVec, RetryLabels<'static>, 3>,
    pub circuit_state: Family<IntGaugeVec, CircuitLabel<'static>, 1>,
    /// Open console `/events` streams, and whether the console's sampler runs (`console`).
    pub console_viewers: IntGauge,
    pub console_sampling: IntGauge,
    /// `{config, check, verdict}`: guardrail check results (`crate::guardrails`); `check` is a
    /// configured name or check kind, `verdict` one of pass, warn, deny, fallback, redact.
    pub guardrail_verdicts_total: Family<IntCounterVec, GuardrailLabels<'static>, 3>,
    /// Forward-proxy mode: `CONNECT`s and plain-HTTP proxy requests by `mode` (`intercept`,
    /// `tunnel`, `refused`).
    pub forward_connections_total: Family<IntCounterVec, ForwardMode, 1>,
    /// Response-cache lookups by config and result (`hit`, `semantic_hit`, `miss`, `refresh`,
    /// `bypass`, `error`).
    pub cache_requests_total: Family<IntCounterVec, CacheLabels<'static>, 2>,
    /// Tokens, cost, feedback and the GenAI semantic-convention families.
    pub genai: GenAiMetrics,
    /// Per-virtual-key limits (`governance`).
    pub governance: GovernanceMetrics,
    /// Proxy-listener connections and the ones cut for slowness or over the cap.
    pub downstream: DownstreamMetrics,
    /// The request store's writes, drops and errors (`crate::store`).
    pub store: StoreMetrics,
    /// Upstream connections: open by state, and how long new ones took (`crate::upstream`).
    pub connections: ConnectionMetrics,
}

/// A registered gauge without labels.
fn int_gauge(registry: &Registry, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
    let gauge = IntGauge::new(name, help)?;
    registry.register(Box::new(gauge.clone()))?;
    Ok(gauge)
}

/// End-to-end request families.
struct RequestFamilies {
    requests_total: Family<IntCounterVec, RequestLabels<'static>, 3>,
    request_duration_seconds: Family<HistogramVec, ConfigLabel<'static>, 1>,
    overhead_seconds: Family<HistogramVec, ConfigLabel<'static>, 1>,
    inflight_requests: IntGauge,
}

impl RequestFamilies {
    fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        Ok(RequestFamilies {
            requests_total: Family::counter(
                r,
                "switchyard_requests_total",
                "Requests answered, by config, status class and outcome.",
            )?,
            request_duration_seconds: Family::histogram(
                r,
                "switchyard_request_duration_seconds",
                "End-to-end request duration, from the request head to the last byte sent.",
                DURATION_BUCKETS,
            )?,
            overhead_seconds: Family::histogram(
                r,
                "switchyard_overhead_seconds",
                "Time spent in Switchyard itself per request (total minus time waiting on upstreams).",
                OVERHEAD_BUCKETS,
            )?,
            inflight_requests: int_gauge(
                r,
                "switchyard_inflight_requests",
                "Requests (streams included) being served right now.",
            )?,
        })
    }
}

/// Upstream attempts, routing and circuit breakers.
struct UpstreamFamilies {
    upstream_attempts_total: Family<IntCounterVec, UpstreamAttemptLabels<'static>, 5>,
    upstream_duration_seconds: Family<HistogramVec, TargetLabels<'static>, 3>,
    time_to_first_token_seconds: Family<HistogramVec, TargetLabels<'static>, 3>,
    fallbacks_total: Family<IntCounterVec, FallbackLabels<'static>, 3>,
    retries_total: Family<IntCounterVec, RetryLabels<'static>, 3>,
    circuit_state: Family<IntGaugeVec, CircuitLabel<'static>, 1>,
}

impl UpstreamFamilies {
    fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        Ok(UpstreamFamilies {
            upstream_attempts_total: Family::counter(
                r,
                "switchyard_upstream_attempts_total",
                "Upstream attempts by config, target, provider, model and result.",
            )?,
            upstream_duration_seconds: Family::histogram(
                r,
                "switchyard_upstream_duration_seconds",
                "Duration of one upstream attempt, until its last byte or its failure.",
                DURATION_BUCKETS,
            )?,
            time_to_first_token_seconds: Family::histogram(
                r,
                "switchyard_time_to_first_token_seconds",
                "Streams: time from sending the upstream request to its first content event.",
                TTFT_BUCKETS,
            )?,
            fallbacks_total: Family::counter(
                r,
                "switchyard_fallbacks_total",
                "Requests moved on from a target, by config, target and reason.",
            )?,
            retries_total: Family::counter(
                r,
                "switchyard_retries_total",
                "Retries on the same target, by config, target and reason.",
            )?,
            circuit_state: Family::gauge(
                r,
                "switchyard_circuit_state",
                "Circuit breaker state per target: 0 closed, 1 open, 2 half-open.",
            )?,
        })
    }
}

/// Config reloads and the live config's hash.
struct ConfigFamilies {
    config_reloads_total: Family<IntCounterVec, ReloadResult, 1>,
    config_info: Family<IntGaugeVec, ConfigHash<'static>, 1>,
}

impl ConfigFamilies {
    fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let config_reloads_total = Family::counter(
            r,
            "switchyard_config_reloads_total",
            "Config reloads by result (success, error).",
        )?;
        // Both results exist from the start so `rate()` and alerts see a zero, not an absence.
        for result in ReloadResult::ALL {
            config_reloads_total.with(&result);
        }
        let config_info = Family::gauge(
            r,
            "switchyard_config_info",
            "1 for the hash of the config being served.",
        )?;
        Ok(ConfigFamilies {
            config_reloads_total,
            config_info,
        })
    }
}

/// `switchyard_guardrail_verdicts_total`.
fn guardrail_verdicts(
    r: &Registry,
) -> Result<Family<IntCounterVec, GuardrailLabels<'static>, 3>, prometheus::Error> {
    Family::counter(
        r,
        "switchyard_guardrail_verdicts_total",
        "Guardrail check results by config, check and verdict (pass, warn, deny, fallback, redact).",
    )
}

/// `switchyard_forward_connections_total`, every mode present from the start.
fn forward_connections(
    r: &Registry,
) -> Result<Family<IntCounterVec, ForwardMode, 1>, prometheus::Error> {
    let family = Family::counter(
        r,
        "switchyard_forward_connections_total",
        "Forward-proxy connections (CONNECT) and plain-HTTP proxy requests, by mode: intercept, tunnel, refused.",
    )?;
    for mode in ForwardMode::ALL {
        family.with(&mode);
    }
    Ok(family)
}

/// `switchyard_cache_requests_total`.
fn cache_requests(
    r: &Registry,
) -> Result<Family<IntCounterVec, CacheLabels<'static>, 2>, prometheus::Error> {
    Family::counter(
        r,
        "switchyard_cache_requests_total",
        "Requests of configs with a response cache, by config and cache result (hit, semantic_hit, miss, refresh, bypass, error).",
    )
}

impl Metrics {
    /// Builds and registers every family. Fails only on a programming error (a bad name).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let r = &registry;
        let requests = RequestFamilies::new(r)?;
        let upstream = UpstreamFamilies::new(r)?;
        let config = ConfigFamilies::new(r)?;
        Ok(Metrics {
            requests_total: requests.requests_total,
            request_duration_seconds: requests.request_duration_seconds,
            overhead_seconds: requests.overhead_seconds,
            inflight_requests: requests.inflight_requests,
            upstream_attempts_total: upstream.upstream_attempts_total,
            upstream_duration_seconds: upstream.upstream_duration_seconds,
            time_to_first_token_seconds: upstream.time_to_first_token_seconds,
            fallbacks_total: upstream.fallbacks_total,
            retries_total: upstream.retries_total,
            circuit_state: upstream.circuit_state,
            config_reloads_total: config.config_reloads_total,
            config_info: config.config_info,
            console_viewers: int_gauge(
                r,
                "switchyard_console_viewers",
                "Console pages connected to the admin port's event stream.",
            )?,
            console_sampling: int_gauge(
                r,
                "switchyard_console_sampling",
                "1 while the console samples metrics for its viewers, else 0.",
            )?,
            guardrail_verdicts_total: guardrail_verdicts(r)?,
            forward_connections_total: forward_connections(r)?,
            cache_requests_total: cache_requests(r)?,
            genai: GenAiMetrics::new(r)?,
            governance: GovernanceMetrics::new(r)?,
            downstream: DownstreamMetrics::new(r)?,
            store: StoreMetrics::new(r)?,
            connections: ConnectionMetrics::new(r)?,
            registry,
        })
    }

    /// Records which config hash is live: exactly one `switchyard_config_info` series is 1.
    pub fn set_config_hash(&self, hash: &str) {
        self.config_info.reset();
        self.config_info.with(&ConfigHash { hash }).set(1);
    }

    pub fn reload_succeeded(&self) {
        self.config_reloads_total.with(&ReloadResult::Success).inc();
    }

    pub fn reload_failed(&self) {
        self.config_reloads_total.with(&ReloadResult::Error).inc();
    }

    /// The text exposition format of every family.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// Per-virtual-key limits. The `virtual_key` label is bounded by the config (only keys with
/// `limits` get series) and its values are key names, never credentials.
#[derive(Clone)]
pub struct GovernanceMetrics {
    /// `{virtual_key, limit}`: `rpm`, `tpm`, `concurrent`, `usd_per_day`, `usd_per_month`, or
    /// `state_unavailable` (shared state down, counted per governed key whatever the policy).
    pub limit_rejections_total: Family<IntCounterVec, LimitLabels<'static>, 2>,
    /// `{virtual_key, limit}`: what is left, in the limit's unit (requests, tokens, slots, USD),
    /// as this process last saw it.
    pub limit_remaining: Family<GaugeVec, LimitLabels<'static>, 2>,
    /// `{op}`: `admit`, `settle`, `renew`, `settle_dropped` — shared-state calls that failed.
    pub state_errors_total: Family<IntCounterVec, StateOp, 1>,
}

impl GovernanceMetrics {
    fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        Ok(GovernanceMetrics {
            limit_rejections_total: Family::counter(
                r,
                "switchyard_limit_rejections_total",
                "Requests refused by a virtual key's limit, by virtual key and limit.",
            )?,
            limit_remaining: Family::float_gauge(
                r,
                "switchyard_limit_remaining",
                "What is left of a virtual key's limit (requests, tokens, slots or USD).",
            )?,
            state_errors_total: Family::counter(
                r,
                "switchyard_state_errors_total",
                "Shared-state (Redis) calls that failed or were skipped while it was down, by operation.",
            )?,
        })
    }
}

/// The proxy listener's connections (`server::downstream`).
pub struct DownstreamMetrics {
    /// `switchyard_downstream_connections`: open proxy-listener connections.
    pub open: IntGauge,
    /// `switchyard_downstream_closed_total{reason}`: connections the gateway cut.
    pub closed_total: Family<IntCounterVec, CloseReason, 1>,
}

impl DownstreamMetrics {
    fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let open = int_gauge(
            r,
            "switchyard_downstream_connections",
            "Open connections on the proxy listener.",
        )?;
        let closed_total = Family::counter(
            r,
            "switchyard_downstream_closed_total",
            "Proxy-listener connections closed by the gateway, by reason: over_capacity, header_timeout, header_too_large, body_too_slow, write_stalled.",
        )?;
        for reason in CloseReason::ALL {
            closed_total.with(&reason);
        }
        Ok(DownstreamMetrics { open, closed_total })
    }
}

/// The request store (`crate::store`): what it wrote, dropped, and what failed.
#[derive(Clone)]
pub struct StoreMetrics {
    /// `switchyard_store_written_total`: request records written.
    pub written_total: prometheus::IntCounter,
    /// `switchyard_store_dropped_total{reason}`: records (and feedback) never written.
    pub dropped_total: Family<IntCounterVec, StoreDrop, 1>,
    /// `switchyard_store_errors_total{op}`: failed store operations.
    pub errors_total: Family<IntCounterVec, StoreOp, 1>,
    /// `switchyard_store_queue_depth`: records waiting for the writer.
    pub queue_depth: IntGauge,
}

impl StoreMetrics {
    fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let written_total = prometheus::IntCounter::new(
            "switchyard_store_written_total",
            "Request records written to the request store.",
        )?;
        r.register(Box::new(written_total.clone()))?;
        let dropped_total = Family::counter(
            r,
            "switchyard_store_dropped_total",
            "Request records and feedback the request store never wrote, by reason: queue_full, write_failed.",
        )?;
        for reason in StoreDrop::ALL {
            dropped_total.with(&reason);
        }
        let errors_total = Family::counter(
            r,
            "switchyard_store_errors_total",
            "Request-store operations that failed, by op: write (each try), connect, prune, read.",
        )?;
        for op in StoreOp::ALL {
            errors_total.with(&op);
        }
        let queue_depth = int_gauge(
            r,
            "switchyard_store_queue_depth",
            "Request records waiting for the request store's writer.",
        )?;
        Ok(StoreMetrics {
            written_total,
            dropped_total,
            errors_total,
            queue_depth,
        })
    }
}

/// Upstream connections (`crate::upstream`): how many are open, in use or pooled, and what
/// opening one costs — so an operator sees handshakes paid on user requests.
#[derive(Clone)]
pub struct ConnectionMetrics {
    /// `switchyard_upstream_connections{provider,protocol,state}`.
    pub connections: Family<IntGaugeVec, ConnLabels<'static>, 3>,
    /// `switchyard_upstream_connect_seconds{provider,protocol,trigger}`.
    pub connect_seconds: Family<HistogramVec, ConnectLabels<'static>, 3>,
}

impl ConnectionMetrics {
    fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        Ok(ConnectionMetrics {
            connections: Family::gauge(
                r,
                "switchyard_upstream_connections",
                "Open upstream connections, by provider, protocol (http/1.1, h2) and state (active: carrying requests; idle: pooled).",
            )?,
            connect_seconds: Family::histogram(
                r,
                "switchyard_upstream_connect_seconds",
                "Time to open a new upstream connection (TCP and TLS handshakes), by provider, protocol and trigger (request: a request waited for it; prewarm).",
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            )?,
        })
    }
}
