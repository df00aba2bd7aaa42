//! What one request did: its trace context and a [`RequestRecord`] built along the request path
//! and handed over once, when the request ends, to every consumer — the access log, the OTLP
//! exporter, the console. Consumers never see prompt or completion text unless the record
//! carries it (`log_bodies`), and never a credential.

use std::time::{Duration, SystemTime};

use crate::providers::Usage;

/// W3C trace context of one request: its trace, the span the gateway opens for the request,
/// and the caller's span when it sent `traceparent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The request span (ours).
    pub span_id: [u8; 8],
    /// The caller's span, from its `traceparent`.
    pub parent_span_id: Option<[u8; 8]>,
    pub sampled: bool,
    /// The id shown to users (`x-portkey-trace-id` / `x-switchyard-trace-id`): the caller's own
    /// `x-portkey-trace-id` when it sent one (any printable string, bounded), else the W3C trace
    /// id in hex.
    pub display_id: String,
}

/// One upstream attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// The attempt's span (child of the request span).
    pub span_id: [u8; 8],
    /// Option-index path of the target (`config.targets[1]`).
    pub target: String,
    /// The provider's name under `providers:`.
    pub provider: String,
    /// `openai`, `anthropic`, … (`gen_ai.provider.name`).
    pub provider_kind: &'static str,
    /// The model asked of the provider.
    pub request_model: Option<String>,
    /// The model the provider says answered.
    pub response_model: Option<String>,
    /// The provider's HTTP status, when it answered.
    pub status: Option<u16>,
    /// `ok` or the failure label (`status_5xx`, `timeout_ttft`, `circuit_open`, …).
    pub result: &'static str,
    pub start: SystemTime,
    /// Time to a connection (pooled or new).
    pub connect: Option<Duration>,
    /// Time to the response headers.
    pub headers: Option<Duration>,
    /// Time to the first content event (streams).
    pub first_token: Option<Duration>,
    pub total: Duration,
    pub usage: Option<Usage>,
}

/// One request, end to end.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub trace: TraceContext,
    pub start: SystemTime,
    pub duration: Duration,
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// `chat`, `embeddings`, `text_completion`, … (`gen_ai.operation.name`).
    pub operation: &'static str,
    pub config: String,
    pub virtual_key: Option<String>,
    pub request_model: Option<String>,
    pub response_model: Option<String>,
    pub stream: bool,
    pub status: u16,
    /// `ok`, `fallback_ok`, `error`, `timeout`, `rejected`, `stream_aborted`, `client_closed`, `client_stalled`.
    pub outcome: &'static str,
    pub attempts: Vec<AttemptRecord>,
    pub usage: Option<Usage>,
    /// USD; `None` when the model has no price (unknown, not zero).
    pub cost_usd: Option<f64>,
    /// `HIT`, `SEMANTIC HIT`, `MISS`, `REFRESH`, `DISABLED`.
    pub cache: &'static str,
    /// `x-portkey-metadata`, as sent (a JSON object, bounded in size).
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Prompt and completion text, only with `log_bodies: true` and without
    /// `x-switchyard-log: off`.
    pub bodies: Option<Bodies>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bodies {
    pub request: String,
    pub response: String,
}
