//! Token, cost and GenAI metrics: the OpenTelemetry GenAI semantic-convention client metrics
//! (names with dots as underscores, their units and bucket boundaries) and our own counters of
//! tokens, spend, feedback and dropped access-log lines. Label values are bounded: models come
//! from the config (else `other`), providers are kinds, configs and virtual keys are config
//! names.

use prometheus::{CounterVec, HistogramVec, IntCounter, IntCounterVec, Registry};

use super::metrics::family::Family;
use super::metrics::labels::{
    FeedbackLabels, GenAiCallLabels, GenAiLabels, GenAiTokenLabels, SpendLabels, TokenLabels,
};

use crate::providers::Usage;

/// `gen_ai.client.operation.duration` (s).
const OPERATION_BUCKETS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// `gen_ai.client.token.usage` ({token}).
const TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];
/// `gen_ai.client.operation.time_to_first_chunk` (s).
const FIRST_CHUNK_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// `gen_ai.client.operation.time_per_output_chunk` (s).
const PER_CHUNK_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
];

pub struct GenAiMetrics {
    pub operation_duration: Family<HistogramVec, GenAiCallLabels<'static>, 4>,
    pub token_usage: Family<HistogramVec, GenAiTokenLabels<'static>, 4>,
    pub time_to_first_chunk: Family<HistogramVec, GenAiLabels<'static>, 3>,
    pub time_per_output_chunk: Family<HistogramVec, GenAiLabels<'static>, 3>,
    pub tokens_total: Family<IntCounterVec, TokenLabels<'static>, 4>,
    pub cost_usd_total: Family<CounterVec, SpendLabels<'static>, 2>,
    pub cost_unknown_total: Family<IntCounterVec, SpendLabels<'static>, 2>,
    pub feedback_total: Family<IntCounterVec, FeedbackLabels<'static>, 2>,
    /// Updates by `PUT /v1/feedback/{id}`, by config and the new value.
    pub feedback_updates_total: Family<IntCounterVec, FeedbackLabels<'static>, 2>,
    pub access_log_dropped_total: IntCounter,
}

impl GenAiMetrics {
    pub fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let access_log_dropped_total = IntCounter::new(
            "switchyard_access_log_dropped_total",
            "Access-log lines dropped because the writer fell behind (logging never blocks requests).",
        )?;
        r.register(Box::new(access_log_dropped_total.clone()))?;
        Ok(GenAiMetrics {
            operation_duration: Family::histogram(
                r,
                "gen_ai_client_operation_duration_seconds",
                "GenAI operation duration per upstream call (OpenTelemetry gen_ai.client.operation.duration).",
                OPERATION_BUCKETS,
            )?,
            token_usage: Family::histogram(
                r,
                "gen_ai_client_token_usage",
                "Tokens per upstream call by type input/output (OpenTelemetry gen_ai.client.token.usage).",
                TOKEN_BUCKETS,
            )?,
            time_to_first_chunk: Family::histogram(
                r,
                "gen_ai_client_operation_time_to_first_chunk_seconds",
                "Time to the first content chunk of a stream (OpenTelemetry gen_ai.client.operation.time_to_first_chunk).",
                FIRST_CHUNK_BUCKETS,
            )?,
            time_per_output_chunk: Family::histogram(
                r,
                "gen_ai_client_operation_time_per_output_chunk_seconds",
                "Mean time between output chunks after the first, per stream (OpenTelemetry gen_ai.client.operation.time_per_output_chunk).",
                PER_CHUNK_BUCKETS,
            )?,
            tokens_total: Family::counter(
                r,
                "switchyard_tokens_total",
                "Tokens used, by config, provider, model and type (input, output, cached, reasoning).",
            )?,
            cost_usd_total: Family::float_counter(
                r,
                "switchyard_cost_usd_total",
                "Spend in USD from the price table, by config and virtual key.",
            )?,
            cost_unknown_total: Family::counter(
                r,
                "switchyard_cost_unknown_total",
                "Requests with usage whose model has no price (their cost is unknown, not zero).",
            )?,
            feedback_total: Family::counter(
                r,
                "switchyard_feedback_total",
                "Feedback posted to /v1/feedback, by config and value (-10..10).",
            )?,
            feedback_updates_total: Family::counter(
                r,
                "switchyard_feedback_updates_total",
                "Feedback updated by PUT /v1/feedback/{id}, by config and new value (-10..10).",
            )?,
            access_log_dropped_total,
        })
    }

    /// Token metrics of one answered call.
    pub fn record_usage(
        &self,
        operation: &str,
        provider_kind: &str,
        config: &str,
        provider: &str,
        model: &str,
        usage: &Usage,
    ) {
        for (kind, n) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
        ] {
            self.token_usage
                .with(&GenAiTokenLabels {
                    operation,
                    provider: provider_kind,
                    model,
                    token_type: kind,
                })
                .observe(n as f64);
        }
        for (kind, n) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cached", usage.cached_tokens),
            ("reasoning", usage.reasoning_tokens),
        ] {
            if n > 0 || kind == "input" || kind == "output" {
                self.tokens_total
                    .with(&TokenLabels {
                        config,
                        provider,
                        model,
                        kind,
                    })
                    .inc_by(n);
            }
        }
    }
}
