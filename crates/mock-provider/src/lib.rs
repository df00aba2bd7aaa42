//! The fault-injecting mock LLM provider: the only fake in our tests, and `switchyard
//! mock-provider` / `switchyard demo` for demos and benchmarks. It speaks three wire formats.
//!
//! It is a crate of its own (`switchyard-mock`, a workspace member) so that the `switchyard`
//! library neither compiles it nor needs hyper's `server` feature: the integration tests use it
//! as a dev-dependency, the binary behind its default `demo` feature.
//!
//! Routes:
//! - OpenAI: `POST /v1/chat/completions` (JSON or SSE), `/v1/completions`, `/v1/embeddings`,
//!   `/v1/responses`, `GET /v1/models`; any path no format claims answers a JSON echo.
//! - Anthropic Messages: `POST` to any path ending in `/v1/messages`. Requires `x-api-key` (else
//!   401 `authentication_error`), `anthropic-version` (else 400) and a JSON body with `model`,
//!   `messages` and `max_tokens` (else 400 `invalid_request_error`). `"stream": true` answers
//!   SSE: `message_start`, `content_block_start`, `ping`, N x `content_block_delta`,
//!   `content_block_stop`, `message_delta` (stop reason, `usage.output_tokens`), `message_stop`.
//!   Errors are `{"type":"error","error":{"type":...,"message":...}}` (400
//!   `invalid_request_error`, 401 `authentication_error`, 403 `permission_error`, 404
//!   `not_found_error`, 429 `rate_limit_error`, 529 `overloaded_error`, other 5xx `api_error`).
//! - Gemini: `POST .../models/{model}:generateContent` and `:streamGenerateContent` (SSE with
//!   `?alt=sse`: `data: <GenerateContentResponse>` events, no `[DONE]`; without it, one JSON
//!   array of those responses). Requires an `x-goog-api-key` header or a `key` query parameter
//!   (else 403 `PERMISSION_DENIED`) and non-empty `contents` (else 400 `INVALID_ARGUMENT`). A
//!   stream sends one event per content piece, then a last event carrying `finishReason` and
//!   `usageMetadata`. Errors are `{"error":{"code":N,"message":...,"status":...}}` (400
//!   `INVALID_ARGUMENT`, 401 `UNAUTHENTICATED`, 403 `PERMISSION_DENIED`, 404 `NOT_FOUND`, 429
//!   `RESOURCE_EXHAUSTED`, 500 `INTERNAL`, 503 `UNAVAILABLE`, 504 `DEADLINE_EXCEEDED`).
//!
//! Control (never faulted, never recorded): `GET /_mock/requests`, `GET /_mock/stats`,
//! `POST /_mock/fault` (body = spec, empty clears), `POST /_mock/clear`.
//!
//! Embeddings (`/v1/embeddings`) are deterministic: an input containing `[[emb:x,y,...]]` gets
//! exactly that vector (tests control similarities with it), any other input an 8-dimensional
//! vector hashed from its text.
//!
//! Answers are deterministic. Text is "Hello from the mock provider." (streams send `tok0 `,
//! `tok1 `, ...). Tool calling, in all three formats: when the request declares tools (and
//! tool choice is not "none") and the conversation ends with a user message, the answer is ONE
//! call to the first declared tool (or the one tool choice names). Its arguments hold each
//! property the tool's schema lists in `required`: the first `enum` value if it has one, else
//! by type `"Paris"` (string), `1` (integer, number), `true`, `[]`, `{}`, else `null`; so a
//! weather tool requiring `location` gets `{"location":"Paris"}`, a tool requiring nothing
//! gets `{}`. OpenAI answers `tool_calls` with finish reason `tool_calls` (streamed: id and
//! name first, then the arguments split across the content events); Anthropic a `tool_use`
//! block with stop reason `tool_use` (streamed as `input_json_delta` pieces); Gemini one
//! `functionCall` part with finish reason `STOP` (streamed whole, in one event). When the
//! conversation ends with a tool result (OpenAI `tool` message, Anthropic `tool_result` block,
//! Gemini `functionResponse` part), the answer is text "The tool returned: <result>."
//! (streamed split across the content events). Token counts: prompt = whitespace-separated
//! words of the messages/contents JSON; completion = words of the answer, or the number of
//! content events in a stream. OpenAI streams end with a usage chunk (`choices: []`) when
//! `stream_options.include_usage` is true.
//!
//! A fault spec is comma-separated items, taken from the `x-mock-fault` header, else a path
//! prefix `/fault/<spec>/...` (stripped before routing), else the default set by `set_fault`.
//! Every format honours every item, with its own shapes:
//! - `status=N` answer N with the format's error body; `retry_after=S` adds `Retry-After`;
//!   `fail_first=K` only the first K requests carrying this same spec fail (a status fault
//!   wins over the Anthropic/Gemini header and body checks);
//! - `headers_delay_ms=N` wait before the response head;
//! - streams: `first_chunk_delay_ms=N`, `chunk_delay_ms=N`, `chunks=N` (default 5 content
//!   events: OpenAI deltas, Anthropic `content_block_delta`s, Gemini text events; a Gemini
//!   function call is always one event), `stall_after=K` (stop after K content events, keep the
//!   connection), `cut_after=K` (drop the connection after K), `malformed` (the second content
//!   event's data is not JSON), `error_event` (a 200 stream whose first event is an error:
//!   OpenAI `data: {"error":...}` then `[DONE]`; Anthropic `event: error` with an
//!   `overloaded_error` body; Gemini `data: {"error":{"code":500,...,"status":"INTERNAL"}}`),
//!   `empty_stream` (no content events: OpenAI goes straight to the finish chunk and `[DONE]`,
//!   Anthropic from `ping` to `content_block_stop`, Gemini sends only the last event);
//! - `cut=headers` close the connection before any response; `content_bytes=N` pad a
//!   non-streaming text answer to N bytes.
//!
//! A request header `x-mock-answer: <text>` (e.g. a provider's static `headers:` in a gateway
//! config) replaces the default text answer, in every format (streams split it across the
//! content events).

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

/// Requests kept for `/_mock/requests`; beyond this the oldest half is dropped.
const MAX_RECORDED_REQUESTS: usize = 10_000;

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
    let route = path.split('?').next().unwrap_or("").to_string();
    let wire = if parts.method == hyper::Method::POST {
        wire_of(&route)
    } else {
        Wire::OpenAi
    };
    let header_spec = parts
        .headers
        .get("x-mock-fault")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let spec_text = header_spec.or(prefix_spec.map(str::to_string));
    let fault = match spec_text {
        Some(text) => match text.parse::<FaultSpec>() {
            Ok(f) => f,
            Err(e) => return Ok(wire_error(wire, 400, &e)),
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
            // Bounded, so a long benchmark soak does not grow the mock without end.
            if r.len() >= MAX_RECORDED_REQUESTS {
                r.drain(..MAX_RECORDED_REQUESTS / 2);
            }
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
            let mut resp = wire_error(
                wire,
                status,
                &format!("mock provider fault: status {status}"),
            );
            if let Some(ra) = fault.retry_after.as_deref().and_then(|r| r.parse().ok()) {
                resp.headers_mut().insert(hyper::header::RETRY_AFTER, ra);
            }
            return Ok(resp);
        }
    }
    let request: serde_json::Value =
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let answer_override = parts
        .headers
        .get("x-mock-answer")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let openai_answer = |request: &serde_json::Value| {
        with_override(openai_answer(request), answer_override.as_deref())
    };
    let id = state.next_id.fetch_add(1, Ordering::SeqCst);
    let stream = request
        .get("stream")
        .and_then(|s| s.as_bool())
        .unwrap_or(false);
    match wire {
        Wire::Anthropic => {
            return Ok(anthropic_route(
                &state,
                &fault,
                &parts.headers,
                &request,
                id,
                answer_override.as_deref(),
            ))
        }
        Wire::Gemini => {
            return Ok(gemini_route(
                &state,
                &fault,
                &path,
                &parts.headers,
                &request,
                id,
            ))
        }
        Wire::OpenAi => {}
    }
    let route = route.as_str();
    Ok(match (parts.method.as_str(), route) {
        ("POST", "/v1/chat/completions") if stream => start_stream(
            &state,
            &fault,
            &request,
            id,
            StreamKind::Chat,
            openai_answer(&request),
        ),
        ("POST", "/v1/completions") if stream => start_stream(
            &state,
            &fault,
            &request,
            id,
            StreamKind::Completion,
            Answer::Default,
        ),
        ("POST", "/v1/chat/completions") => json(
            StatusCode::OK,
            chat_completion(&fault, &request, id, &openai_answer(&request)),
        ),
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

fn chat_completion(
    fault: &FaultSpec,
    request: &serde_json::Value,
    id: u64,
    answer: &Answer,
) -> serde_json::Value {
    let (message, finish) = match answer {
        Answer::ToolCall { name, args } => (
            serde_json::json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": [{
                "id": format!("call_mock_{id}"), "type": "function",
                "function": {"name": name, "arguments": args.to_string()},
            }]}),
            "tool_calls",
        ),
        _ => (
            serde_json::json!({"role": "assistant", "content": answer.text(fault), "refusal": null}),
            "stop",
        ),
    };
    serde_json::json!({
        "id": format!("chatcmpl-mock-{id}"),
        "object": "chat.completion",
        "created": now(),
        "model": model_of(request),
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage(prompt_tokens(request), answer.tokens(fault)),
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
            if let Some(vector) = chosen_vector(text) {
                return serde_json::json!({"object": "embedding", "index": i, "embedding": vector});
            }
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

/// The vector an input names with `[[emb:x,y,...]]`, if it does.
fn chosen_vector(text: &str) -> Option<Vec<f64>> {
    let start = text.find("[[emb:")? + "[[emb:".len();
    let len = text[start..].find("]]")?;
    text[start..start + len]
        .split(',')
        .map(|x| x.trim().parse::<f64>().ok())
        .collect()
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
// Wire formats, answers and tools

/// Which provider's wire format a request speaks; decides its error shape too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    OpenAi,
    Anthropic,
    Gemini,
}

/// The format a POST to this route (no query) speaks.
fn wire_of(route: &str) -> Wire {
    if route.ends_with("/v1/messages") {
        Wire::Anthropic
    } else if gemini_call(route).is_some() {
        Wire::Gemini
    } else {
        Wire::OpenAi
    }
}

/// `.../models/{model}:{method}` for the two Gemini content methods: `(model, streaming)`.
fn gemini_call(route: &str) -> Option<(&str, bool)> {
    let (_, tail) = route.rsplit_once("/models/")?;
    let (model, method) = tail.split_once(':')?;
    match method {
        "generateContent" => Some((model, false)),
        "streamGenerateContent" => Some((model, true)),
        _ => None,
    }
}

/// An error response in the format's shape.
fn wire_error(wire: Wire, status: u16, message: &str) -> Response<Body> {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match wire {
        Wire::OpenAi => error_body(status, message),
        Wire::Anthropic => anthropic_error(status, message),
        Wire::Gemini => gemini_error(status, message),
    };
    json(code, body)
}

fn anthropic_error(status: u16, message: &str) -> serde_json::Value {
    let kind = match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    };
    serde_json::json!({"type": "error", "error": {"type": kind, "message": message}})
}

fn gemini_error(status: u16, message: &str) -> serde_json::Value {
    let kind = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    };
    serde_json::json!({"error": {"code": status, "message": message, "status": kind}})
}

/// What the mock answers.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// "Hello from the mock provider." (padded by `content_bytes`); streams send `tok{i} `.
    Default,
    /// Text mentioning the tool result the conversation ends with.
    ToolResult(String),
    /// One call to a declared tool.
    ToolCall {
        name: String,
        args: serde_json::Value,
    },
}

impl Answer {
    fn text(&self, fault: &FaultSpec) -> String {
        match self {
            Answer::Default => content(fault),
            Answer::ToolResult(text) => text.clone(),
            Answer::ToolCall { args, .. } => args.to_string(),
        }
    }

    /// Completion tokens of a non-streaming answer: the words of its text or arguments.
    fn tokens(&self, fault: &FaultSpec) -> usize {
        self.text(fault).split_whitespace().count().max(1)
    }

    /// The content events of a stream, `chunks` of them (a Gemini function call: one).
    fn pieces(&self, chunks: usize, wire: Wire) -> Vec<String> {
        match self {
            Answer::Default => (0..chunks).map(|i| format!("tok{i} ")).collect(),
            Answer::ToolCall { .. } if wire == Wire::Gemini => {
                (0..chunks.min(1)).map(|_| String::new()).collect()
            }
            Answer::ToolResult(text) => split_even(text, chunks),
            Answer::ToolCall { args, .. } => split_even(&args.to_string(), chunks),
        }
    }
}

/// `text` cut into `n` consecutive pieces of near-equal length (some empty if it is short).
fn split_even(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    (0..n)
        .map(|i| {
            chars[i * chars.len() / n..(i + 1) * chars.len() / n]
                .iter()
                .collect()
        })
        .collect()
}

fn tool_result_text(result: &str) -> Answer {
    Answer::ToolResult(format!("The tool returned: {result}."))
}

/// A message content that is a string or a list of text parts, as one string.
fn plain_text(content: Option<&serde_json::Value>) -> String {
    match content {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(parts)) => parts
            .iter()
            .map(|p| match p.get("text").and_then(|t| t.as_str()) {
                Some(t) => t.to_string(),
                None => plain_text(p.get("content")),
            })
            .collect(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The call to make, given the declared tools as `(name, parameter schema)` and the name tool
/// choice forces (if any); `None` when no tool is declared.
fn call_tool(declared: Vec<(String, serde_json::Value)>, forced: Option<&str>) -> Option<Answer> {
    let (name, schema) = match forced {
        Some(forced) => declared
            .into_iter()
            .find(|(n, _)| n == forced)
            .unwrap_or_else(|| (forced.to_string(), serde_json::Value::Null)),
        None => declared.into_iter().next()?,
    };
    Some(Answer::ToolCall {
        name,
        args: tool_arguments(&schema),
    })
}

/// Each `required` property of a JSON schema with a placeholder value (see the module doc).
fn tool_arguments(schema: &serde_json::Value) -> serde_json::Value {
    let mut args = serde_json::Map::new();
    let required = schema.get("required").and_then(|r| r.as_array());
    for name in required.into_iter().flatten().filter_map(|n| n.as_str()) {
        let prop = schema
            .get("properties")
            .and_then(|p| p.get(name))
            .unwrap_or(&serde_json::Value::Null);
        args.insert(name.to_string(), placeholder(prop));
    }
    serde_json::Value::Object(args)
}

fn placeholder(prop: &serde_json::Value) -> serde_json::Value {
    if let Some(first) = prop
        .get("enum")
        .and_then(|e| e.as_array())
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let ty = match prop.get("type") {
        Some(serde_json::Value::String(t)) => t.to_ascii_lowercase(),
        Some(serde_json::Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str())
            .find(|t| !t.eq_ignore_ascii_case("null"))
            .unwrap_or("")
            .to_ascii_lowercase(),
        _ => String::new(),
    };
    match ty.as_str() {
        "string" => "Paris".into(),
        "integer" | "number" => 1.into(),
        "boolean" => true.into(),
        "array" => serde_json::json!([]),
        "object" => serde_json::json!({}),
        _ => serde_json::Value::Null,
    }
}

/// The default answer replaced by an `x-mock-answer` text.
fn with_override(answer: Answer, text: Option<&str>) -> Answer {
    match (answer, text) {
        (Answer::Default, Some(t)) => Answer::ToolResult(t.to_string()),
        (a, _) => a,
    }
}

fn openai_answer(request: &serde_json::Value) -> Answer {
    let last = request
        .get("messages")
        .and_then(|m| m.as_array())
        .and_then(|m| m.last());
    match last.and_then(|m| m.get("role")).and_then(|r| r.as_str()) {
        Some("tool" | "function") => {
            tool_result_text(&plain_text(last.and_then(|m| m.get("content"))))
        }
        Some("user") => {
            let choice = request.get("tool_choice");
            if choice.and_then(|c| c.as_str()) == Some("none") {
                return Answer::Default;
            }
            let forced = choice
                .and_then(|c| c.pointer("/function/name"))
                .and_then(|n| n.as_str());
            let declared = request
                .get("tools")
                .and_then(|t| t.as_array())
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    let f = t.get("function")?;
                    let name = f.get("name")?.as_str()?.to_string();
                    Some((name, f.get("parameters").cloned().unwrap_or_default()))
                })
                .collect();
            call_tool(declared, forced).unwrap_or(Answer::Default)
        }
        _ => Answer::Default,
    }
}

fn anthropic_answer(request: &serde_json::Value) -> Answer {
    let Some(last) = request
        .get("messages")
        .and_then(|m| m.as_array())
        .and_then(|m| m.last())
    else {
        return Answer::Default;
    };
    if last.get("role").and_then(|r| r.as_str()) != Some("user") {
        return Answer::Default;
    }
    let results: Vec<String> = last
        .get("content")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .filter(|b| b.get("type").and_then(|t| t.as_str()) == Some("tool_result"))
        .map(|b| plain_text(b.get("content")))
        .collect();
    if !results.is_empty() {
        return tool_result_text(&results.join(" "));
    }
    let choice = request.get("tool_choice");
    let choice_type = choice.and_then(|c| c.get("type")).and_then(|t| t.as_str());
    if choice_type == Some("none") {
        return Answer::Default;
    }
    let forced = match choice_type {
        Some("tool") => choice.and_then(|c| c.get("name")).and_then(|n| n.as_str()),
        _ => None,
    };
    let declared = request
        .get("tools")
        .and_then(|t| t.as_array())
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let name = t.get("name")?.as_str()?.to_string();
            Some((name, t.get("input_schema").cloned().unwrap_or_default()))
        })
        .collect();
    call_tool(declared, forced).unwrap_or(Answer::Default)
}

/// A Gemini field under its JSON name or its proto (snake_case) name; the API takes both.
fn field<'a>(v: &'a serde_json::Value, camel: &str, snake: &str) -> Option<&'a serde_json::Value> {
    v.get(camel).or_else(|| v.get(snake))
}

fn gemini_answer(request: &serde_json::Value) -> Answer {
    let Some(last) = request
        .get("contents")
        .and_then(|c| c.as_array())
        .and_then(|c| c.last())
    else {
        return Answer::Default;
    };
    let parts: Vec<&serde_json::Value> = last
        .get("parts")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .collect();
    let responses: Vec<String> = parts
        .iter()
        .filter_map(|p| field(p, "functionResponse", "function_response"))
        .map(|r| r.get("response").unwrap_or(r).to_string())
        .collect();
    if !responses.is_empty() {
        return tool_result_text(&responses.join(" "));
    }
    if !matches!(
        last.get("role").and_then(|r| r.as_str()),
        None | Some("user")
    ) {
        return Answer::Default;
    }
    let config = field(request, "toolConfig", "tool_config")
        .and_then(|c| field(c, "functionCallingConfig", "function_calling_config"));
    let mode = config.and_then(|c| c.get("mode")).and_then(|m| m.as_str());
    if mode.is_some_and(|m| m.eq_ignore_ascii_case("none")) {
        return Answer::Default;
    }
    let forced = config
        .and_then(|c| field(c, "allowedFunctionNames", "allowed_function_names"))
        .and_then(|n| n.get(0))
        .and_then(|n| n.as_str());
    let declared = request
        .get("tools")
        .and_then(|t| t.as_array())
        .into_iter()
        .flatten()
        .filter_map(|t| field(t, "functionDeclarations", "function_declarations"))
        .filter_map(|d| d.as_array())
        .flatten()
        .filter_map(|d| {
            let name = d.get("name")?.as_str()?.to_string();
            let schema = d
                .get("parameters")
                .or_else(|| field(d, "parametersJsonSchema", "parameters_json_schema"));
            Some((name, schema.cloned().unwrap_or_default()))
        })
        .collect();
    call_tool(declared, forced).unwrap_or(Answer::Default)
}

fn header<'a>(headers: &'a hyper::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
}

/// `POST .../v1/messages`: the Anthropic Messages API.
fn anthropic_route(
    state: &Arc<MockState>,
    fault: &FaultSpec,
    headers: &hyper::HeaderMap,
    request: &serde_json::Value,
    id: u64,
    answer_override: Option<&str>,
) -> Response<Body> {
    let invalid = |status: u16, message: &str| wire_error(Wire::Anthropic, status, message);
    if header(headers, "x-api-key").is_none() {
        return invalid(401, "x-api-key header is required");
    }
    if header(headers, "anthropic-version").is_none() {
        return invalid(400, "anthropic-version: header is required");
    }
    if !request.is_object() {
        return invalid(400, "The request body is not a valid JSON object");
    }
    for required in ["model", "messages", "max_tokens"] {
        if request.get(required).is_none_or(|v| v.is_null()) {
            return invalid(400, &format!("{required}: Field required"));
        }
    }
    let answer = with_override(anthropic_answer(request), answer_override);
    if request.get("stream").and_then(|s| s.as_bool()) == Some(true) {
        return start_stream(state, fault, request, id, StreamKind::Anthropic, answer);
    }
    let (block, stop) = match &answer {
        Answer::ToolCall { name, args } => (
            serde_json::json!({"type": "tool_use", "id": format!("toolu_mock_{id}"), "name": name, "input": args}),
            "tool_use",
        ),
        _ => (
            serde_json::json!({"type": "text", "text": answer.text(fault)}),
            "end_turn",
        ),
    };
    json(
        StatusCode::OK,
        serde_json::json!({
            "id": format!("msg_mock_{id}"),
            "type": "message",
            "role": "assistant",
            "model": model_of(request),
            "content": [block],
            "stop_reason": stop,
            "stop_sequence": null,
            "usage": {"input_tokens": prompt_tokens(request), "output_tokens": answer.tokens(fault)},
        }),
    )
}

fn gemini_prompt_tokens(request: &serde_json::Value) -> usize {
    request
        .get("contents")
        .map(|c| c.to_string())
        .unwrap_or_default()
        .split_whitespace()
        .count()
        .max(1)
}

fn gemini_usage(prompt: usize, completion: usize) -> serde_json::Value {
    serde_json::json!({"promptTokenCount": prompt, "candidatesTokenCount": completion, "totalTokenCount": prompt + completion})
}

/// One Gemini `GenerateContentResponse` with a single candidate.
fn gemini_response(
    model: &str,
    id: u64,
    parts: serde_json::Value,
    finish: Option<&str>,
    usage: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut candidate =
        serde_json::json!({"content": {"role": "model", "parts": parts}, "index": 0});
    let mut response = serde_json::json!({"candidates": [], "modelVersion": model, "responseId": format!("mock-resp-{id}")});
    if let Some(finish) = finish {
        candidate["finishReason"] = finish.into();
    }
    response["candidates"] = serde_json::json!([candidate]);
    if let Some(usage) = usage {
        response["usageMetadata"] = usage;
    }
    response
}

fn gemini_part(answer: &Answer, fault: &FaultSpec) -> serde_json::Value {
    match answer {
        Answer::ToolCall { name, args } => {
            serde_json::json!({"functionCall": {"name": name, "args": args}})
        }
        _ => serde_json::json!({"text": answer.text(fault)}),
    }
}

/// `POST .../models/{model}:generateContent` and `:streamGenerateContent`: the Gemini API.
fn gemini_route(
    state: &Arc<MockState>,
    fault: &FaultSpec,
    path: &str,
    headers: &hyper::HeaderMap,
    request: &serde_json::Value,
    id: u64,
) -> Response<Body> {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let Some((model, streaming)) = gemini_call(route) else {
        return wire_error(Wire::Gemini, 404, "unknown method");
    };
    let params: Vec<(&str, &str)> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    let query_key = params.iter().any(|(k, v)| *k == "key" && !v.is_empty());
    if header(headers, "x-goog-api-key").is_none() && !query_key {
        return wire_error(
            Wire::Gemini,
            403,
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
        );
    }
    if !request.is_object() {
        return wire_error(Wire::Gemini, 400, "Invalid JSON payload received.");
    }
    if request
        .get("contents")
        .and_then(|c| c.as_array())
        .is_none_or(|c| c.is_empty())
    {
        return wire_error(
            Wire::Gemini,
            400,
            "* GenerateContentRequest.contents: contents is not specified\n",
        );
    }
    let answer = gemini_answer(request);
    if streaming {
        let sse = params.contains(&("alt", "sse"));
        let kind = StreamKind::Gemini {
            model: model.to_string(),
            sse,
        };
        return start_stream(state, fault, request, id, kind, answer);
    }
    json(
        StatusCode::OK,
        gemini_response(
            model,
            id,
            serde_json::json!([gemini_part(&answer, fault)]),
            Some("STOP"),
            Some(gemini_usage(
                gemini_prompt_tokens(request),
                answer.tokens(fault),
            )),
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Streams

#[derive(Clone)]
enum StreamKind {
    Chat,
    Completion,
    Anthropic,
    /// `sse`: `?alt=sse` framing; otherwise one JSON array, streamed.
    Gemini {
        model: String,
        sse: bool,
    },
}

impl StreamKind {
    fn wire(&self) -> Wire {
        match self {
            StreamKind::Chat | StreamKind::Completion => Wire::OpenAi,
            StreamKind::Anthropic => Wire::Anthropic,
            StreamKind::Gemini { .. } => Wire::Gemini,
        }
    }
}

/// What the producer task sends: an SSE event, or the instruction to cut the connection.
type Frames = mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>;

fn start_stream(
    state: &Arc<MockState>,
    fault: &FaultSpec,
    request: &serde_json::Value,
    id: u64,
    kind: StreamKind,
    answer: Answer,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel(4);
    let body = StreamBody::new(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|frame| (frame, rx))
    }));
    state.streams_started.fetch_add(1, Ordering::SeqCst);
    let content_type = match kind {
        StreamKind::Gemini { sse: false, .. } => "application/json",
        _ => "text/event-stream",
    };
    let producer = StreamProducer {
        state: state.clone(),
        fault: fault.clone(),
        model: model_of(request),
        prompt_tokens: match kind {
            StreamKind::Gemini { .. } => gemini_prompt_tokens(request),
            _ => prompt_tokens(request),
        },
        include_usage: request
            .pointer("/stream_options/include_usage")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        id,
        kind,
        answer,
    };
    tokio::spawn(producer.run(tx));
    let mut resp = Response::new(BodyExt::boxed(body));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
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
    answer: Answer,
}

/// The stream ended early because the peer went away.
struct Cancelled;

/// One event: its SSE `event:` name (if any) and its data.
type Event = (Option<&'static str>, String);

/// Writes events in the stream's framing: SSE, or the elements of one JSON array.
struct Out<'a> {
    tx: &'a Frames,
    json_array: bool,
    started: bool,
}

impl Out<'_> {
    async fn send(&mut self, (name, data): &Event) -> Result<(), Cancelled> {
        let text = if self.json_array {
            let sep = if self.started { ",\r\n" } else { "[" };
            format!("{sep}{data}")
        } else {
            match name {
                Some(name) => format!("event: {name}\ndata: {data}\n\n"),
                None => format!("data: {data}\n\n"),
            }
        };
        self.started = true;
        self.tx
            .send(Ok(Frame::data(Bytes::from(text))))
            .await
            .map_err(|_| Cancelled)
    }

    async fn send_all(&mut self, events: Vec<Event>) -> Result<(), Cancelled> {
        for event in &events {
            self.send(event).await?;
        }
        Ok(())
    }

    /// Closes the JSON array; nothing for SSE.
    async fn end(&mut self) -> Result<(), Cancelled> {
        if !self.json_array {
            return Ok(());
        }
        let close = if self.started { "]" } else { "[]" };
        self.tx
            .send(Ok(Frame::data(Bytes::from(close))))
            .await
            .map_err(|_| Cancelled)
    }
}

fn data(value: serde_json::Value) -> Event {
    (None, value.to_string())
}

fn named(name: &'static str, value: serde_json::Value) -> Event {
    (Some(name), value.to_string())
}

impl StreamProducer {
    fn chunk(&self, delta: serde_json::Value, finish: Option<&str>) -> serde_json::Value {
        let created = now();
        match self.kind {
            StreamKind::Completion => serde_json::json!({
                "id": format!("cmpl-mock-{}", self.id), "object": "text_completion", "created": created,
                "model": self.model,
                "choices": [{"index": 0, "text": delta.get("content").and_then(|c| c.as_str()).unwrap_or(""), "logprobs": null, "finish_reason": finish}],
            }),
            _ => serde_json::json!({
                "id": format!("chatcmpl-mock-{}", self.id), "object": "chat.completion.chunk", "created": created,
                "model": self.model, "system_fingerprint": "fp_mock",
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            }),
        }
    }

    fn tool_call(&self) -> Option<(&str, &serde_json::Value)> {
        match &self.answer {
            Answer::ToolCall { name, args } => Some((name, args)),
            _ => None,
        }
    }

    /// The in-stream error that `error_event` sends, and what follows it.
    fn error_events(&self) -> Vec<Event> {
        let message = "mock provider fault: error event";
        match &self.kind {
            StreamKind::Chat | StreamKind::Completion => {
                vec![data(error_body(500, message)), (None, "[DONE]".to_string())]
            }
            StreamKind::Anthropic => vec![named("error", anthropic_error(529, message))],
            StreamKind::Gemini { .. } => vec![data(gemini_error(500, message))],
        }
    }

    /// The events before the content events.
    fn prelude(&self) -> Vec<Event> {
        match &self.kind {
            StreamKind::Chat => {
                let delta = match self.tool_call() {
                    Some((name, _)) => {
                        serde_json::json!({"role": "assistant", "content": null, "tool_calls": [{
                            "index": 0, "id": format!("call_mock_{}", self.id), "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }]})
                    }
                    None => serde_json::json!({"role": "assistant", "content": ""}),
                };
                vec![data(self.chunk(delta, None))]
            }
            StreamKind::Completion | StreamKind::Gemini { .. } => vec![],
            StreamKind::Anthropic => {
                let block = match self.tool_call() {
                    Some((name, _)) => {
                        serde_json::json!({"type": "tool_use", "id": format!("toolu_mock_{}", self.id), "name": name, "input": {}})
                    }
                    None => serde_json::json!({"type": "text", "text": ""}),
                };
                vec![
                    named(
                        "message_start",
                        serde_json::json!({"type": "message_start", "message": {
                            "id": format!("msg_mock_{}", self.id), "type": "message", "role": "assistant",
                            "model": self.model, "content": [], "stop_reason": null, "stop_sequence": null,
                            "usage": {"input_tokens": self.prompt_tokens, "output_tokens": 1},
                        }}),
                    ),
                    named(
                        "content_block_start",
                        serde_json::json!({"type": "content_block_start", "index": 0, "content_block": block}),
                    ),
                    named("ping", serde_json::json!({"type": "ping"})),
                ]
            }
        }
    }

    /// One content event carrying `piece` (of the text, or of a tool call's arguments).
    fn content_event(&self, piece: &str) -> Event {
        let tool = self.tool_call();
        match &self.kind {
            StreamKind::Chat if tool.is_some() => data(self.chunk(
                serde_json::json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                None,
            )),
            StreamKind::Chat | StreamKind::Completion => {
                data(self.chunk(serde_json::json!({"content": piece}), None))
            }
            StreamKind::Anthropic => {
                let delta = match tool {
                    Some(_) => {
                        serde_json::json!({"type": "input_json_delta", "partial_json": piece})
                    }
                    None => serde_json::json!({"type": "text_delta", "text": piece}),
                };
                named(
                    "content_block_delta",
                    serde_json::json!({"type": "content_block_delta", "index": 0, "delta": delta}),
                )
            }
            StreamKind::Gemini { model, .. } => {
                let part = match tool {
                    Some((name, args)) => {
                        serde_json::json!({"functionCall": {"name": name, "args": args}})
                    }
                    None => serde_json::json!({"text": piece}),
                };
                data(gemini_response(
                    model,
                    self.id,
                    serde_json::json!([part]),
                    None,
                    None,
                ))
            }
        }
    }

    /// The events after `sent` content events.
    fn epilogue(&self, sent: usize) -> Vec<Event> {
        let tool = self.tool_call().is_some();
        match &self.kind {
            StreamKind::Chat | StreamKind::Completion => {
                let finish = if tool { "tool_calls" } else { "stop" };
                let mut events = vec![data(self.chunk(serde_json::json!({}), Some(finish)))];
                if self.include_usage {
                    let mut last = self.chunk(serde_json::json!({}), None);
                    last["choices"] = serde_json::json!([]);
                    last["usage"] = usage(self.prompt_tokens, sent);
                    events.push(data(last));
                }
                events.push((None, "[DONE]".to_string()));
                events
            }
            StreamKind::Anthropic => vec![
                named(
                    "content_block_stop",
                    serde_json::json!({"type": "content_block_stop", "index": 0}),
                ),
                named(
                    "message_delta",
                    serde_json::json!({"type": "message_delta",
                        "delta": {"stop_reason": if tool { "tool_use" } else { "end_turn" }, "stop_sequence": null},
                        "usage": {"output_tokens": sent}}),
                ),
                named("message_stop", serde_json::json!({"type": "message_stop"})),
            ],
            StreamKind::Gemini { model, .. } => vec![data(gemini_response(
                model,
                self.id,
                serde_json::json!([{"text": ""}]),
                Some("STOP"),
                Some(gemini_usage(self.prompt_tokens, sent)),
            ))],
        }
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
        let mut out = Out {
            tx,
            json_array: matches!(self.kind, StreamKind::Gemini { sse: false, .. }),
            started: false,
        };
        if let Some(d) = f.first_chunk_delay {
            pause(tx, d).await?;
        }
        if f.error_event {
            out.send_all(self.error_events()).await?;
            return out.end().await;
        }
        out.send_all(self.prelude()).await?;
        let chunks = if f.empty_stream {
            0
        } else {
            f.chunks.unwrap_or(5)
        };
        let pieces = self.answer.pieces(chunks, self.kind.wire());
        for (i, piece) in pieces.iter().enumerate() {
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
                let (name, _) = self.content_event(piece);
                out.send(&(name, "{not json".to_string())).await?;
                continue;
            }
            out.send(&self.content_event(piece)).await?;
        }
        if f.stall_after.is_some_and(|k| k >= pieces.len()) {
            tx.closed().await;
            return Err(Cancelled);
        }
        out.send_all(self.epilogue(pieces.len())).await?;
        out.end().await
    }
}

/// Sleeps, noticing a peer that went away meanwhile.
async fn pause(tx: &Frames, d: Duration) -> Result<(), Cancelled> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = tx.closed() => Err(Cancelled),
    }
}
