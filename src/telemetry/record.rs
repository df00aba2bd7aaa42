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

/// How one upstream attempt ended. [`AttemptResult::as_str`] is its label everywhere it is
/// reported — the `result` of `switchyard_upstream_attempts_total` (and `reason` of
/// `switchyard_fallbacks_total` / `switchyard_retries_total`), the access log, the OTLP
/// attempt span's `switchyard.attempt.result` / `error.type`, the console — so the strings
/// are part of our interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AttemptResult {
    /// Reached the commit point and (for a stream) ended cleanly; also what an attempt's record
    /// starts as, until it fails.
    #[default]
    Ok,
    /// The provider answered 429.
    Status429,
    /// Another 4xx.
    Status4xx,
    /// A 5xx (or any other non-2xx).
    Status5xx,
    TimeoutConnect,
    TimeoutHeaders,
    /// No first content event in time.
    TimeoutTtft,
    /// A stream went quiet between events.
    TimeoutIdle,
    TimeoutTotal,
    /// DNS, connect, TLS, or a reset before the response head.
    ConnectError,
    /// A stream that failed: an error event, no content, a reset or malformed framing.
    StreamError,
    /// A conditional group matched no condition and has no default.
    NoRoute,
    /// The answer failed an output guardrail.
    GuardrailFailed,
    /// Skipped: the target's circuit is open (never sent).
    CircuitOpen,
    /// A hedged attempt that lost the race and was dropped.
    HedgeLost,
}

impl AttemptResult {
    /// Every result, in declaration order.
    pub const ALL: [AttemptResult; 15] = [
        AttemptResult::Ok,
        AttemptResult::Status429,
        AttemptResult::Status4xx,
        AttemptResult::Status5xx,
        AttemptResult::TimeoutConnect,
        AttemptResult::TimeoutHeaders,
        AttemptResult::TimeoutTtft,
        AttemptResult::TimeoutIdle,
        AttemptResult::TimeoutTotal,
        AttemptResult::ConnectError,
        AttemptResult::StreamError,
        AttemptResult::NoRoute,
        AttemptResult::GuardrailFailed,
        AttemptResult::CircuitOpen,
        AttemptResult::HedgeLost,
    ];

    /// Its label: `ok`, `status_429`, `timeout_ttft`, `circuit_open`, …
    pub const fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Ok => "ok",
            AttemptResult::Status429 => "status_429",
            AttemptResult::Status4xx => "status_4xx",
            AttemptResult::Status5xx => "status_5xx",
            AttemptResult::TimeoutConnect => "timeout_connect",
            AttemptResult::TimeoutHeaders => "timeout_headers",
            AttemptResult::TimeoutTtft => "timeout_ttft",
            AttemptResult::TimeoutIdle => "timeout_idle",
            AttemptResult::TimeoutTotal => "timeout_total",
            AttemptResult::ConnectError => "connect_error",
            AttemptResult::StreamError => "stream_error",
            AttemptResult::NoRoute => "no_route",
            AttemptResult::GuardrailFailed => "guardrail_failed",
            AttemptResult::CircuitOpen => "circuit_open",
            AttemptResult::HedgeLost => "hedge_lost",
        }
    }

    /// The result whose label is `label` (as read back from a metric series).
    pub fn from_label(label: &str) -> Option<AttemptResult> {
        Self::ALL.into_iter().find(|r| r.as_str() == label)
    }

    /// A deadline passed (`timeout_*`).
    pub fn is_timeout(self) -> bool {
        matches!(
            self,
            AttemptResult::TimeoutConnect
                | AttemptResult::TimeoutHeaders
                | AttemptResult::TimeoutTtft
                | AttemptResult::TimeoutIdle
                | AttemptResult::TimeoutTotal
        )
    }

    /// Never sent, or dropped unfinished: skipped for an open circuit, or a lost hedge. Not a
    /// call of the provider's in GenAI metrics.
    pub fn is_skipped(self) -> bool {
        matches!(self, AttemptResult::CircuitOpen | AttemptResult::HedgeLost)
    }
}

impl std::fmt::Display for AttemptResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// How it ended: `ok` or why not (its label is the `result` of
    /// `switchyard_upstream_attempts_total`).
    pub result: AttemptResult,
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
    /// The caller's own span (`x-portkey-span-id`, `-parent-span-id`, `-span-name`), as sent.
    pub client_span: Option<ClientSpan>,
}

/// Longest client span id or name kept, in bytes.
const MAX_CLIENT_SPAN_FIELD: usize = 128;

/// A span of the caller's own trace tree, named in Portkey's headers; recorded on the access-log
/// line and as attributes of the request's OTLP span.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ClientSpan {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_name: Option<String>,
}

impl ClientSpan {
    /// `x-portkey-span-id`, `x-portkey-parent-span-id`, `x-portkey-span-name`: each kept when
    /// it is 1 to 128 bytes of printable ASCII, else ignored; `None` when none is kept.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<ClientSpan> {
        use http::HeaderName;
        // Parsed once: a lookup by `&str` parses the name first.
        static NAMES: [HeaderName; 3] = [
            HeaderName::from_static("x-portkey-span-id"),
            HeaderName::from_static("x-portkey-parent-span-id"),
            HeaderName::from_static("x-portkey-span-name"),
        ];
        let field = |name: &HeaderName| {
            let v = headers.get(name)?.to_str().ok()?.trim();
            let ok = !v.is_empty()
                && v.len() <= MAX_CLIENT_SPAN_FIELD
                && v.bytes().all(|b| (0x20..0x7f).contains(&b));
            ok.then(|| v.to_string())
        };
        let span = ClientSpan {
            span_id: field(&NAMES[0]),
            parent_span_id: field(&NAMES[1]),
            span_name: field(&NAMES[2]),
        };
        (span != ClientSpan::default()).then_some(span)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bodies {
    pub request: String,
    pub response: String,
}

#[cfg(test)]
mod tests {
    use super::AttemptResult;

    #[test]
    fn client_spans_keep_only_bounded_printable_values() {
        use super::ClientSpan;
        let mut h = http::HeaderMap::new();
        assert_eq!(ClientSpan::from_headers(&h), None);
        h.insert("x-portkey-span-id", "a".repeat(129).parse().unwrap());
        h.insert("x-portkey-span-name", "  ".parse().unwrap());
        h.insert(
            "x-portkey-parent-span-id",
            http::HeaderValue::from_bytes(b"p\xe9re").unwrap(),
        );
        assert_eq!(
            ClientSpan::from_headers(&h),
            None,
            "too long, blank, not ASCII"
        );
        h.insert("x-portkey-span-id", "a".repeat(128).parse().unwrap());
        h.insert("x-portkey-span-name", " step 2 ".parse().unwrap());
        let span = ClientSpan::from_headers(&h).unwrap();
        assert_eq!(span.span_id.as_deref().map(str::len), Some(128));
        assert_eq!(span.span_name.as_deref(), Some("step 2"));
        assert_eq!(span.parent_span_id, None);
    }

    #[test]
    fn labels_are_distinct_and_read_back() {
        for r in AttemptResult::ALL {
            assert_eq!(AttemptResult::from_label(r.as_str()), Some(r));
            assert_eq!(r.is_timeout(), r.as_str().starts_with("timeout_"), "{r}");
        }
        assert_eq!(AttemptResult::from_label("other"), None);
    }
}
