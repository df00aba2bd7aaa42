//! OTLP trace export, off unless configured: the exporter settings (from the standard `OTEL_*`
//! variables or the config file), the mapping of a finished [`RequestRecord`] to one SERVER span
//! for the request and one CLIENT span per upstream attempt with the OpenTelemetry GenAI
//! semantic-convention attributes, and the [`OtlpExporter`] that ships them as OTLP/HTTP
//! protobuf from its own thread.
//!
//! The request path only converts a record and pushes it into a bounded queue; when the queue is
//! full the record is dropped and counted, never waited for. Bodies are never exported, and
//! header values (which may carry API keys) are never logged or printed.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderMap, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use tokio::sync::mpsc;

use super::record::{AttemptRecord, AttemptResult, RequestRecord, TraceContext};
use crate::providers::Usage;

/// `service.name` when neither the settings nor the environment name one.
pub const DEFAULT_SERVICE_NAME: &str = "switchyard";
/// Per-export timeout when `OTEL_EXPORTER_OTLP_TIMEOUT` is not set (the OTLP default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Where traces go when `OTEL_TRACES_EXPORTER=otlp` names no endpoint (the OTLP/HTTP default).
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4318/v1/traces";

/// At most this many metadata keys become span attributes.
pub const MAX_METADATA_KEYS: usize = 16;
/// Metadata values (and event string values) are cut to this many characters.
pub const MAX_ATTR_VALUE_CHARS: usize = 256;
const MAX_METADATA_KEY_CHARS: usize = 64;
const MAX_EVENT_ATTRS: usize = 32;
/// How much of a collector's answer is read before the connection is reused.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Export failures are logged at most this often.
const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// W3C trace flags: sampled.
const FLAG_SAMPLED: u32 = 0x01;
/// OTLP span flags: whether the parent is remote is known (bit 8) and it is (bit 9).
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// Where and how to send traces.
#[derive(Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The full traces URL (`http://collector:4318/v1/traces`); `http` or `https`.
    pub endpoint: String,
    /// Sent with every export (e.g. `authorization`). Never logged.
    pub headers: Vec<(String, String)>,
    /// The resource's `service.name`.
    pub service_name: String,
    /// Per export request, connect to answer.
    pub timeout: Duration,
}

impl fmt::Debug for OtlpSettings {
    // Header values may be credentials: show only their names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("OtlpSettings")
            .field("endpoint", &redact_userinfo(&self.endpoint))
            .field("headers", &names)
            .field("service_name", &self.service_name)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl OtlpSettings {
    /// Settings for `endpoint` (the full traces URL) with the defaults: no headers,
    /// `service.name` `switchyard`, a 10 s timeout.
    pub fn new(endpoint: impl Into<String>) -> Self {
        OtlpSettings {
            endpoint: endpoint.into(),
            headers: Vec::new(),
            service_name: DEFAULT_SERVICE_NAME.to_string(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// From the process environment; see [`OtlpSettings::from_lookup`].
    pub fn from_env() -> Option<Self> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// From the standard OpenTelemetry variables, read through `get`. `None` (export off) unless
    /// an endpoint is given (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as-is, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`) or `OTEL_TRACES_EXPORTER` names `otlp`
    /// (then the default `localhost:4318`); also `None` with `OTEL_SDK_DISABLED=true`,
    /// `OTEL_TRACES_EXPORTER=none` (or a list without `otlp`), or a protocol other than
    /// `http/protobuf`. Headers come from `OTEL_EXPORTER_OTLP_HEADERS` overridden per name by
    /// `OTEL_EXPORTER_OTLP_TRACES_HEADERS` (`k=v,k2=v2`, values percent-decoded); the timeout
    /// from `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` / `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds);
    /// the service name from `OTEL_SERVICE_NAME`, else `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`, else `switchyard`.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Option<Self> {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return None;
        }
        let otlp_named = match var("OTEL_TRACES_EXPORTER") {
            Some(list) => {
                let names: Vec<String> = list
                    .split(',')
                    .map(|n| n.trim().to_ascii_lowercase())
                    .collect();
                if names.iter().any(|n| n == "none") || !names.iter().any(|n| n == "otlp") {
                    return None;
                }
                true
            }
            None => false,
        };
        let endpoint = if let Some(url) = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            url
        } else if let Some(base) = var("OTEL_EXPORTER_OTLP_ENDPOINT") {
            format!("{}/v1/traces", base.trim_end_matches('/'))
        } else if otlp_named {
            DEFAULT_ENDPOINT.to_string()
        } else {
            return None;
        };
        let protocol = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"));
        if let Some(protocol) = protocol {
            if protocol != "http/protobuf" {
                tracing::warn!(
                    %protocol,
                    "OTLP trace export off: only the http/protobuf protocol is supported"
                );
                return None;
            }
        }

        let mut headers = var("OTEL_EXPORTER_OTLP_HEADERS")
            .map(|v| parse_headers(&v))
            .unwrap_or_default();
        for (name, value) in var("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            .map(|v| parse_headers(&v))
            .unwrap_or_default()
        {
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
            headers.push((name, value));
        }

        let timeout = match var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
            .or_else(|| var("OTEL_EXPORTER_OTLP_TIMEOUT"))
        {
            None => DEFAULT_TIMEOUT,
            Some(raw) => match raw.parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    tracing::warn!(
                        value = %raw,
                        "OTEL_EXPORTER_OTLP_TIMEOUT is not a positive number of milliseconds; \
                         using 10000"
                    );
                    DEFAULT_TIMEOUT
                }
            },
        };

        let service_name = var("OTEL_SERVICE_NAME")
            .or_else(|| {
                var("OTEL_RESOURCE_ATTRIBUTES").and_then(|attrs| {
                    parse_headers(&attrs)
                        .into_iter()
                        .find(|(k, _)| k == "service.name")
                        .map(|(_, v)| v)
                        .filter(|v| !v.is_empty())
                })
            })
            .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string());

        Some(OtlpSettings {
            endpoint,
            headers,
            service_name,
            timeout,
        })
    }
}

/// `k=v,k2=v2` with percent-encoded values (the OTLP headers and resource attributes format).
/// Pairs without `=`, with an empty key, or whose value does not decode to UTF-8 are skipped.
fn parse_headers(raw: &str) -> Vec<(String, String)> {
    raw.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            if k.is_empty() {
                return None;
            }
            Some((k.to_string(), percent_decode(v.trim())?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// An endpoint string with any `user:password@` replaced, for messages.
fn redact_userinfo(endpoint: &str) -> String {
    let Some(scheme_end) = endpoint.find("://") else {
        return endpoint.to_string();
    };
    let rest = &endpoint[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &endpoint[..scheme_end + 3], &rest[at + 1..]),
        None => endpoint.to_string(),
    }
}

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("OTLP endpoint {endpoint}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("OTLP header {name:?} is not a valid HTTP header (its value is not shown)")]
    Header { name: String },
    #[error("OTLP exporter: cannot set up TLS for {endpoint}: {reason}")]
    Tls { endpoint: String, reason: String },
    #[error("OTLP exporter: cannot start its runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("OTLP exporter: cannot spawn its thread: {0}")]
    Thread(#[source] std::io::Error),
}

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

fn kv(key: impl Into<String>, value: impl Into<AttrValue>) -> KeyValue {
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

fn truncate_chars(s: &str, max: usize) -> &str {
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

fn request_span(record: &RequestRecord) -> Span {
    let trace = &record.trace;
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
    if trace.display_id != hex::encode(trace.trace_id) {
        attrs.push(kv("switchyard.trace_id", trace.display_id.as_str()));
    }
    let error = request_error(record);
    if let Some(error) = &error {
        attrs.push(kv("error.type", error.as_str()));
    }
    if let Some(metadata) = &record.metadata {
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
fn event_span(trace: &TraceContext, name: &str, attrs: Vec<(String, AttrValue)>) -> Span {
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

/// Queue and batch sizes of an [`OtlpExporter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportOptions {
    /// Records (or events) waiting to be sent; past this they are dropped and counted.
    pub queue_records: usize,
    /// Spans per export request at most.
    pub batch_spans: usize,
    /// A partial batch is sent after this long.
    pub interval: Duration,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            queue_records: 2048,
            batch_spans: 512,
            interval: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Default)]
struct Stats {
    dropped: AtomicU64,
    failed_exports: AtomicU64,
    exported_spans: AtomicU64,
}

enum Control {
    Flush(std::sync::mpsc::Sender<()>),
}

/// Ships spans to an OTLP/HTTP collector from a background thread. Cloning shares the queue;
/// the thread sends what is left and ends once every clone is dropped.
#[derive(Clone)]
pub struct OtlpExporter {
    queue: mpsc::Sender<Vec<Span>>,
    control: mpsc::UnboundedSender<Control>,
    stats: Arc<Stats>,
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("dropped", &self.dropped())
            .field("failed_exports", &self.failed_exports())
            .field("exported_spans", &self.exported_spans())
            .finish()
    }
}

impl OtlpExporter {
    /// Starts the exporter thread with the default queue (2048 records) and batching (512 spans
    /// or 1 s).
    pub fn start(settings: OtlpSettings) -> Result<OtlpExporter, OtlpError> {
        Self::start_with(settings, ExportOptions::default())
    }

    /// Starts the exporter thread: its own current-thread tokio runtime, so it works from any
    /// thread or runtime. Fails on an unusable endpoint or header, never later.
    pub fn start_with(
        settings: OtlpSettings,
        options: ExportOptions,
    ) -> Result<OtlpExporter, OtlpError> {
        let target = Target::new(&settings)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(OtlpError::Runtime)?;
        let options = ExportOptions {
            queue_records: options.queue_records.max(1),
            batch_spans: options.batch_spans.max(1),
            interval: options.interval.max(Duration::from_millis(10)),
        };
        let (queue, rx) = mpsc::channel(options.queue_records);
        let (control, control_rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        let worker = Worker {
            client: Client {
                target,
                sender: None,
                timeout: settings.timeout,
            },
            resource: Resource {
                attributes: vec![kv("service.name", settings.service_name.clone())],
                ..Default::default()
            },
            stats: stats.clone(),
            options,
            warned_at: None,
            failures_since_warn: 0,
        };
        std::thread::Builder::new()
            .name("switchyard-otlp".to_string())
            .spawn(move || runtime.block_on(worker.run(rx, control_rx)))
            .map_err(OtlpError::Thread)?;
        Ok(OtlpExporter {
            queue,
            control,
            stats,
        })
    }

    /// Queues the spans of a finished request; unsampled records are skipped. Never blocks: a
    /// full queue drops the record and counts it in [`OtlpExporter::dropped`].
    pub fn export(&self, record: &RequestRecord) {
        if !record.trace.sampled {
            return;
        }
        if self.queue.capacity() == 0 {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.push(record_spans(record));
    }

    /// Queues a zero-duration span `name` (e.g. `gen_ai.feedback`) in `trace`, child of its
    /// request span, with `attrs` (at most 32; strings cut to 256 characters). Skipped when the
    /// trace is not sampled; never blocks.
    pub fn event(&self, trace: &TraceContext, name: &str, attrs: Vec<(String, AttrValue)>) {
        if !trace.sampled {
            return;
        }
        self.push(vec![event_span(trace, name, attrs)]);
    }

    fn push(&self, spans: Vec<Span>) {
        if self.queue.try_send(spans).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends everything queued before this call, waiting at most `timeout`; `true` when done
    /// (sent or failed), `false` on timeout or when the exporter thread is gone. Blocks the
    /// calling thread: for shutdown and tests, not the request path.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (ack, done) = std::sync::mpsc::channel();
        if self.control.send(Control::Flush(ack)).is_err() {
            return false;
        }
        done.recv_timeout(timeout).is_ok()
    }

    /// Records and events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Export requests that failed (no answer in time, connection error, non-2xx).
    pub fn failed_exports(&self) -> u64 {
        self.stats.failed_exports.load(Ordering::Relaxed)
    }

    /// Spans the collector accepted (answered 2xx for).
    pub fn exported_spans(&self) -> u64 {
        self.stats.exported_spans.load(Ordering::Relaxed)
    }
}

/// The parsed endpoint and the fixed request headers.
struct Target {
    /// Scheme, host, port and path, without credentials or query (for messages).
    display: String,
    host: String,
    port: u16,
    path: String,
    headers: HeaderMap,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls_pki_types::ServerName<'static>,
    )>,
}

impl Target {
    fn new(settings: &OtlpSettings) -> Result<Target, OtlpError> {
        let shown = redact_userinfo(&settings.endpoint);
        let bad = |reason: &str| OtlpError::Endpoint {
            endpoint: shown.clone(),
            reason: reason.to_string(),
        };
        let uri: Uri = settings
            .endpoint
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let bare_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = match uri.port_u16() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".to_string());

        let mut headers = HeaderMap::new();
        let host_value = HeaderValue::from_str(&authority).map_err(|_| bad("bad host"))?;
        headers.insert(HOST, host_value);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("switchyard/", env!("CARGO_PKG_VERSION"))),
        );
        let mut custom = HeaderMap::new();
        for (name, value) in &settings.headers {
            let invalid = || OtlpError::Header { name: name.clone() };
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let mut value = HeaderValue::from_str(value).map_err(|_| invalid())?;
            value.set_sensitive(true);
            custom.append(header, value);
        }
        for name in custom.keys() {
            headers.remove(name);
        }
        for (name, value) in custom.iter() {
            headers.append(name.clone(), value.clone());
        }

        let tls = if https {
            let tls_error = |reason: String| OtlpError::Tls {
                endpoint: shown.clone(),
                reason,
            };
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned(),
            );
            let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = rustls_pki_types::ServerName::try_from(bare_host.clone())
                .map_err(|e| tls_error(e.to_string()))?;
            Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };

        Ok(Target {
            // Without the query, which could carry a key.
            display: format!(
                "{}://{authority}{}",
                if https { "https" } else { "http" },
                uri.path()
            ),
            host: bare_host,
            port,
            path,
            headers,
            tls,
        })
    }
}

/// Why one export request failed. Never carries header values.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS handshake with {host} failed: {source}")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP exchange failed: {0}")]
    Http(#[source] hyper::Error),
    #[error("cannot build the request: {0}")]
    Request(#[source] http::Error),
    #[error("the collector answered {0}")]
    Status(http::StatusCode),
    #[error("reading the collector's answer failed: {0}")]
    Body(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// One HTTP/1.1 connection to the collector, reused while it stays open.
struct Client {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
    timeout: Duration,
}

impl Client {
    async fn post(&mut self, body: Bytes) -> Result<(), SendError> {
        let timeout = self.timeout;
        let result = match tokio::time::timeout(timeout, self.post_inner(body)).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Timeout(timeout)),
        };
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn post_inner(&mut self, body: Bytes) -> Result<(), SendError> {
        // A kept connection the collector has since closed fails before any answer: retry once
        // on a new one.
        if let Some(mut sender) = self.sender.take() {
            if sender.ready().await.is_ok() {
                match self.exchange(&mut sender, body.clone()).await {
                    Ok(()) => {
                        self.sender = Some(sender);
                        return Ok(());
                    }
                    Err(SendError::Http(_)) => {}
                    Err(other) => return Err(other),
                }
            }
        }
        let mut sender = self.connect().await?;
        self.exchange(&mut sender, body).await?;
        self.sender = Some(sender);
        Ok(())
    }

    async fn exchange(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        body: Bytes,
    ) -> Result<(), SendError> {
        let mut request = Request::post(self.target.path.as_str())
            .body(Full::new(body))
            .map_err(SendError::Request)?;
        *request.headers_mut() = self.target.headers.clone();
        let response = sender
            .send_request(request)
            .await
            .map_err(SendError::Http)?;
        let status = response.status();
        Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| SendError::Body(e.to_string()))?;
        if status.is_success() {
            Ok(())
        } else {
            Err(SendError::Status(status))
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, SendError> {
        let target = &self.target;
        let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|source| SendError::Connect {
                addr: format!("{}:{}", target.host, target.port),
                source,
            })?;
        // Best effort: a socket without TCP_NODELAY still works.
        let _ = tcp.set_nodelay(true);
        match &target.tls {
            None => {
                let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                    .await
                    .map_err(SendError::Http)?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(sender)
            }
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|source| SendError::Tls {
                        host: target.host.clone(),
                        source,
                    })?;
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(SendError::Http)?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(sender)
            }
        }
    }
}

/// The exporter thread's state.
struct Worker {
    client: Client,
    resource: Resource,
    stats: Arc<Stats>,
    options: ExportOptions,
    warned_at: Option<Instant>,
    failures_since_warn: u64,
}

impl Worker {
    async fn run(
        mut self,
        mut queue: mpsc::Receiver<Vec<Span>>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let mut pending: Vec<Span> = Vec::new();
        let mut ticker = tokio::time::interval(self.options.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut control_open = true;
        loop {
            tokio::select! {
                biased;
                message = control.recv(), if control_open => match message {
                    Some(Control::Flush(ack)) => {
                        while let Ok(spans) = queue.try_recv() {
                            pending.extend(spans);
                        }
                        self.send_all(&mut pending).await;
                        let _ = ack.send(());
                    }
                    None => control_open = false,
                },
                spans = queue.recv() => match spans {
                    Some(spans) => {
                        pending.extend(spans);
                        while pending.len() >= self.options.batch_spans {
                            self.send_batch(&mut pending).await;
                        }
                    }
                    None => {
                        self.send_all(&mut pending).await;
                        return;
                    }
                },
                _ = ticker.tick() => self.send_all(&mut pending).await,
            }
        }
    }

    async fn send_all(&mut self, pending: &mut Vec<Span>) {
        while !pending.is_empty() {
            self.send_batch(pending).await;
        }
    }

    /// Sends the first `batch_spans` of `pending`.
    async fn send_batch(&mut self, pending: &mut Vec<Span>) {
        let take = pending.len().min(self.options.batch_spans);
        let spans: Vec<Span> = pending.drain(..take).collect();
        if spans.is_empty() {
            return;
        }
        let count = spans.len() as u64;
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "switchyard".to_string(),
                        version: env!("CARGO_PKG_VERSION").to_string(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let body = Bytes::from(request.encode_to_vec());
        match self.client.post(body).await {
            Ok(()) => {
                self.stats
                    .exported_spans
                    .fetch_add(count, Ordering::Relaxed);
            }
            Err(error) => {
                self.stats.failed_exports.fetch_add(1, Ordering::Relaxed);
                self.warn(&error, count);
            }
        }
    }

    /// Logs a failed export, at most once per [`WARN_INTERVAL`].
    fn warn(&mut self, error: &SendError, spans: u64) {
        let now = Instant::now();
        if self
            .warned_at
            .is_some_and(|at| now.duration_since(at) < WARN_INTERVAL)
        {
            self.failures_since_warn += 1;
            return;
        }
        tracing::warn!(
            endpoint = %self.client.target.display,
            error = %error,
            spans,
            earlier_failures_not_logged = self.failures_since_warn,
            "OTLP trace export failed"
        );
        self.warned_at = Some(now);
        self.failures_since_warn = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    fn trace() -> TraceContext {
        TraceContext {
            trace_id: [7; 16],
            span_id: [1; 8],
            parent_span_id: None,
            sampled: true,
            display_id: hex::encode([7u8; 16]),
        }
    }

    fn record() -> RequestRecord {
        RequestRecord {
            trace: trace(),
            start: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            duration: Duration::from_millis(250),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            operation: "chat",
            config: "default".into(),
            virtual_key: None,
            request_model: Some("gpt-4o".into()),
            response_model: None,
            stream: false,
            status: 200,
            outcome: "ok",
            attempts: Vec::new(),
            usage: None,
            cost_usd: None,
            cache: "DISABLED",
            metadata: None,
            bodies: None,
        }
    }

    #[test]
    fn off_without_endpoint() {
        assert_eq!(OtlpSettings::from_lookup(&env(&[])), None);
        assert_eq!(
            OtlpSettings::from_lookup(&env(&[("OTEL_SERVICE_NAME", "x")])),
            None
        );
    }

    #[test]
    fn exporter_named_without_endpoint_uses_the_default() {
        let s = OtlpSettings::from_lookup(&env(&[("OTEL_TRACES_EXPORTER", "otlp")]));
        assert_eq!(s.map(|s| s.endpoint), Some(DEFAULT_ENDPOINT.to_string()));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("Bearer%20abc").as_deref(),
            Some("Bearer abc")
        );
        assert_eq!(percent_decode("a%2Cb%3d").as_deref(), Some("a,b="));
        assert_eq!(percent_decode("100%").as_deref(), Some("100%"));
        assert_eq!(percent_decode("%zz%4").as_deref(), Some("%zz%4"));
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
    }

    #[test]
    fn header_pairs() {
        assert_eq!(
            parse_headers(" a = 1 ,bad, =x,b=x%3Dy"),
            vec![("a".into(), "1".into()), ("b".into(), "x=y".into())]
        );
    }

    #[test]
    fn userinfo_is_redacted() {
        assert_eq!(
            redact_userinfo("https://u:p@host:4318/v1/traces"),
            "https://***@host:4318/v1/traces"
        );
        assert_eq!(redact_userinfo("http://host/a@b"), "http://host/a@b");
        assert_eq!(redact_userinfo("nonsense"), "nonsense");
    }

    #[test]
    fn debug_hides_header_values() {
        let mut s = OtlpSettings::new("http://u:secret@h/v1/traces");
        s.headers
            .push(("authorization".into(), "Bearer sk-123".into()));
        let shown = format!("{s:?}");
        assert!(shown.contains("authorization"));
        assert!(!shown.contains("sk-123"));
        assert!(!shown.contains("secret"));
    }

    #[test]
    fn provider_names_follow_the_semantic_conventions() {
        assert_eq!(gen_ai_provider_name("openai"), "openai");
        assert_eq!(gen_ai_provider_name("anthropic"), "anthropic");
        assert_eq!(gen_ai_provider_name("gemini"), "gcp.gemini");
        assert_eq!(gen_ai_provider_name("azure-openai"), "azure.ai.openai");
        assert_eq!(
            gen_ai_provider_name("openai-compatible"),
            "openai-compatible"
        );
    }

    #[test]
    fn request_without_attempts_or_model() {
        let mut r = record();
        r.request_model = None;
        let spans = record_spans(&r);
        assert_eq!(spans.len(), 1);
        let span = &spans[0];
        assert_eq!(span.name, "chat");
        assert!(span.parent_span_id.is_empty());
        assert_eq!(span.flags, FLAG_SAMPLED | FLAG_HAS_IS_REMOTE);
        assert_eq!(span.status, None);
        assert!(attr(span, "gen_ai.provider.name").is_none());
        assert!(attr(span, "error.type").is_none());
        assert!(attr(span, "switchyard.trace_id").is_none());
        assert_eq!(
            span.end_time_unix_nano - span.start_time_unix_nano,
            250_000_000
        );
    }

    #[test]
    fn request_errors() {
        let mut r = record();
        r.outcome = "timeout";
        r.status = 504;
        let span = &record_spans(&r)[0];
        assert_eq!(
            attr(span, "error.type"),
            Some(&any_value::Value::StringValue("timeout".into()))
        );
        assert_eq!(
            span.status.as_ref().map(|s| s.code),
            Some(StatusCode::Error as i32)
        );

        let mut r = record();
        r.status = 502;
        let span = &record_spans(&r)[0];
        assert_eq!(
            attr(span, "error.type"),
            Some(&any_value::Value::StringValue("502".into()))
        );

        let mut r = record();
        r.outcome = "fallback_ok";
        r.status = 400;
        assert!(record_spans(&r)[0].status.is_none());
    }

    #[test]
    fn metadata_is_bounded() {
        let mut r = record();
        let mut map = serde_json::Map::new();
        for i in 0..40 {
            map.insert(
                format!("k{i:02}"),
                serde_json::Value::String("x".repeat(1000)),
            );
        }
        map.insert("a_number".into(), serde_json::json!(5));
        r.metadata = Some(map);
        r.trace.display_id = "caller-id".into();
        r.cost_usd = Some(0.25);
        let span = &record_spans(&r)[0];
        let meta: Vec<&KeyValue> = span
            .attributes
            .iter()
            .filter(|kv| kv.key.starts_with("switchyard.metadata."))
            .collect();
        assert_eq!(meta.len(), MAX_METADATA_KEYS);
        for kv in &meta {
            match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => {
                    assert!(s.chars().count() <= MAX_ATTR_VALUE_CHARS)
                }
                other => panic!("not a string: {other:?}"),
            }
        }
        assert_eq!(
            attr(span, "switchyard.metadata.a_number"),
            Some(&any_value::Value::StringValue("5".into()))
        );
        assert_eq!(
            attr(span, "switchyard.trace_id"),
            Some(&any_value::Value::StringValue("caller-id".into()))
        );
        assert_eq!(
            attr(span, "switchyard.cost_usd"),
            Some(&any_value::Value::DoubleValue(0.25))
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hé", 5), "hé");
    }

    #[test]
    fn event_spans_are_children_of_the_request() {
        let span = event_span(
            &trace(),
            "gen_ai.feedback",
            vec![
                ("switchyard.feedback.value".into(), AttrValue::from(1i64)),
                ("note".into(), AttrValue::from("y".repeat(500))),
            ],
        );
        assert_eq!(span.parent_span_id, vec![1; 8]);
        assert_eq!(span.trace_id, vec![7; 16]);
        assert_eq!(span.start_time_unix_nano, span.end_time_unix_nano);
        assert_ne!(span.span_id, vec![0; 8]);
        assert_eq!(
            attr(&span, "switchyard.feedback.value"),
            Some(&any_value::Value::IntValue(1))
        );
        match attr(&span, "note") {
            Some(any_value::Value::StringValue(s)) => assert_eq!(s.len(), MAX_ATTR_VALUE_CHARS),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_endpoints_and_headers_are_refused() {
        assert!(matches!(
            OtlpExporter::start(OtlpSettings::new("ftp://host/v1/traces")),
            Err(OtlpError::Endpoint { .. })
        ));
        assert!(matches!(
            OtlpExporter::start(OtlpSettings::new("not a url")),
            Err(OtlpError::Endpoint { .. })
        ));
        let mut s = OtlpSettings::new("http://127.0.0.1:1/v1/traces");
        s.headers.push(("bad header".into(), "v".into()));
        let err = OtlpExporter::start(s).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("bad header")));
        let mut s = OtlpSettings::new("http://127.0.0.1:1/v1/traces");
        s.headers.push(("x-key".into(), "secret\nvalue".into()));
        let err = OtlpExporter::start(s).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("x-key") && !e.contains("secret")));
    }

    #[test]
    fn https_endpoints_start() {
        let exporter = OtlpExporter::start(OtlpSettings::new(
            "https://collector.example:4318/v1/traces",
        ));
        assert!(exporter.is_ok());
    }
}
