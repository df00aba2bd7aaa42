//! The spans of a finished request: one SERVER span for the request and one CLIENT span per
//! upstream attempt, with the OpenTelemetry GenAI semantic-convention attributes, plus
//! zero-duration event spans (feedback). Bodies are never exported.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};

use crate::providers::Usage;
use crate::telemetry::record::{AttemptRecord, AttemptResult, RequestRecord, TraceContext};

/// At most this many metadata keys become span attributes.
pub const MAX_METADATA_KEYS: usize = 16;
/// Metadata values (and event string values) are cut to this many characters.
pub const MAX_ATTR_VALUE_CHARS: usize = 256;
const MAX_METADATA_KEY_CHARS: usize = 64;
const MAX_EVENT_ATTRS: usize = 32;

/// W3C trace flags: sampled.
pub(super) const FLAG_SAMPLED: u32 = 0x01;
/// OTLP span flags: whether the parent is remote is known (bit 8) and it is (bit 9).
pub(super) const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// A span attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    String(String),
    Int(i64),
    Double(f64),
    Bool(bool),
}

impl From<&str> for AttrValue {
    fn from(v: &str) -> Self {
        AttrValue::String(v.to_string())
    }
}

impl From<String> for AttrValue {
    fn from(v: String) -> Self {
        AttrValue::String(v)
    }
}

impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        AttrValue::Int(v)
    }
}

impl From<u64> for AttrValue {
    fn from(v: u64) -> Self {
        AttrValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<f64> for AttrValue {
    fn from(v: f64) -> Self {
        AttrValue::Double(v)
    }
}

impl From<bool> for AttrValue {
    fn from(v: bool) -> Self {
        AttrValue::Bool(v)
    }
}

impl From<AttrValue> for any_value::Value {
    fn from(v: AttrValue) -> Self {
        match v {
            AttrValue::String(s) => any_value::Value::StringValue(s),
            AttrValue::Int(i) => any_value::Value::IntValue(i),
            AttrValue::Double(d) => any_value::Value::DoubleValue(d),
            AttrValue::Bool(b) => any_value::Value::BoolValue(b),
        }
    }
}

/// `gen_ai.provider.name` for a provider kind: the semantic-convention value where there is
/// one (`openai`, `anthropic`, `gcp.gemini`, `azure.ai.openai`), else the kind itself.
pub fn gen_ai_provider_name(kind: &str) -> &str {
    match kind {
        "gemini" => "gcp.gemini",
        "azure-openai" => "azure.ai.openai",
        other => other,
    }
}

pub(super) fn kv(key: impl Into<String>, value: impl Into<AttrValue>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(value.into().into()),
        }),
        ..Default::default()
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn end_nanos(start: SystemTime, took: Duration) -> u64 {
    unix_nanos(start).saturating_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX))
}

pub(super) fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

fn span_name(operation: &str, model: Option<&str>) -> String {
    match model {
        Some(model) if !model.is_empty() => format!("{operation} {model}"),
        _ => operation.to_string(),
    }
}

fn error_status(error_type: &str) -> Status {
    Status {
        message: error_type.to_string(),
        code: StatusCode::Error as i32,
    }
}

fn push_usage(attrs: &mut Vec<KeyValue>, usage: &Usage) {
    attrs.push(kv("gen_ai.usage.input_tokens", usage.input_tokens));
    attrs.push(kv("gen_ai.usage.output_tokens", usage.output_tokens));
    if usage.cached_tokens > 0 {
        attrs.push(kv(
            "gen_ai.usage.cache_read.input_tokens",
            usage.cached_tokens,
        ));
    }
    if usage.cache_creation_tokens > 0 {
        attrs.push(kv(
            "gen_ai.usage.cache_creation.input_tokens",
            usage.cache_creation_tokens,
        ));
    }
    if usage.reasoning_tokens > 0 {
        attrs.push(kv(
            "switchyard.usage.reasoning_tokens",
            usage.reasoning_tokens,
        ));
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `error.type` of a request, when it failed: its outcome unless that is a success, else its
/// status when that is a 5xx.
fn request_error(record: &RequestRecord) -> Option<String> {
    match record.outcome {
        "ok" | "fallback_ok" if record.status >= 500 => Some(record.status.to_string()),
        "ok" | "fallback_ok" | "cache_hit" => None,
        other => Some(other.to_string()),
    }
}

/// The spans of one request: the SERVER span first, then one CLIENT span per attempt.
pub fn record_spans(record: &RequestRecord) -> Vec<Span> {
    let mut spans = Vec::with_capacity(1 + record.attempts.len());
    spans.push(request_span(record));
    spans.extend(record.attempts.iter().map(|a| attempt_span(record, a)));
    spans
}

pub(super) fn request_span(record: &RequestRecord) -> Span {
    let trace = &record.trace;
    let error = request_error(record);
    let mut attrs = request_attrs(record);
    if let Some(error) = &error {
        attrs.push(kv("error.type", error.as_str()));
    }
    if let Some(metadata) = &record.metadata {
        push_metadata(&mut attrs, metadata);
    }
    if let Some(span) = &record.client_span {
        let fields = [
            ("switchyard.client_span.id", &span.span_id),
            ("switchyard.client_span.parent_id", &span.parent_span_id),
            ("switchyard.client_span.name", &span.span_name),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                attrs.push(kv(key, v.as_str()));
            }
        }
    }
    let (parent_span_id, flags) = match trace.parent_span_id {
        Some(parent) => (
            parent.to_vec(),
            FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE,
        ),
        None => (Vec::new(), FLAG_SAMPLED | FLAG_HAS_IS_REMOTE),
    };
    Span {
        trace_id: trace.trace_id.to_vec(),
        span_id: trace.span_id.to_vec(),
        parent_span_id,
        flags,
        name: span_name(record.operation, record.request_model.as_deref()),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: unix_nanos(record.start),
        end_time_unix_nano: end_nanos(record.start, record.duration),
        attributes: attrs,
        status: error.as_deref().map(error_status),
        ..Default::default()
    }
}

/// The request span's attributes, up to (not including) `error.type` and the metadata.
fn request_attrs(record: &RequestRecord) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(24);
    attrs.push(kv("gen_ai.operation.name", record.operation));
    if let Some(last) = record.attempts.last() {
        attrs.push(kv(
            "gen_ai.provider.name",
            gen_ai_provider_name(last.provider_kind),
        ));
    }
    if let Some(model) = &record.request_model {
        attrs.push(kv("gen_ai.request.model", model.as_str()));
    }
    if let Some(model) = &record.response_model {
        attrs.push(kv("gen_ai.response.model", model.as_str()));
    }
    if let Some(usage) = &record.usage {
        push_usage(&mut attrs, usage);
    }
    attrs.push(kv("http.request.method", record.method.as_str()));
    attrs.push(kv("url.path", record.path.as_str()));
    attrs.push(kv("http.response.status_code", i64::from(record.status)));
    attrs.push(kv("switchyard.config", record.config.as_str()));
    attrs.push(kv("switchyard.outcome", record.outcome));
    if let Some(key) = &record.virtual_key {
        attrs.push(kv("switchyard.virtual_key", key.as_str()));
    }
    attrs.push(kv("switchyard.stream", record.stream));
    attrs.push(kv("switchyard.cache", record.cache));
    attrs.push(kv("switchyard.attempts", record.attempts.len() as u64));
    if let Some(cost) = record.cost_usd {
        attrs.push(kv("switchyard.cost_usd", cost));
    }
    let trace = &record.trace;
    if trace.display_id != hex::encode(trace.trace_id) {
        attrs.push(kv("switchyard.trace_id", trace.display_id.as_str()));
    }
    attrs
}

/// `switchyard.metadata.<key>` for the first [`MAX_METADATA_KEYS`] keys, keys and values cut.
fn push_metadata(attrs: &mut Vec<KeyValue>, metadata: &serde_json::Map<String, serde_json::Value>) {
    for (key, value) in metadata.iter().take(MAX_METADATA_KEYS) {
        let text = match value {
            serde_json::Value::String(s) => truncate_chars(s, MAX_ATTR_VALUE_CHARS).to_string(),
            other => truncate_chars(&other.to_string(), MAX_ATTR_VALUE_CHARS).to_string(),
        };
        attrs.push(kv(
            format!(
                "switchyard.metadata.{}",
                truncate_chars(key, MAX_METADATA_KEY_CHARS)
            ),
            text,
        ));
    }
}

fn attempt_span(record: &RequestRecord, attempt: &AttemptRecord) -> Span {
    let request_model = attempt
        .request_model
        .as_deref()
        .or(record.request_model.as_deref());
    let mut attrs = Vec::with_capacity(16);
    attrs.push(kv("gen_ai.operation.name", record.operation));
    attrs.push(kv(
        "gen_ai.provider.name",
        gen_ai_provider_name(attempt.provider_kind),
    ));
    if let Some(model) = request_model {
        attrs.push(kv("gen_ai.request.model", model));
    }
    if let Some(model) = &attempt.response_model {
        attrs.push(kv("gen_ai.response.model", model.as_str()));
    }
    if let Some(usage) = &attempt.usage {
        push_usage(&mut attrs, usage);
    }
    if let Some(status) = attempt.status {
        attrs.push(kv("http.response.status_code", i64::from(status)));
    }
    attrs.push(kv("switchyard.config", record.config.as_str()));
    attrs.push(kv("switchyard.target", attempt.target.as_str()));
    attrs.push(kv("switchyard.provider", attempt.provider.as_str()));
    attrs.push(kv("switchyard.attempt.result", attempt.result.as_str()));
    if let Some(d) = attempt.connect {
        attrs.push(kv("switchyard.connect_ms", millis(d)));
    }
    if let Some(d) = attempt.headers {
        attrs.push(kv("switchyard.headers_ms", millis(d)));
    }
    if let Some(d) = attempt.first_token {
        attrs.push(kv("switchyard.first_token_ms", millis(d)));
    }
    let failed = attempt.result != AttemptResult::Ok;
    if failed {
        attrs.push(kv("error.type", attempt.result.as_str()));
    }
    Span {
        trace_id: record.trace.trace_id.to_vec(),
        span_id: attempt.span_id.to_vec(),
        parent_span_id: record.trace.span_id.to_vec(),
        flags: FLAG_SAMPLED | FLAG_HAS_IS_REMOTE,
        name: span_name(record.operation, request_model),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: unix_nanos(attempt.start),
        end_time_unix_nano: end_nanos(attempt.start, attempt.total),
        attributes: attrs,
        status: failed.then(|| error_status(attempt.result.as_str())),
        ..Default::default()
    }
}

/// A zero-duration INTERNAL span named `name` in `trace`, child of its request span.
pub(super) fn event_span(
    trace: &TraceContext,
    name: &str,
    attrs: Vec<(String, AttrValue)>,
) -> Span {
    let now = unix_nanos(SystemTime::now());
    let mut span_id: [u8; 8] = rand::random();
    if span_id == [0; 8] {
        span_id[7] = 1;
    }
    let attributes = attrs
        .into_iter()
        .take(MAX_EVENT_ATTRS)
        .map(|(key, value)| {
            let value = match value {
                AttrValue::String(s) => {
                    AttrValue::String(truncate_chars(&s, MAX_ATTR_VALUE_CHARS).to_string())
                }
                other => other,
            };
            kv(key, value)
        })
        .collect();
    Span {
        trace_id: trace.trace_id.to_vec(),
        span_id: span_id.to_vec(),
        parent_span_id: trace.span_id.to_vec(),
        flags: FLAG_SAMPLED | FLAG_HAS_IS_REMOTE,
        name: name.to_string(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: now,
        end_time_unix_nano: now,
        attributes,
        ..Default::default()
    }
}
