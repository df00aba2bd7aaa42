use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::settings::{parse_headers, percent_decode, redact_userinfo};
use super::spans::{event_span, truncate_chars, FLAG_HAS_IS_REMOTE, FLAG_SAMPLED};
use super::*;
use crate::telemetry::record::{RequestRecord, TraceContext};

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
        client_span: None,
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
