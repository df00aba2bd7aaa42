//! OTLP trace export against an in-test OTLP/HTTP receiver that decodes the real protobuf
//! `ExportTraceServiceRequest`: span tree, GenAI attributes, headers, sampling, batching, the
//! bounded queue, failure counting, and the `OTEL_*` settings.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use switchyard::providers::Usage;
use switchyard::telemetry::otlp::{
    AttrValue, ExportOptions, OtlpExporter, OtlpSettings, DEFAULT_SERVICE_NAME, DEFAULT_TIMEOUT,
};
use switchyard::telemetry::{AttemptRecord, AttemptResult, RequestRecord, TraceContext};

const TRACE_ID: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];
const REQUEST_SPAN: [u8; 8] = [0xa1; 8];
const CALLER_SPAN: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];
const ATTEMPT_1: [u8; 8] = [0xb1; 8];
const ATTEMPT_2: [u8; 8] = [0xb2; 8];

struct Received {
    path: String,
    headers: http::HeaderMap,
    request: ExportTraceServiceRequest,
}

/// An OTLP/HTTP receiver on 127.0.0.1 with its own thread and runtime; answers `status`.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (got2, status2) = (got.clone(), status.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (got, status) = (got2.clone(), status2.clone());
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                            let (got, status) = (got.clone(), status.clone());
                            async move {
                                let (parts, body) = req.into_parts();
                                let bytes = body.collect().await?.to_bytes();
                                let code = if parts.method != http::Method::POST {
                                    405
                                } else if parts.uri.path() != "/v1/traces" {
                                    404
                                } else {
                                    match ExportTraceServiceRequest::decode(bytes) {
                                        Ok(request) => {
                                            got.lock().unwrap().push(Received {
                                                path: parts.uri.path().to_string(),
                                                headers: parts.headers,
                                                request,
                                            });
                                            status.load(Ordering::SeqCst)
                                        }
                                        Err(_) => 400,
                                    }
                                };
                                let body = ExportTraceServiceResponse::default().encode_to_vec();
                                Ok::<_, hyper::Error>(
                                    Response::builder()
                                        .status(code)
                                        .header("content-type", "application/x-protobuf")
                                        .body(Full::new(Bytes::from(body)))
                                        .unwrap(),
                                )
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Receiver { addr, got, status }
    }

    fn settings(&self) -> OtlpSettings {
        OtlpSettings {
            endpoint: format!("http://{}/v1/traces", self.addr),
            headers: vec![("authorization".into(), "Bearer otlp-test-key".into())],
            service_name: "switchyard-test".into(),
            timeout: Duration::from_secs(5),
        }
    }

    fn spans(&self) -> Vec<Span> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| r.request.resource_spans.iter())
            .flat_map(|rs| rs.scope_spans.iter())
            .flat_map(|ss| ss.spans.iter().cloned())
            .collect()
    }

    fn requests(&self) -> usize {
        self.got.lock().unwrap().len()
    }
}

fn at(secs: u64, millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn trace(sampled: bool) -> TraceContext {
    TraceContext {
        trace_id: TRACE_ID,
        span_id: REQUEST_SPAN,
        parent_span_id: Some(CALLER_SPAN),
        sampled,
        display_id: hex::encode(TRACE_ID),
    }
}

/// A chat request whose first attempt timed out before the first token and whose fallback
/// answered.
fn record() -> RequestRecord {
    let usage = Usage {
        input_tokens: 12,
        output_tokens: 34,
        ..Default::default()
    };
    let mut metadata = serde_json::Map::new();
    metadata.insert("team".into(), serde_json::json!("search"));
    metadata.insert("tier".into(), serde_json::json!(3));
    RequestRecord {
        trace: trace(true),
        start: at(1_700_000_000, 0),
        duration: Duration::from_millis(1500),
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        operation: "chat",
        config: "prod".into(),
        virtual_key: Some("vk-team-a".into()),
        request_model: Some("gpt-4o".into()),
        response_model: Some("claude-sonnet-4-20250514".into()),
        stream: true,
        status: 200,
        outcome: "fallback_ok",
        attempts: vec![
            AttemptRecord {
                span_id: ATTEMPT_1,
                target: "config.targets[0]".into(),
                provider: "openai-main".into(),
                provider_kind: "openai",
                request_model: Some("gpt-4o".into()),
                response_model: None,
                status: Some(200),
                result: AttemptResult::TimeoutTtft,
                start: at(1_700_000_000, 5),
                connect: Some(Duration::from_millis(3)),
                headers: Some(Duration::from_millis(40)),
                first_token: None,
                total: Duration::from_millis(1000),
                usage: None,
            },
            AttemptRecord {
                span_id: ATTEMPT_2,
                target: "config.targets[1]".into(),
                provider: "anthropic-backup".into(),
                provider_kind: "anthropic",
                request_model: Some("claude-sonnet-4".into()),
                response_model: Some("claude-sonnet-4-20250514".into()),
                status: Some(200),
                result: AttemptResult::Ok,
                start: at(1_700_000_001, 10),
                connect: Some(Duration::from_millis(2)),
                headers: Some(Duration::from_millis(100)),
                first_token: Some(Duration::from_millis(150)),
                total: Duration::from_millis(480),
                usage: Some(usage),
            },
        ],
        usage: Some(usage),
        cost_usd: Some(0.0012),
        cache: "MISS",
        metadata: Some(metadata),
        bodies: Some(switchyard::telemetry::Bodies {
            request: "SECRET PROMPT".into(),
            response: "SECRET COMPLETION".into(),
        }),
        client_span: Some(switchyard::telemetry::record::ClientSpan {
            span_id: Some("s-2".into()),
            parent_span_id: Some("s-1".into()),
            span_name: Some("plan step".into()),
        }),
    }
}

fn attrs(span: &Span) -> HashMap<String, Value> {
    span.attributes
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?.value?)))
        .collect()
}

fn s(v: &str) -> Value {
    Value::StringValue(v.to_string())
}

#[test]
fn a_request_becomes_a_server_span_with_one_client_span_per_attempt() {
    let receiver = Receiver::start();
    let exporter = OtlpExporter::start(receiver.settings()).unwrap();
    exporter.export(&record());
    assert!(exporter.flush(Duration::from_secs(10)));

    assert_eq!(receiver.requests(), 1);
    let got = receiver.got.lock().unwrap();
    let received = &got[0];
    assert_eq!(received.path, "/v1/traces");
    assert_eq!(
        received.headers.get("authorization").unwrap(),
        "Bearer otlp-test-key"
    );
    assert_eq!(
        received.headers.get("content-type").unwrap(),
        "application/x-protobuf"
    );
    let resource_spans = &received.request.resource_spans;
    assert_eq!(resource_spans.len(), 1);
    let resource = resource_spans[0].resource.as_ref().unwrap();
    assert!(resource.attributes.iter().any(|kv| kv.key == "service.name"
        && kv.value.as_ref().and_then(|v| v.value.clone()) == Some(s("switchyard-test"))));
    let scope = resource_spans[0].scope_spans[0].scope.as_ref().unwrap();
    assert_eq!(scope.name, "switchyard");
    drop(got);

    let spans = receiver.spans();
    assert_eq!(spans.len(), 3);
    let serialized: Vec<u8> = spans.iter().flat_map(|s| s.encode_to_vec()).collect();
    let text = String::from_utf8_lossy(&serialized);
    assert!(!text.contains("SECRET"), "bodies must never be exported");

    for span in &spans {
        assert_eq!(span.trace_id, TRACE_ID.to_vec());
    }
    let request = &spans[0];
    assert_eq!(request.span_id, REQUEST_SPAN.to_vec());
    assert_eq!(request.parent_span_id, CALLER_SPAN.to_vec());
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert_eq!(request.name, "chat gpt-4o");
    assert_eq!(request.start_time_unix_nano, nanos(at(1_700_000_000, 0)));
    assert_eq!(request.end_time_unix_nano, nanos(at(1_700_000_001, 500)));
    assert_eq!(
        request.status, None,
        "a fallback that answered is not an error"
    );
    assert_eq!(request.flags & 0x301, 0x301, "sampled, remote parent");
    let a = attrs(request);
    assert_eq!(a["gen_ai.operation.name"], s("chat"));
    assert_eq!(a["gen_ai.provider.name"], s("anthropic"));
    assert_eq!(a["gen_ai.request.model"], s("gpt-4o"));
    assert_eq!(a["gen_ai.response.model"], s("claude-sonnet-4-20250514"));
    assert_eq!(a["gen_ai.usage.input_tokens"], Value::IntValue(12));
    assert_eq!(a["gen_ai.usage.output_tokens"], Value::IntValue(34));
    assert_eq!(a["http.response.status_code"], Value::IntValue(200));
    assert_eq!(a["http.request.method"], s("POST"));
    assert_eq!(a["switchyard.config"], s("prod"));
    assert_eq!(a["switchyard.outcome"], s("fallback_ok"));
    assert_eq!(a["switchyard.virtual_key"], s("vk-team-a"));
    assert_eq!(a["switchyard.stream"], Value::BoolValue(true));
    assert_eq!(a["switchyard.cost_usd"], Value::DoubleValue(0.0012));
    assert_eq!(a["switchyard.metadata.team"], s("search"));
    assert_eq!(a["switchyard.metadata.tier"], s("3"));
    // The caller's own span (Portkey's x-portkey-span-* headers).
    assert_eq!(a["switchyard.client_span.id"], s("s-2"));
    assert_eq!(a["switchyard.client_span.parent_id"], s("s-1"));
    assert_eq!(a["switchyard.client_span.name"], s("plan step"));
    assert!(!a.contains_key("error.type"));

    let failed = spans
        .iter()
        .find(|s| s.span_id == ATTEMPT_1.to_vec())
        .unwrap();
    let ok = spans
        .iter()
        .find(|s| s.span_id == ATTEMPT_2.to_vec())
        .unwrap();
    for child in [failed, ok] {
        assert_eq!(child.parent_span_id, REQUEST_SPAN.to_vec());
        assert_eq!(child.kind, SpanKind::Client as i32);
    }

    assert_eq!(failed.name, "chat gpt-4o");
    assert_eq!(failed.start_time_unix_nano, nanos(at(1_700_000_000, 5)));
    assert_eq!(failed.end_time_unix_nano, nanos(at(1_700_000_001, 5)));
    let status = failed.status.as_ref().unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "timeout_ttft");
    let a = attrs(failed);
    assert_eq!(a["error.type"], s("timeout_ttft"));
    assert_eq!(a["gen_ai.provider.name"], s("openai"));
    assert_eq!(a["gen_ai.request.model"], s("gpt-4o"));
    assert_eq!(a["switchyard.target"], s("config.targets[0]"));
    assert_eq!(a["http.response.status_code"], Value::IntValue(200));
    assert!(!a.contains_key("gen_ai.usage.input_tokens"));
    assert!(!a.contains_key("gen_ai.response.model"));

    assert_eq!(ok.name, "chat claude-sonnet-4");
    assert_eq!(ok.start_time_unix_nano, nanos(at(1_700_000_001, 10)));
    assert_eq!(ok.end_time_unix_nano, nanos(at(1_700_000_001, 490)));
    assert_eq!(ok.status, None);
    let a = attrs(ok);
    assert_eq!(a["gen_ai.operation.name"], s("chat"));
    assert_eq!(a["gen_ai.provider.name"], s("anthropic"));
    assert_eq!(a["gen_ai.request.model"], s("claude-sonnet-4"));
    assert_eq!(a["gen_ai.response.model"], s("claude-sonnet-4-20250514"));
    assert_eq!(a["gen_ai.usage.input_tokens"], Value::IntValue(12));
    assert_eq!(a["gen_ai.usage.output_tokens"], Value::IntValue(34));
    assert_eq!(a["switchyard.target"], s("config.targets[1]"));
    assert_eq!(a["switchyard.provider"], s("anthropic-backup"));
    assert_eq!(a["switchyard.first_token_ms"], Value::DoubleValue(150.0));
    assert!(!a.contains_key("error.type"));

    assert_eq!(exporter.exported_spans(), 3);
    assert_eq!(exporter.dropped(), 0);
    assert_eq!(exporter.failed_exports(), 0);
}

#[test]
fn a_failed_request_is_an_error_span() {
    let receiver = Receiver::start();
    let exporter = OtlpExporter::start(receiver.settings()).unwrap();
    let mut r = record();
    r.outcome = "error";
    r.status = 502;
    r.trace.parent_span_id = None;
    r.attempts.truncate(1);
    exporter.export(&r);
    assert!(exporter.flush(Duration::from_secs(10)));
    let spans = receiver.spans();
    assert_eq!(spans.len(), 2);
    let request = &spans[0];
    assert!(request.parent_span_id.is_empty());
    assert_eq!(
        request.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    let a = attrs(request);
    assert_eq!(a["error.type"], s("error"));
    assert_eq!(a["http.response.status_code"], Value::IntValue(502));
}

#[test]
fn gemini_is_named_per_the_semantic_conventions() {
    let receiver = Receiver::start();
    let exporter = OtlpExporter::start(receiver.settings()).unwrap();
    let mut r = record();
    r.attempts[1].provider_kind = "gemini";
    exporter.export(&r);
    assert!(exporter.flush(Duration::from_secs(10)));
    let spans = receiver.spans();
    assert_eq!(attrs(&spans[0])["gen_ai.provider.name"], s("gcp.gemini"));
    assert_eq!(attrs(&spans[2])["gen_ai.provider.name"], s("gcp.gemini"));
}

#[test]
fn unsampled_records_and_events_are_not_sent() {
    let receiver = Receiver::start();
    let exporter = OtlpExporter::start(receiver.settings()).unwrap();
    let mut r = record();
    r.trace.sampled = false;
    exporter.export(&r);
    exporter.event(&r.trace, "gen_ai.feedback", Vec::new());
    assert!(exporter.flush(Duration::from_secs(10)));
    assert_eq!(receiver.requests(), 0);
    assert_eq!(exporter.exported_spans(), 0);
    assert_eq!(exporter.dropped(), 0);
}

#[test]
fn feedback_is_a_zero_duration_span_in_the_request_trace() {
    let receiver = Receiver::start();
    let exporter = OtlpExporter::start(receiver.settings()).unwrap();
    exporter.event(
        &trace(true),
        "gen_ai.feedback",
        vec![
            ("switchyard.feedback.value".into(), AttrValue::Int(-1)),
            ("switchyard.feedback.weight".into(), AttrValue::Double(0.5)),
        ],
    );
    assert!(exporter.flush(Duration::from_secs(10)));
    let spans = receiver.spans();
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(span.name, "gen_ai.feedback");
    assert_eq!(span.trace_id, TRACE_ID.to_vec());
    assert_eq!(span.parent_span_id, REQUEST_SPAN.to_vec());
    assert_ne!(span.span_id, REQUEST_SPAN.to_vec());
    assert_eq!(span.span_id.len(), 8);
    assert_eq!(span.start_time_unix_nano, span.end_time_unix_nano);
    assert!(span.start_time_unix_nano > 0);
    let a = attrs(span);
    assert_eq!(a["switchyard.feedback.value"], Value::IntValue(-1));
    assert_eq!(a["switchyard.feedback.weight"], Value::DoubleValue(0.5));
}

#[test]
fn spans_are_batched() {
    let receiver = Receiver::start();
    let options = ExportOptions {
        queue_records: 64,
        batch_spans: 4,
        interval: Duration::from_secs(60),
    };
    let exporter = OtlpExporter::start_with(receiver.settings(), options).unwrap();
    for _ in 0..5 {
        exporter.export(&record());
    }
    assert!(exporter.flush(Duration::from_secs(10)));
    let sizes: Vec<usize> = receiver
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.request.resource_spans[0].scope_spans[0].spans.len())
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 15);
    assert!(sizes.iter().all(|&n| n <= 4), "{sizes:?}");
    assert_eq!(exporter.exported_spans(), 15);
}

#[test]
fn a_partial_batch_goes_out_on_the_interval_and_on_drop() {
    let receiver = Receiver::start();
    let options = ExportOptions {
        interval: Duration::from_millis(100),
        ..ExportOptions::default()
    };
    let exporter = OtlpExporter::start_with(receiver.settings(), options).unwrap();
    exporter.export(&record());
    wait_for(|| receiver.spans().len() == 3);

    let exporter = OtlpExporter::start_with(
        receiver.settings(),
        ExportOptions {
            interval: Duration::from_secs(60),
            ..ExportOptions::default()
        },
    )
    .unwrap();
    exporter.export(&record());
    drop(exporter);
    wait_for(|| receiver.spans().len() == 6);
}

fn wait_for(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn collector_errors_are_counted_and_the_exporter_recovers() {
    let receiver = Receiver::start();
    let exporter = OtlpExporter::start(receiver.settings()).unwrap();
    receiver.status.store(503, Ordering::SeqCst);
    exporter.export(&record());
    assert!(exporter.flush(Duration::from_secs(10)));
    assert_eq!(exporter.failed_exports(), 1);
    assert_eq!(exporter.exported_spans(), 0);

    receiver.status.store(200, Ordering::SeqCst);
    exporter.export(&record());
    assert!(exporter.flush(Duration::from_secs(10)));
    assert_eq!(exporter.failed_exports(), 1);
    assert_eq!(exporter.exported_spans(), 3);
}

#[test]
fn an_unreachable_collector_is_a_counted_failure() {
    // A port nothing listens on: bind, learn the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exporter = OtlpExporter::start(OtlpSettings::new(format!(
        "http://127.0.0.1:{port}/v1/traces"
    )))
    .unwrap();
    exporter.export(&record());
    assert!(exporter.flush(Duration::from_secs(10)));
    assert_eq!(exporter.failed_exports(), 1);
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    // A collector that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted, on_accept) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
            if accepted.send(()).is_err() {
                return;
            }
        }
    });
    let mut settings = OtlpSettings::new(format!("http://{addr}/v1/traces"));
    settings.timeout = Duration::from_millis(300);
    let options = ExportOptions {
        queue_records: 1,
        batch_spans: 1,
        interval: Duration::from_secs(60),
    };
    let exporter = OtlpExporter::start_with(settings, options).unwrap();
    let mut r = record();
    r.attempts.clear();

    exporter.export(&r);
    // The exporter is now stuck sending that record: the queue (1) takes one more.
    on_accept.recv_timeout(Duration::from_secs(5)).unwrap();
    // Had `export` waited for room, these would have been queued rather than dropped.
    for _ in 0..10 {
        exporter.export(&r);
    }
    assert_eq!(exporter.dropped(), 9);

    assert!(exporter.flush(Duration::from_secs(10)));
    assert_eq!(exporter.failed_exports(), 2);
    assert_eq!(exporter.exported_spans(), 0);
}

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn settings_from_the_standard_variables() {
    assert_eq!(
        OtlpSettings::from_lookup(&lookup(&[])),
        None,
        "off by default"
    );

    let s = OtlpSettings::from_lookup(&lookup(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://collector:4318/",
    )]))
    .unwrap();
    assert_eq!(s.endpoint, "http://collector:4318/v1/traces");
    assert_eq!(s.service_name, DEFAULT_SERVICE_NAME);
    assert_eq!(s.timeout, DEFAULT_TIMEOUT);
    assert!(s.headers.is_empty());

    let s = OtlpSettings::from_lookup(&lookup(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://traces.example/custom",
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "Authorization=Bearer%20abc,x-tenant=t1",
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "x-tenant=t%3D2,x-extra=1",
        ),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ("OTEL_SERVICE_NAME", "gateway-eu"),
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ]))
    .unwrap();
    assert_eq!(s.endpoint, "https://traces.example/custom");
    assert_eq!(
        s.headers,
        vec![
            ("Authorization".to_string(), "Bearer abc".to_string()),
            ("x-tenant".to_string(), "t=2".to_string()),
            ("x-extra".to_string(), "1".to_string()),
        ]
    );
    assert_eq!(s.timeout, Duration::from_millis(2500));
    assert_eq!(s.service_name, "gateway-eu");

    let s = OtlpSettings::from_lookup(&lookup(&[
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c/v1/traces"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod,service.name=from-resource",
        ),
    ]))
    .unwrap();
    assert_eq!(s.timeout, DEFAULT_TIMEOUT);
    assert_eq!(s.service_name, "from-resource");

    let s = OtlpSettings::from_lookup(&lookup(&[("OTEL_TRACES_EXPORTER", "otlp")])).unwrap();
    assert_eq!(s.endpoint, "http://localhost:4318/v1/traces");

    let with_endpoint = |extra: (&str, &str)| {
        OtlpSettings::from_lookup(&lookup(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            extra,
        ]))
    };
    assert_eq!(with_endpoint(("OTEL_SDK_DISABLED", "true")), None);
    assert_eq!(with_endpoint(("OTEL_SDK_DISABLED", "TRUE")), None);
    assert!(with_endpoint(("OTEL_SDK_DISABLED", "false")).is_some());
    assert_eq!(with_endpoint(("OTEL_TRACES_EXPORTER", "none")), None);
    assert_eq!(with_endpoint(("OTEL_TRACES_EXPORTER", "zipkin")), None);
    assert!(with_endpoint(("OTEL_TRACES_EXPORTER", "console, otlp")).is_some());
    assert_eq!(with_endpoint(("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")), None);
    assert_eq!(
        with_endpoint(("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")),
        None
    );
    assert!(with_endpoint(("OTEL_EXPORTER_OTLP_ENDPOINT", "")).is_none());
}

#[path = "support/gateway.rs"]
mod harness;

/// The real binary, configured only by the standard variables, exports a fallback request as a
/// server span with one client span per attempt, continuing the caller's trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_exports_its_requests_when_the_otel_variables_say_so() {
    let receiver = Receiver::start();
    let mock = harness::mock().await;
    let endpoint = format!("http://{}", receiver.addr);
    let gw = harness::Gateway::start_with(
        &format!(
            "providers:
  bad: {{ kind: openai, base_url: \"http://{a}/fault/status=503/v1\", api_key: sk-x }}
  good: {{ kind: anthropic, base_url: \"http://{a}\", api_key: sk-y }}
virtual_keys:
  vk-bad: {{ provider: bad }}
  vk-good: {{ provider: good }}
configs:
  chat:
    strategy: {{ mode: fallback }}
    targets:
      - {{ virtual_key: vk-bad }}
      - {{ virtual_key: vk-good, override_params: {{ model: claude-haiku-4-5 }} }}
",
            a = mock.addr
        ),
        |_| {},
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20collector-key",
            ),
            ("OTEL_SERVICE_NAME", "checkout-sidecar"),
        ],
    )
    .await;
    let resp = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("vk-bad")
        .header("x-portkey-config", "chat")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .json(&harness::chat("gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let _ = resp.text().await;
    // Exported within the 1 s batch interval (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.spans().len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let spans = receiver.spans();
    assert_eq!(spans.len(), 3, "{spans:?}");
    assert!(spans.iter().all(|s| s.trace_id == TRACE_ID));
    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .expect("request span");
    assert_eq!(server.parent_span_id, CALLER_SPAN);
    let clients: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32)
        .collect();
    assert_eq!(clients.len(), 2);
    for c in &clients {
        assert_eq!(c.parent_span_id, server.span_id);
    }
    let a = attrs(server);
    assert_eq!(a["gen_ai.operation.name"], s("chat"));
    assert_eq!(a["gen_ai.request.model"], s("gpt-4o-mini"));
    assert_eq!(a["gen_ai.response.model"], s("claude-haiku-4-5"));
    let providers: Vec<Value> = clients
        .iter()
        .map(|c| attrs(c)["gen_ai.provider.name"].clone())
        .collect();
    assert!(providers.contains(&s("openai")) && providers.contains(&s("anthropic")));
    let failed = clients
        .iter()
        .find(|c| attrs(c)["gen_ai.provider.name"] == s("openai"))
        .unwrap();
    assert!(attrs(failed).contains_key("error.type"));
    // The attempt span ids are the ones the gateway sent upstream in traceparent.
    let sent: Vec<String> = mock
        .requests()
        .iter()
        .filter_map(|r| r.header("traceparent").map(str::to_string))
        .collect();
    for c in &clients {
        let id = c
            .span_id
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        assert!(sent.iter().any(|t| t.contains(&id)), "{sent:?} / {id}");
    }
    let got = receiver.got.lock().unwrap();
    assert_eq!(got[0].headers["authorization"], "Bearer collector-key");
    let resource = got[0].request.resource_spans[0].resource.as_ref().unwrap();
    assert!(format!("{resource:?}").contains("checkout-sidecar"));
}
