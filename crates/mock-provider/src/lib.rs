//! The fault-injecting mock LLM provider: the only fake in our tests, and `switchyard
//! mock-provider` / `switchyard demo` for demos and benchmarks. It speaks three wire formats.
//!
//! It is a crate of its own (`switchyard-mock`, a workspace member) so that the `switchyard`
//! library neither compiles it nor needs hyper's `server` feature: the integration tests use it
//! as a dev-dependency, the binary behind its default `demo` feature. This file holds the fault
//! specs, the recorded requests, the stats and the listener; `conn` one connection (TLS, then
//! HTTP/1.1 or HTTP/2), `routes` the handler and the OpenAI bodies, `wire` the Anthropic and
//! Gemini formats, answers and tool calls, `stream` the SSE producer.
//!
//! Transport: `start` serves plain HTTP/1.1. `start_tls` serves HTTPS with HTTP/1.1 and no ALPN.
//! `start_tls_with(listen, TlsOptions { alpn, handshake_delay })` offers the `alpn` list (default
//! `h2`, `http/1.1`): a connection that negotiates `h2` is served with HTTP/2, any other with
//! HTTP/1.1. `handshake_delay` is slept after each TCP accept, before the TLS handshake, so a new
//! connection pays it and a reused one does not. Sessions resume with rustls's defaults (an
//! in-memory cache of 256 sessions; TLS 1.3 tickets name its entries). Every route, fault and
//! stream works over both versions; over HTTP/2, `cut=headers` and `cut_after` reset the stream
//! (RST_STREAM) instead of closing the connection its neighbours share.
//!
//! Stats (`MockHandle::stats`, `GET /_mock/stats`, same names): `open_connections`,
//! `total_connections` (TCP accepts), `h1_connections`, `h2_connections`, `tls_handshakes_full`,
//! `tls_handshakes_resumed` (failed handshakes count in neither), `max_concurrent_streams` (the
//! most requests in flight at once on one connection: from the head to the end or drop of the
//! response body), `streams_started`, `streams_completed`, `streams_cancelled` (a stream's body
//! abandoned because the peer closed the connection or reset the stream), `streams_reset`
//! (RST_STREAM frames read from HTTP/2 clients, whatever the stream's state).
//!
//! Routes:
//! - OpenAI: `POST /v1/chat/completions` (JSON or SSE), `/v1/completions`, `/v1/embeddings`,
//!   `/v1/responses`, `GET /v1/models`; any path no format claims answers a JSON echo.
//! - OpenAI Responses: `POST /v1/responses` answers a `response` object (`output`: a `message`
//!   with one `output_text` part, or one `function_call` item; `usage` with
//!   `input_tokens`/`output_tokens`/`total_tokens` and their details). `"stream": true` answers
//!   the typed SSE events, each `event: <type>` with a `sequence_number` from 0:
//!   `response.created`, `response.in_progress`, `response.output_item.added`,
//!   `response.content_part.added`, N x `response.output_text.delta`,
//!   `response.output_text.done`, `response.content_part.done`, `response.output_item.done`,
//!   `response.completed` (the whole response with usage); a function call streams
//!   `response.function_call_arguments.delta`s and `.done` instead of the part and text events.
//!   No `[DONE]`. `error_event` sends `event: error` (`code: server_error`).
//! - Azure OpenAI: `POST /openai/deployments/{deployment}/chat/completions?api-version=...`
//!   (also `completions`, `embeddings`, `responses`), `/openai/v1/...` and `/openai/responses`
//!   answer like the OpenAI routes they stand for; the deployment is the answer's `model` when
//!   the body names none. They require an `api-key` (or `Authorization`) header (else 401) and,
//!   on deployment paths, an `api-version` query parameter (else 404), with Azure's
//!   `{"error":{"code","message"}}` bodies. The recorded path keeps the deployment and query.
//! - Thinking and reasoning (constants in `thinking`, exported): Anthropic `thinking.type`
//!   `enabled`/`adaptive` puts a `thinking` block (text `THINKING_TEXT`, signature
//!   `ANTHROPIC_SIGNATURE`) before the answer's block, and a `redacted_thinking` block (data
//!   `REDACTED_THINKING_DATA`) after it when the messages contain Anthropic's
//!   `REDACTED_THINKING_TRIGGER`; streamed as `content_block_start` (thinking, empty), two
//!   `thinking_delta`s, one `signature_delta`, `content_block_stop`, then the answer at the next
//!   index. An assistant turn sent back with a thinking block signed otherwise (or other
//!   redacted data) is a 400 `invalid_request_error`. OpenAI chat `reasoning_effort` (not
//!   `none`) adds `REASONING_TOKENS` as `usage.completion_tokens_details.reasoning_tokens` (in
//!   `completion_tokens` too). Responses `reasoning.effort` (not `none`) adds a `reasoning`
//!   output item first (its `summary` text only when `reasoning.summary` is set, streamed with
//!   the `response.reasoning_summary_*` events) and `output_tokens_details.reasoning_tokens`.
//!   Gemini `generationConfig.thinkingConfig` (unless `thinkingBudget: 0`) adds
//!   `usageMetadata.thoughtsTokenCount`; with `includeThoughts: true` a `{"text", "thought":
//!   true, "thoughtSignature": GEMINI_SIGNATURE}` part comes first (its own stream event), and
//!   a function call made while thinking carries the same signature. Contents sent back with a
//!   `thoughtSignature` other than `GEMINI_SIGNATURE` or `skip_thought_signature_validator` are
//!   a 400 `INVALID_ARGUMENT`.
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
//! `tok1 `, ...). Tool calling, in all four formats (the Responses API like chat: its
//! `function` tools, `tool_choice` `none` or `{"type":"function","name"}`, an input ending with
//! a user message or a plain string; a `function_call_output` item last gets the tool-result
//! text): when the request declares tools (and
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

mod conn;
mod responses;
mod routes;
mod stream;
mod thinking;
mod wire;

pub use conn::TlsOptions;
pub use thinking::{
    ANTHROPIC_SIGNATURE, GEMINI_SIGNATURE, GEMINI_SKIP_SIGNATURE, REASONING_TOKENS,
    REDACTED_THINKING_DATA, REDACTED_THINKING_TRIGGER, THINKING_TEXT,
};

use conn::*;
use responses::*;
use routes::*;
use stream::*;
use thinking::*;
use wire::*;

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
    /// Accepted TCP connections, whatever became of them.
    pub total_connections: usize,
    pub streams_started: u64,
    pub streams_completed: u64,
    /// Streams whose body was abandoned before its end because the peer went away (closed the
    /// connection, or reset the HTTP/2 stream).
    pub streams_cancelled: u64,
    /// TLS handshakes completed in full (with or without a HelloRetryRequest).
    pub tls_handshakes_full: u64,
    /// TLS handshakes that resumed an earlier session (TLS 1.3 ticket or TLS 1.2 session id).
    pub tls_handshakes_resumed: u64,
    /// Connections served with HTTP/2 (ALPN `h2`).
    pub h2_connections: usize,
    /// Connections served with HTTP/1.1, over TLS or plain.
    pub h1_connections: usize,
    /// The most requests in flight at once on one connection, over the run (a request is in
    /// flight from its head until its response body ends or is dropped).
    pub max_concurrent_streams: usize,
    /// RST_STREAM frames received from HTTP/2 clients (any stream, any error code); a reset
    /// SSE stream also counts in `streams_cancelled`.
    pub streams_reset: u64,
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
    tls_handshakes_full: AtomicU64,
    tls_handshakes_resumed: AtomicU64,
    h2_connections: AtomicUsize,
    h1_connections: AtomicUsize,
    max_concurrent_streams: AtomicUsize,
    streams_reset: AtomicU64,
    next_id: AtomicU64,
}

impl MockState {
    fn stats(&self) -> MockStats {
        let n = |a: &AtomicUsize| a.load(Ordering::SeqCst);
        let c = |a: &AtomicU64| a.load(Ordering::SeqCst);
        MockStats {
            open_connections: n(&self.open_connections),
            total_connections: n(&self.total_connections),
            streams_started: c(&self.streams_started),
            streams_completed: c(&self.streams_completed),
            streams_cancelled: c(&self.streams_cancelled),
            tls_handshakes_full: c(&self.tls_handshakes_full),
            tls_handshakes_resumed: c(&self.tls_handshakes_resumed),
            h2_connections: n(&self.h2_connections),
            h1_connections: n(&self.h1_connections),
            max_concurrent_streams: n(&self.max_concurrent_streams),
            streams_reset: c(&self.streams_reset),
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

async fn serve(
    listener: TcpListener,
    state: Arc<MockState>,
    tls: Option<Arc<Tls>>,
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
            tokio::select! {
                _ = connection(state.clone(), stream, tls) => {},
                _ = stop.changed() => {},
            }
            state.open_connections.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

async fn start_with(listen: SocketAddr, tls: Option<Arc<Tls>>) -> std::io::Result<MockHandle> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(MockState::default());
    let (stop, stop_rx) = watch::channel(false);
    tokio::spawn(serve(listener, state.clone(), tls, stop_rx));
    Ok(MockHandle { addr, state, stop })
}

/// Starts a plain-HTTP (HTTP/1.1) mock on the current tokio runtime (port 0 picks one).
pub async fn start(listen: SocketAddr) -> std::io::Result<MockHandle> {
    start_with(listen, None).await
}

/// Starts an HTTPS mock serving HTTP/1.1 without ALPN, no handshake delay; returns it and the
/// PEM of the CA that signed its certificate (valid for `localhost` and `127.0.0.1`).
pub async fn start_tls(listen: SocketAddr) -> std::io::Result<(MockHandle, String)> {
    let options = TlsOptions {
        alpn: Vec::new(),
        handshake_delay: Duration::ZERO,
    };
    start_tls_with(listen, options).await
}

/// Starts an HTTPS mock with these options (HTTP/2 when ALPN picks `h2`); returns it and the PEM
/// of the CA that signed its certificate (valid for `localhost` and `127.0.0.1`). Sessions
/// resume with rustls's defaults: an in-memory cache of 256 sessions, TLS 1.3 tickets naming
/// them.
pub async fn start_tls_with(
    listen: SocketAddr,
    options: TlsOptions,
) -> std::io::Result<(MockHandle, String)> {
    let (mut config, ca_pem) = server_config()?;
    config.alpn_protocols = options.alpn;
    let tls = Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        handshake_delay: options.handshake_delay,
    };
    let handle = start_with(listen, Some(Arc::new(tls))).await?;
    Ok((handle, ca_pem))
}

/// A server config whose certificate (for `localhost` and `127.0.0.1`) a fresh CA signed, and
/// that CA's PEM.
fn server_config() -> std::io::Result<(rustls::ServerConfig, String)> {
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
    Ok((config, ca.pem()))
}

/// `switchyard mock-provider`: serve plain HTTP until SIGTERM or Ctrl-C.
pub async fn run(listen: SocketAddr) -> std::io::Result<()> {
    let handle = start(listen).await?;
    announce("http", &handle)?;
    wait_for_signal(handle).await
}

/// `switchyard mock-provider --tls`: write the CA's PEM to `ca_out`, then serve HTTPS until
/// SIGTERM or Ctrl-C.
pub async fn run_tls(
    listen: SocketAddr,
    options: TlsOptions,
    ca_out: &std::path::Path,
) -> std::io::Result<()> {
    let (handle, ca_pem) = start_tls_with(listen, options).await?;
    std::fs::write(ca_out, ca_pem)?;
    announce("https", &handle)?;
    wait_for_signal(handle).await
}

/// The line a benchmark waits for: `mock-provider listening on SCHEME://ADDR`.
fn announce(scheme: &str, handle: &MockHandle) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "mock-provider listening on {scheme}://{}", handle.addr)?;
    out.flush()
}

async fn wait_for_signal(handle: MockHandle) -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    handle.shutdown();
    Ok(())
}
