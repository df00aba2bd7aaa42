//! The fault-injecting mock LLM provider (OpenAI wire format): the only fake in our tests, and
//! `switchyard mock-provider` for demos and benchmarks.
//!
//! Routes: `POST /v1/chat/completions` (JSON or SSE), `/v1/completions`, `/v1/embeddings`,
//! `/v1/responses`, `GET /v1/models`; any other path answers a JSON echo. Control (never
//! faulted, never recorded): `GET /_mock/requests`, `GET /_mock/stats`, `POST /_mock/fault`
//! (body = spec, empty clears), `POST /_mock/clear`.
//!
//! A fault spec is comma-separated items, taken from the `x-mock-fault` header, else a path
//! prefix `/fault/<spec>/...` (stripped before routing), else the default set by `set_fault`:
//! - `status=N` answer N with an OpenAI error body; `retry_after=S` adds `Retry-After`;
//!   `fail_first=K` only the first K requests carrying this same spec fail;
//! - `headers_delay_ms=N` wait before the response head;
//! - streams: `first_chunk_delay_ms=N`, `chunk_delay_ms=N`, `chunks=N` (default 5),
//!   `stall_after=K` (stop after K content events, keep the connection), `cut_after=K` (drop
//!   the connection after K), `malformed` (the second event is not JSON), `error_event` (a 200
//!   stream whose first event is an error), `empty_stream` (no content before `[DONE]`);
//! - `cut=headers` close the connection before any response; `content_bytes=N` pad a
//!   non-streaming answer to N bytes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

type Body = BoxBody<Bytes, std::io::Error>;

// ---------------------------------------------------------------------------------------------
// Fault specs

/// What to do wrong on one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultSpec {
    raw: String,
    status: Option<u16>,
    retry_after: Option<String>,
    fail_first: Option<u32>,
    headers_delay: Option<Duration>,
    first_chunk_delay: Option<Duration>,
    chunk_delay: Option<Duration>,
    chunks: Option<usize>,
    stall_after: Option<usize>,
    cut_after: Option<usize>,
    cut_headers: bool,
    malformed: bool,
    error_event: bool,
    empty_stream: bool,
    content_bytes: Option<usize>,
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut spec = FaultSpec {
            raw: s.to_string(),
            ..Default::default()
        };
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (item, None),
            };
            let num = |v: Option<&str>| -> Result<u64, String> {
                v.and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("fault item {item:?} needs a number"))
            };
            let ms = |v| num(v).map(Duration::from_millis);
            match key {
                "status" => spec.status = Some(num(value)? as u16),
                "retry_after" => {
                    spec.retry_after = Some(value.ok_or("retry_after needs a value")?.to_string())
                }
                "fail_first" => spec.fail_first = Some(num(value)? as u32),
                "headers_delay_ms" => spec.headers_delay = Some(ms(value)?),
                "first_chunk_delay_ms" => spec.first_chunk_delay = Some(ms(value)?),
                "chunk_delay_ms" => spec.chunk_delay = Some(ms(value)?),
                "chunks" => spec.chunks = Some(num(value)? as usize),
                "stall_after" => spec.stall_after = Some(num(value)? as usize),
                "cut_after" => spec.cut_after = Some(num(value)? as usize),
                "cut" if value == Some("headers") => spec.cut_headers = true,
                "malformed" => spec.malformed = true,
                "error_event" => spec.error_event = true,
                "empty_stream" => spec.empty_stream = true,
                "content_bytes" => spec.content_bytes = Some(num(value)? as usize),
                _ => return Err(format!("unknown fault item {item:?}")),
            }
        }
        Ok(spec)
    }
}

// ---------------------------------------------------------------------------------------------
// Recorded requests and stats

#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// After the fault prefix is stripped, with the query.
    pub path: String,
    /// Lowercased names, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": String::from_utf8_lossy(&self.body),
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MockStats {
    pub open_connections: usize,
    pub total_connections: usize,
    pub streams_started: u64,
    pub streams_completed: u64,
    /// Streams whose body was abandoned before its end because the peer went away.
    pub streams_cancelled: u64,
}

#[derive(Default)]
struct MockState {
    requests: Mutex<Vec<RecordedRequest>>,
    default_fault: Mutex<Option<FaultSpec>>,
    fail_counts: Mutex<HashMap<String, u32>>,
    open_connections: AtomicUsize,
    total_connections: AtomicUsize,
    streams_started: AtomicU64,
    streams_completed: AtomicU64,
    streams_cancelled: AtomicU64,
    next_id: AtomicU64,
}

impl MockState {
    fn stats(&self) -> MockStats {
        MockStats {
            open_connections: self.open_connections.load(Ordering::SeqCst),
            total_connections: self.total_connections.load(Ordering::SeqCst),
            streams_started: self.streams_started.load(Ordering::SeqCst),
            streams_completed: self.streams_completed.load(Ordering::SeqCst),
            streams_cancelled: self.streams_cancelled.load(Ordering::SeqCst),
        }
    }

    /// Whether a `status=` fault applies to this request (`fail_first` counts per spec).
    fn should_fail(&self, spec: &FaultSpec) -> bool {
        match spec.fail_first {
            None => true,
            Some(limit) => {
                let Ok(mut counts) = self.fail_counts.lock() else {
                    return true;
                };
                let n = counts.entry(spec.raw.clone()).or_insert(0);
                *n += 1;
                *n <= limit
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Server

/// A running mock provider.
pub struct MockHandle {
    pub addr: SocketAddr,
    state: Arc<MockState>,
    stop: watch::Sender<bool>,
}

impl MockHandle {
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    pub fn clear(&self) {
        if let Ok(mut r) = self.state.requests.lock() {
            r.clear();
        }
    }

    pub fn stats(&self) -> MockStats {
        self.state.stats()
    }

    pub fn set_fault(&self, spec: Option<FaultSpec>) {
        if let Ok(mut f) = self.state.default_fault.lock() {
            *f = spec;
        }
    }

    pub fn shutdown(self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for MockHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Something that can be served as one connection (plain TCP or TLS).
type Acceptor = Option<tokio_rustls::TlsAcceptor>;

async fn serve(
    listener: TcpListener,
    state: Arc<MockState>,
    tls: Acceptor,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            state.open_connections.fetch_add(1, Ordering::SeqCst);
            state.total_connections.fetch_add(1, Ordering::SeqCst);
            let svc_state = state.clone();
            let service = hyper::service::service_fn(move |req| handle(svc_state.clone(), req));
            let builder = hyper::server::conn::http1::Builder::new();
            match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::select! { _ = conn => {}, _ = stop.changed() => {} }
                }
                Some(acceptor) => {
                    if let Ok(tls_stream) = acceptor.accept(stream).await {
                        let conn = builder.serve_connection(TokioIo::new(tls_stream), service);
                        tokio::select! { _ = conn => {}, _ = stop.changed() => {} }
                    }
                }
            }
            state.open_connections.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

async fn start_with(listen: SocketAddr, tls: Acceptor) -> std::io::Result<MockHandle> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(MockState::default());
    let (stop, stop_rx) = watch::channel(false);
    tokio::spawn(serve(listener, state.clone(), tls, stop_rx));
    Ok(MockHandle { addr, state, stop })
}

/// Starts a plain-HTTP mock on the current tokio runtime (port 0 picks one).
pub async fn start(listen: SocketAddr) -> std::io::Result<MockHandle> {
    start_with(listen, None).await
}

/// Starts an HTTPS mock; returns it and the PEM of the CA that signed its certificate (valid for
/// `localhost` and `127.0.0.1`).
pub async fn start_tls(listen: SocketAddr) -> std::io::Result<(MockHandle, String)> {
    let err = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
    let ca_key = rcgen::KeyPair::generate().map_err(|e| err(&e))?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| err(&e))?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "switchyard mock CA");
    let ca = ca_params.self_signed(&ca_key).map_err(|e| err(&e))?;
    let leaf_key = rcgen::KeyPair::generate().map_err(|e| err(&e))?;
    let mut leaf_params =
        rcgen::CertificateParams::new(vec!["localhost".to_string()]).map_err(|e| err(&e))?;
    leaf_params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca, &ca_key)
        .map_err(|e| err(&e))?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der())
        .map_err(|e| err(&e))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| err(&e))?
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .map_err(|e| err(&e))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let handle = start_with(listen, Some(acceptor)).await?;
    Ok((handle, ca.pem()))
}

/// `switchyard mock-provider`: serve until SIGTERM or Ctrl-C.
pub async fn run(listen: SocketAddr) -> std::io::Result<()> {
    let handle = start(listen).await?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "mock-provider listening on http://{}", handle.addr)?;
        out.flush()?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    handle.shutdown();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Routes

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    full(status, "application/json", value.to_string())
}

fn error_body(status: u16, message: &str) -> serde_json::Value {
    serde_json::json!({"error": {"message": message, "type": if status == 429 { "rate_limit_error" } else { "server_error" }, "code": status.to_string()}})
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Splits `/fault/<spec>/rest` into the spec and `/rest`.
fn split_fault_prefix(path: &str) -> (Option<&str>, &str) {
    match path.strip_prefix("/fault/") {
        Some(rest) => match rest.find('/') {
            Some(i) => (Some(&rest[..i]), &rest[i..]),
            None => (Some(rest), "/"),
        },
        None => (None, path),
    }
}

async fn handle(
    state: Arc<MockState>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let full_path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    if let Some(control) = full_path.strip_prefix("/_mock/") {
        return Ok(control_route(&state, control, body));
    }
    let (prefix_spec, path) = split_fault_prefix(&full_path);
    let path = path.to_string();
    let header_spec = parts
        .headers
        .get("x-mock-fault")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let spec_text = header_spec.or(prefix_spec.map(str::to_string));
    let fault = match spec_text {
        Some(text) => match text.parse::<FaultSpec>() {
            Ok(f) => f,
            Err(e) => return Ok(json(StatusCode::BAD_REQUEST, error_body(400, &e))),
        },
        None => state
            .default_fault
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_default(),
    };
    state
        .requests
        .lock()
        .map(|mut r| {
            r.push(RecordedRequest {
                method: parts.method.to_string(),
                path: path.clone(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: body.clone(),
            })
        })
        .ok();

    if fault.cut_headers {
        return Err(std::io::Error::other("mock fault: cut before headers"));
    }
    if let Some(d) = fault.headers_delay {
        tokio::time::sleep(d).await;
    }
    if let Some(status) = fault.status {
        if state.should_fail(&fault) {
            let mut resp = json(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                error_body(status, &format!("mock provider fault: status {status}")),
            );
            if let Some(ra) = fault.retry_after.as_deref().and_then(|r| r.parse().ok()) {
                resp.headers_mut().insert(hyper::header::RETRY_AFTER, ra);
            }
            return Ok(resp);
        }
    }
    let request: serde_json::Value =
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let id = state.next_id.fetch_add(1, Ordering::SeqCst);
    let route = path.split('?').next().unwrap_or("");
    let stream = request
        .get("stream")
        .and_then(|s| s.as_bool())
        .unwrap_or(false);
    Ok(match (parts.method.as_str(), route) {
        ("POST", "/v1/chat/completions") if stream => {
            start_stream(&state, &fault, &request, id, StreamKind::Chat)
        }
        ("POST", "/v1/completions") if stream => {
            start_stream(&state, &fault, &request, id, StreamKind::Completion)
        }
        ("POST", "/v1/chat/completions") => {
            json(StatusCode::OK, chat_completion(&fault, &request, id))
        }
        ("POST", "/v1/completions") => json(StatusCode::OK, completion(&fault, &request, id)),
        ("POST", "/v1/embeddings") => json(StatusCode::OK, embeddings(&request)),
        ("POST", "/v1/responses") => json(StatusCode::OK, responses(&request, id)),
        ("GET", "/v1/models") => json(StatusCode::OK, models()),
        (method, _) => json(
            StatusCode::OK,
            serde_json::json!({"echo": {"method": method, "path": path, "body": String::from_utf8_lossy(&body)}}),
        ),
    })
}

fn control_route(state: &MockState, route: &str, body: Bytes) -> Response<Body> {
    match route {
        "requests" => {
            let list: Vec<serde_json::Value> = state
                .requests
                .lock()
                .map(|r| r.iter().map(RecordedRequest::to_json).collect())
                .unwrap_or_default();
            json(StatusCode::OK, serde_json::Value::Array(list))
        }
        "stats" => {
            let s = state.stats();
            json(
                StatusCode::OK,
                serde_json::json!({
                    "open_connections": s.open_connections,
                    "total_connections": s.total_connections,
                    "streams_started": s.streams_started,
                    "streams_completed": s.streams_completed,
                    "streams_cancelled": s.streams_cancelled,
                }),
            )
        }
        "fault" => {
            let text = String::from_utf8_lossy(&body).trim().to_string();
            let parsed = if text.is_empty() {
                Ok(None)
            } else {
                text.parse::<FaultSpec>().map(Some)
            };
            match parsed {
                Ok(f) => {
                    if let Ok(mut d) = state.default_fault.lock() {
                        *d = f;
                    }
                    json(StatusCode::OK, serde_json::json!({"fault": text}))
                }
                Err(e) => json(StatusCode::BAD_REQUEST, error_body(400, &e)),
            }
        }
        "clear" => {
            if let Ok(mut r) = state.requests.lock() {
                r.clear();
            }
            json(StatusCode::OK, serde_json::json!({"cleared": true}))
        }
        _ => json(
            StatusCode::NOT_FOUND,
            error_body(404, "unknown control route"),
        ),
    }
}

fn model_of(request: &serde_json::Value) -> String {
    request
        .get("model")
        .and_then(|m| m.as_str())
        .unwrap_or("mock-model")
        .to_string()
}

fn prompt_tokens(request: &serde_json::Value) -> usize {
    let text = request
        .get("messages")
        .map(|m| m.to_string())
        .or_else(|| request.get("prompt").map(|p| p.to_string()))
        .or_else(|| request.get("input").map(|p| p.to_string()))
        .unwrap_or_default();
    text.split_whitespace().count().max(1)
}

fn content(fault: &FaultSpec) -> String {
    let base = "Hello from the mock provider.";
    match fault.content_bytes {
        Some(n) if n > base.len() => format!("{base}{}", "x".repeat(n - base.len())),
        _ => base.to_string(),
    }
}

fn usage(prompt: usize, completion: usize) -> serde_json::Value {
    serde_json::json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

fn chat_completion(fault: &FaultSpec, request: &serde_json::Value, id: u64) -> serde_json::Value {
    let text = content(fault);
    serde_json::json!({
        "id": format!("chatcmpl-mock-{id}"),
        "object": "chat.completion",
        "created": now(),
        "model": model_of(request),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
        "usage": usage(prompt_tokens(request), text.split_whitespace().count()),
        "system_fingerprint": "fp_mock",
    })
}

fn completion(fault: &FaultSpec, request: &serde_json::Value, id: u64) -> serde_json::Value {
    let text = content(fault);
    serde_json::json!({
        "id": format!("cmpl-mock-{id}"),
        "object": "text_completion",
        "created": now(),
        "model": model_of(request),
        "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": "stop"}],
        "usage": usage(prompt_tokens(request), text.split_whitespace().count()),
    })
}

fn embeddings(request: &serde_json::Value) -> serde_json::Value {
    let inputs: Vec<String> = match request.get("input") {
        Some(serde_json::Value::Array(items)) => items.iter().map(|i| i.to_string()).collect(),
        Some(other) => vec![other.to_string()],
        None => vec![],
    };
    let data: Vec<serde_json::Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let seed = text
                .bytes()
                .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
            let vector: Vec<f64> = (0..8)
                .map(|k| ((seed.rotate_left(k * 4) % 1000) as f64) / 1000.0)
                .collect();
            serde_json::json!({"object": "embedding", "index": i, "embedding": vector})
        })
        .collect();
    let tokens: usize = inputs
        .iter()
        .map(|t| t.split_whitespace().count().max(1))
        .sum();
    serde_json::json!({"object": "list", "data": data, "model": model_of(request), "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
}

fn responses(request: &serde_json::Value, id: u64) -> serde_json::Value {
    let text = "Hello from the mock provider.";
    serde_json::json!({
        "id": format!("resp_mock_{id}"),
        "object": "response",
        "created_at": now(),
        "status": "completed",
        "model": model_of(request),
        "output": [{"type": "message", "id": format!("msg_mock_{id}"), "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]}],
        "usage": {"input_tokens": prompt_tokens(request), "output_tokens": 5, "total_tokens": prompt_tokens(request) + 5},
    })
}

fn models() -> serde_json::Value {
    let data: Vec<serde_json::Value> = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
        .iter()
        .map(|id| serde_json::json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "mock"}))
        .collect();
    serde_json::json!({"object": "list", "data": data})
}

// ---------------------------------------------------------------------------------------------
// Streams

#[derive(Clone, Copy)]
enum StreamKind {
    Chat,
    Completion,
}

/// What the producer task sends: an SSE event, or the instruction to cut the connection.
type Frames = mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>;

fn start_stream(
    state: &Arc<MockState>,
    fault: &FaultSpec,
    request: &serde_json::Value,
    id: u64,
    kind: StreamKind,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel(4);
    let body = StreamBody::new(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|frame| (frame, rx))
    }));
    state.streams_started.fetch_add(1, Ordering::SeqCst);
    let producer = StreamProducer {
        state: state.clone(),
        fault: fault.clone(),
        model: model_of(request),
        prompt_tokens: prompt_tokens(request),
        include_usage: request
            .pointer("/stream_options/include_usage")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        id,
        kind,
    };
    tokio::spawn(producer.run(tx));
    let mut resp = Response::new(BodyExt::boxed(body));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    resp.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    resp
}

struct StreamProducer {
    state: Arc<MockState>,
    fault: FaultSpec,
    model: String,
    prompt_tokens: usize,
    include_usage: bool,
    id: u64,
    kind: StreamKind,
}

/// The stream ended early because the peer went away.
struct Cancelled;

impl StreamProducer {
    fn chunk(&self, delta: serde_json::Value, finish: Option<&str>) -> serde_json::Value {
        let created = now();
        match self.kind {
            StreamKind::Chat => serde_json::json!({
                "id": format!("chatcmpl-mock-{}", self.id), "object": "chat.completion.chunk", "created": created,
                "model": self.model, "system_fingerprint": "fp_mock",
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            }),
            StreamKind::Completion => serde_json::json!({
                "id": format!("cmpl-mock-{}", self.id), "object": "text_completion", "created": created,
                "model": self.model,
                "choices": [{"index": 0, "text": delta.get("content").and_then(|c| c.as_str()).unwrap_or(""), "logprobs": null, "finish_reason": finish}],
            }),
        }
    }

    async fn send(tx: &Frames, data: &str) -> Result<(), Cancelled> {
        let event = Bytes::from(format!("data: {data}\n\n"));
        tx.send(Ok(Frame::data(event))).await.map_err(|_| Cancelled)
    }

    async fn run(self, tx: Frames) {
        match self.produce(&tx).await {
            Ok(()) => {
                self.state.streams_completed.fetch_add(1, Ordering::SeqCst);
            }
            Err(Cancelled) => {
                self.state.streams_cancelled.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    async fn produce(&self, tx: &Frames) -> Result<(), Cancelled> {
        let f = &self.fault;
        if let Some(d) = f.first_chunk_delay {
            pause(tx, d).await?;
        }
        if f.error_event {
            Self::send(
                tx,
                &error_body(500, "mock provider fault: error event").to_string(),
            )
            .await?;
            return Self::send(tx, "[DONE]").await;
        }
        if matches!(self.kind, StreamKind::Chat) {
            let role = self.chunk(
                serde_json::json!({"role": "assistant", "content": ""}),
                None,
            );
            Self::send(tx, &role.to_string()).await?;
        }
        let chunks = if f.empty_stream {
            0
        } else {
            f.chunks.unwrap_or(5)
        };
        for i in 0..chunks {
            if i > 0 {
                if let Some(d) = f.chunk_delay {
                    pause(tx, d).await?;
                }
            }
            if f.stall_after == Some(i) {
                tx.closed().await;
                return Err(Cancelled);
            }
            if f.cut_after == Some(i) {
                let _ = tx.send(Err(std::io::Error::other("mock fault: cut"))).await;
                return Err(Cancelled);
            }
            if f.malformed && i == 1 {
                Self::send(tx, "{not json").await?;
                continue;
            }
            let delta = self.chunk(serde_json::json!({"content": format!("tok{i} ")}), None);
            Self::send(tx, &delta.to_string()).await?;
        }
        if f.stall_after.is_some_and(|k| k >= chunks) {
            tx.closed().await;
            return Err(Cancelled);
        }
        let finish = self.chunk(serde_json::json!({}), Some("stop"));
        Self::send(tx, &finish.to_string()).await?;
        if self.include_usage {
            let mut last = self.chunk(serde_json::json!({}), None);
            last["choices"] = serde_json::json!([]);
            last["usage"] = usage(self.prompt_tokens, chunks);
            Self::send(tx, &last.to_string()).await?;
        }
        Self::send(tx, "[DONE]").await
    }
}

/// Sleeps, noticing a peer that went away meanwhile.
async fn pause(tx: &Frames, d: Duration) -> Result<(), Cancelled> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = tx.closed() => Err(Cancelled),
    }
}
