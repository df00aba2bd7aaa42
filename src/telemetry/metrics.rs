//! The Prometheus registry and every metric family (DESIGN.md §6). Names are part of our
//! interface. Label values come only from the config (config, target, provider and configured
//! model names) or from small fixed sets; anything else is reported as `other`.

use super::genai::GenAiMetrics;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
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
    pub requests_total: IntCounterVec,
    pub request_duration_seconds: HistogramVec,
    pub upstream_attempts_total: IntCounterVec,
    pub upstream_duration_seconds: HistogramVec,
    pub time_to_first_token_seconds: HistogramVec,
    pub overhead_seconds: HistogramVec,
    pub config_reloads_total: IntCounterVec,
    pub config_info: IntGaugeVec,
    pub inflight_requests: IntGauge,
    pub fallbacks_total: IntCounterVec,
    pub retries_total: IntCounterVec,
    pub circuit_state: IntGaugeVec,
    /// Open console `/events` streams, and whether the console's sampler runs (`console`).
    pub console_viewers: IntGauge,
    pub console_sampling: IntGauge,
    /// `{config, check, verdict}`: guardrail check results (`crate::guardrails`); `check` is a
    /// configured name or check kind, `verdict` one of pass, warn, deny, fallback, redact.
    pub guardrail_verdicts_total: IntCounterVec,
    /// Forward-proxy mode: `CONNECT`s and plain-HTTP proxy requests by `mode` (`intercept`,
    /// `tunnel`, `refused`).
    pub forward_connections_total: IntCounterVec,
    /// Response-cache lookups by config and result (`hit`, `semantic_hit`, `miss`, `refresh`,
    /// `bypass`, `error`).
    pub cache_requests_total: IntCounterVec,
    /// Tokens, cost, feedback and the GenAI semantic-convention families.
    pub genai: GenAiMetrics,
    /// Per-virtual-key limits (`governance`).
    pub governance: GovernanceMetrics,
    /// Proxy-listener connections and the ones cut for slowness or over the cap.
    pub downstream: DownstreamMetrics,
}

/// Per-virtual-key limits. The `virtual_key` label is bounded by the config (only keys with
/// `limits` get series) and its values are key names, never credentials.
#[derive(Clone)]
pub struct GovernanceMetrics {
    /// `{virtual_key, limit}`: `rpm`, `tpm`, `concurrent`, `usd_per_day`, `usd_per_month`, or
    /// `state_unavailable` (shared state down, counted per governed key whatever the policy).
    pub limit_rejections_total: IntCounterVec,
    /// `{virtual_key, limit}`: what is left, in the limit's unit (requests, tokens, slots, USD),
    /// as this process last saw it.
    pub limit_remaining: GaugeVec,
    /// `{op}`: `admit`, `settle`, `renew`, `settle_dropped` — shared-state calls that failed.
    pub state_errors_total: IntCounterVec,
}

impl GovernanceMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let limit_rejections_total = IntCounterVec::new(
            Opts::new(
                "switchyard_limit_rejections_total",
                "Requests refused by a virtual key's limit, by virtual key and limit.",
            ),
            &["virtual_key", "limit"],
        )?;
        let limit_remaining = GaugeVec::new(
            Opts::new(
                "switchyard_limit_remaining",
                "What is left of a virtual key's limit (requests, tokens, slots or USD).",
            ),
            &["virtual_key", "limit"],
        )?;
        let state_errors_total = IntCounterVec::new(
            Opts::new(
                "switchyard_state_errors_total",
                "Shared-state (Redis) calls that failed or were skipped while it was down, by operation.",
            ),
            &["op"],
        )?;
        registry.register(Box::new(limit_rejections_total.clone()))?;
        registry.register(Box::new(limit_remaining.clone()))?;
        registry.register(Box::new(state_errors_total.clone()))?;
        Ok(GovernanceMetrics {
            limit_rejections_total,
            limit_remaining,
            state_errors_total,
        })
    }
}

impl Metrics {
    /// Builds and registers every family. Fails only on a programming error (a bad name).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests_total = IntCounterVec::new(
            Opts::new(
                "switchyard_requests_total",
                "Requests answered, by config, status class and outcome.",
            ),
            &["config", "status_class", "outcome"],
        )?;
        let request_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "switchyard_request_duration_seconds",
                "End-to-end request duration, from the request head to the last byte sent.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["config"],
        )?;
        let upstream_attempts_total = IntCounterVec::new(
            Opts::new(
                "switchyard_upstream_attempts_total",
                "Upstream attempts by config, target, provider, model and result.",
            ),
            &["config", "target", "provider", "model", "result"],
        )?;
        let upstream_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "switchyard_upstream_duration_seconds",
                "Duration of one upstream attempt, until its last byte or its failure.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["target", "provider", "model"],
        )?;
        let time_to_first_token_seconds = HistogramVec::new(
            HistogramOpts::new(
                "switchyard_time_to_first_token_seconds",
                "Streams: time from sending the upstream request to its first content event.",
            )
            .buckets(TTFT_BUCKETS.to_vec()),
            &["target", "provider", "model"],
        )?;
        let overhead_seconds = HistogramVec::new(
            HistogramOpts::new(
                "switchyard_overhead_seconds",
                "Time spent in Switchyard itself per request (total minus time waiting on upstreams).",
            )
            .buckets(OVERHEAD_BUCKETS.to_vec()),
            &["config"],
        )?;
        let config_reloads_total = IntCounterVec::new(
            Opts::new(
                "switchyard_config_reloads_total",
                "Config reloads by result (success, error).",
            ),
            &["result"],
        )?;
        let config_info = IntGaugeVec::new(
            Opts::new(
                "switchyard_config_info",
                "1 for the hash of the config being served.",
            ),
            &["hash"],
        )?;
        let inflight_requests = IntGauge::new(
            "switchyard_inflight_requests",
            "Requests (streams included) being served right now.",
        )?;
        let fallbacks_total = IntCounterVec::new(
            Opts::new(
                "switchyard_fallbacks_total",
                "Requests moved on from a target, by config, target and reason.",
            ),
            &["config", "from_target", "reason"],
        )?;
        let retries_total = IntCounterVec::new(
            Opts::new(
                "switchyard_retries_total",
                "Retries on the same target, by config, target and reason.",
            ),
            &["config", "target", "reason"],
        )?;
        let circuit_state = IntGaugeVec::new(
            Opts::new(
                "switchyard_circuit_state",
                "Circuit breaker state per target: 0 closed, 1 open, 2 half-open.",
            ),
            &["target"],
        )?;
        let console_viewers = IntGauge::new(
            "switchyard_console_viewers",
            "Console pages connected to the admin port's event stream.",
        )?;
        let console_sampling = IntGauge::new(
            "switchyard_console_sampling",
            "1 while the console samples metrics for its viewers, else 0.",
        )?;
        registry.register(Box::new(console_viewers.clone()))?;
        registry.register(Box::new(console_sampling.clone()))?;
        let guardrail_verdicts_total = IntCounterVec::new(
            Opts::new(
                "switchyard_guardrail_verdicts_total",
                "Guardrail check results by config, check and verdict (pass, warn, deny, fallback, redact).",
            ),
            &["config", "check", "verdict"],
        )?;
        registry.register(Box::new(guardrail_verdicts_total.clone()))?;
        let forward_connections_total = IntCounterVec::new(
            Opts::new(
                "switchyard_forward_connections_total",
                "Forward-proxy connections (CONNECT) and plain-HTTP proxy requests, by mode: intercept, tunnel, refused.",
            ),
            &["mode"],
        )?;
        registry.register(Box::new(forward_connections_total.clone()))?;
        for mode in ["intercept", "tunnel", "refused"] {
            forward_connections_total.with_label_values(&[mode]);
        }
        let cache_requests_total = IntCounterVec::new(
            Opts::new(
                "switchyard_cache_requests_total",
                "Requests of configs with a response cache, by config and cache result (hit, semantic_hit, miss, refresh, bypass, error).",
            ),
            &["config", "result"],
        )?;
        registry.register(Box::new(cache_requests_total.clone()))?;
        registry.register(Box::new(fallbacks_total.clone()))?;
        registry.register(Box::new(retries_total.clone()))?;
        registry.register(Box::new(circuit_state.clone()))?;
        registry.register(Box::new(requests_total.clone()))?;
        registry.register(Box::new(request_duration_seconds.clone()))?;
        registry.register(Box::new(upstream_attempts_total.clone()))?;
        registry.register(Box::new(upstream_duration_seconds.clone()))?;
        registry.register(Box::new(time_to_first_token_seconds.clone()))?;
        registry.register(Box::new(overhead_seconds.clone()))?;
        registry.register(Box::new(config_reloads_total.clone()))?;
        registry.register(Box::new(config_info.clone()))?;
        registry.register(Box::new(inflight_requests.clone()))?;
        // Both results exist from the start so `rate()` and alerts see a zero, not an absence.
        for result in ["success", "error"] {
            config_reloads_total.with_label_values(&[result]);
        }
        let genai = GenAiMetrics::new(&registry)?;
        let governance = GovernanceMetrics::new(&registry)?;
        let downstream = DownstreamMetrics::new(&registry)?;
        Ok(Metrics {
            genai,
            governance,
            registry,
            requests_total,
            request_duration_seconds,
            upstream_attempts_total,
            upstream_duration_seconds,
            time_to_first_token_seconds,
            overhead_seconds,
            config_reloads_total,
            config_info,
            inflight_requests,
            fallbacks_total,
            retries_total,
            circuit_state,
            console_viewers,
            console_sampling,
            guardrail_verdicts_total,
            forward_connections_total,
            cache_requests_total,
            downstream,
        })
    }

    /// Records which config hash is live: exactly one `switchyard_config_info` series is 1.
    pub fn set_config_hash(&self, hash: &str) {
        self.config_info.reset();
        self.config_info.with_label_values(&[hash]).set(1);
    }

    pub fn reload_succeeded(&self) {
        self.config_reloads_total
            .with_label_values(&["success"])
            .inc();
    }

    pub fn reload_failed(&self) {
        self.config_reloads_total
            .with_label_values(&["error"])
            .inc();
    }

    /// The text exposition format of every family.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// The proxy listener's connections (`server::downstream`).
pub struct DownstreamMetrics {
    /// `switchyard_downstream_connections`: open proxy-listener connections.
    pub open: IntGauge,
    /// `switchyard_downstream_closed_total{reason}`: connections the gateway cut.
    pub closed_total: IntCounterVec,
}

impl DownstreamMetrics {
    /// Every `reason` of `switchyard_downstream_closed_total`.
    pub const REASONS: [&'static str; 5] = [
        "over_capacity",
        "header_timeout",
        "header_too_large",
        "body_too_slow",
        "write_stalled",
    ];

    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let open = IntGauge::new(
            "switchyard_downstream_connections",
            "Open connections on the proxy listener.",
        )?;
        registry.register(Box::new(open.clone()))?;
        let closed_total = IntCounterVec::new(
            Opts::new(
                "switchyard_downstream_closed_total",
                "Proxy-listener connections closed by the gateway, by reason: over_capacity, header_timeout, header_too_large, body_too_slow, write_stalled.",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(closed_total.clone()))?;
        for reason in Self::REASONS {
            closed_total.with_label_values(&[reason]);
        }
        Ok(DownstreamMetrics { open, closed_total })
    }
}
