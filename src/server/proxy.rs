//! The app-facing proxy service. It takes every request over in `request_filter` (pingora's
//! pipeline cannot fall back on a status, replays at most 64 KiB and commits response headers as
//! soon as the upstream's arrive; DESIGN.md §1): read the body once, resolve the virtual key and
//! config, then run the attempts and write the response ourselves.
//!
//! Nothing reaches the client before the **commit point**: a whole non-streaming body, or a
//! stream's first content event. Before it any failure can still move to the next target; after
//! it a failure ends the stream with a terminal SSE error event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::{Error, ErrorType};

use super::attempt::{AttemptRunner, ClientRequest};
use super::downstream;
use super::embed::EmbedCalls;
use super::forward::{self, Forwarder, PlainForward, RequestRoute};
use super::journal::Journal;
use super::respond::{self, Commit, Finished, Outcome};
use super::shutdown::Drain;
use crate::cache::{self, Cache, Lookup};
use crate::config::{CacheSettings, RequestLimits, Snapshot, Target, TargetKind};
use crate::console::Console;
use crate::error::GatewayError;
use crate::governance::{Governance, RequestView, Ticket};
use crate::guardrails::{self, report::Denial, Screened};
use crate::ingress::{self, path, Resolved};
use crate::providers::ClientFormat;
use crate::router::condition::Facts;
use crate::router::{Breakers, Router};
use crate::telemetry::access_log::AccessLog;
use crate::telemetry::feedback::Feedback;
use crate::telemetry::otlp::AttrValue;
use crate::telemetry::otlp::OtlpExporter;
use crate::telemetry::{trace, Bodies, Metrics, RequestRecord, TraceContext};
use crate::upstream::UpstreamClient;

/// Largest `x-portkey-metadata` header accepted.
const MAX_METADATA_BYTES: usize = 4096;

/// The app-facing service.
pub struct Gateway {
    pub live: Arc<ArcSwap<Snapshot>>,
    pub client: UpstreamClient,
    pub metrics: Arc<Metrics>,
    pub drain: Arc<Drain>,
    /// Circuit breakers by target; outlive config reloads (the console reads them too).
    pub breakers: Arc<Breakers>,
    /// Keeps the last requests for the console.
    pub console: Arc<Console>,
    pub access_log: AccessLog,
    /// OTLP trace export, when configured (`OTEL_EXPORTER_OTLP_*`).
    pub otlp: Option<Arc<OtlpExporter>>,
    /// Per-virtual-key limits; counters outlive config reloads.
    pub governance: Arc<Governance>,
    /// Forward-proxy mode state shared with the listener app.
    pub forward: Arc<Forwarder>,
    /// Response caches of the configs that set `cache`; stores outlive config reloads.
    pub cache: Arc<Cache>,
}

/// Largest feedback body accepted.
const MAX_FEEDBACK_BYTES: usize = 16 * 1024;

/// What the rest of the request path learns about a request, for its record.
struct RequestFacts {
    config: String,
    virtual_key: Option<String>,
    model: Option<String>,
    stream: bool,
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// The request body, kept for the access log (`log_bodies`, not `x-switchyard-log: off`).
    request_body: Option<Bytes>,
    /// The request's limit reservations, settled with its record when it ends.
    governed: Option<Ticket>,
    /// `x-portkey-cache-status` of the request.
    cache: &'static str,
}

/// What a request's routing reports into besides the client: its journal, the time spent
/// waiting on upstreams, and whether to keep the body sent for the access log.
#[derive(Clone, Copy)]
struct Tracking<'a> {
    journal: &'a Journal,
    upstream_wait_ns: &'a AtomicU64,
    keep_body: bool,
    /// Headers added to the answer: `x-ratelimit-*` of the presented virtual key, and the
    /// cache status when the config caches.
    limit_headers: &'a [(&'static str, String)],
    /// Capture the committed response up to this many bytes (for the response cache).
    capture: Option<usize>,
}

/// Whether this request's bodies go to the access log.
fn keeps_bodies(snapshot: &Snapshot, head: &pingora::http::RequestHeader) -> bool {
    snapshot.telemetry.log_bodies
        && !head
            .headers
            .get("x-switchyard-log")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"off"))
}

/// `x-portkey-trace-id` and `x-switchyard-trace-id` on every response.
fn trace_headers(trace: &TraceContext) -> Vec<(&'static str, String)> {
    vec![
        ("x-portkey-trace-id", trace.display_id.clone()),
        ("x-switchyard-trace-id", trace.display_id.clone()),
    ]
}

/// The response headers that say which target answered and how many retries it took
/// (Portkey's names and ours). Portkey's retry count is -1 when retries ran out.
fn route_headers(leaf: Option<&Target>, retries: i64) -> Vec<(&'static str, String)> {
    let mut headers = Vec::with_capacity(6);
    if let Some(leaf) = leaf {
        headers.push(("x-portkey-last-used-option-index", leaf.path.clone()));
        headers.push(("x-switchyard-last-used-option-index", leaf.path.clone()));
        if let TargetKind::Leaf { virtual_key } = &leaf.kind {
            headers.push((
                "x-portkey-provider",
                virtual_key.provider.kind.as_str().to_string(),
            ));
        }
        headers.push(("x-switchyard-target", leaf.label().to_string()));
    }
    headers.push(("x-portkey-retry-attempt-count", retries.to_string()));
    headers.push(("x-switchyard-retry-attempt-count", retries.to_string()));
    headers
}

fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

impl Gateway {
    /// The request's record, its token, cost and GenAI metrics recorded.
    fn record(
        &self,
        session: &Session,
        snapshot: &Snapshot,
        facts: RequestFacts,
        journal: Journal,
        finished: &mut Finished,
        duration: Duration,
    ) -> Box<RequestRecord> {
        let head = session.req_header();
        let path = head.uri.path();
        let operation = ingress::path::operation_of(path);
        let mut attempts = journal.take_attempts();
        let winner = finished.attempt.take();
        let cache_hit = finished.outcome == Outcome::CacheHit;
        // A cache hit used no tokens and cost nothing (its limit reservation is given back).
        let usage = winner
            .as_ref()
            .and_then(|w| w.usage)
            .or(cache_hit.then(Default::default));
        let response_model = winner.as_ref().and_then(|w| w.response_model.clone());
        let vk_label = facts.virtual_key.as_deref().unwrap_or("none");
        let cost_usd = match (&winner, &usage) {
            (Some(w), Some(u)) => {
                let model = response_model
                    .as_deref()
                    .or(w.request_model.as_deref())
                    .unwrap_or("");
                let cost = snapshot.telemetry.prices.cost(w.provider_kind, model, u);
                let g = &self.metrics.genai;
                match cost {
                    Some(c) => g
                        .cost_usd_total
                        .with_label_values(&[&facts.config, vk_label])
                        .inc_by(c),
                    // Unknown, not zero.
                    None => g
                        .cost_unknown_total
                        .with_label_values(&[&facts.config, vk_label])
                        .inc(),
                }
                cost
            }
            _ => cache_hit.then_some(0.0),
        };
        let bodies = facts.request_body.as_ref().map(|req| Bodies {
            request: String::from_utf8_lossy(req).into_owned(),
            response: finished
                .response_body
                .take()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
        });
        if let Some(w) = winner {
            attempts.push(*w);
            attempts.sort_by_key(|a| a.start);
        }
        let bounded = |m: Option<&str>| match m {
            Some(m) if snapshot.known_models.contains(m) => m.to_string(),
            _ => "other".to_string(),
        };
        let g = &self.metrics.genai;
        for a in &attempts {
            if a.result.is_skipped() {
                continue;
            }
            let model = bounded(a.request_model.as_deref());
            let error_type = if a.result == crate::telemetry::AttemptResult::Ok {
                ""
            } else {
                a.result.as_str()
            };
            g.operation_duration
                .with_label_values(&[operation, a.provider_kind, &model, error_type])
                .observe(a.total.as_secs_f64());
            if let Some(u) = &a.usage {
                g.record_usage(
                    operation,
                    a.provider_kind,
                    &facts.config,
                    &a.provider,
                    &model,
                    u,
                );
            }
        }
        Box::new(RequestRecord {
            trace: journal.trace,
            start: journal.start,
            duration,
            method: head.method.to_string(),
            path: path.chars().take(256).collect(),
            operation,
            config: facts.config,
            virtual_key: facts.virtual_key,
            request_model: facts.model,
            response_model,
            stream: facts.stream,
            status: finished.status,
            outcome: finished.outcome.as_str(),
            attempts,
            usage,
            cost_usd,
            cache: facts.cache,
            metadata: facts.metadata,
            bodies,
        })
    }

    /// `POST /v1/feedback` (Portkey's shape): validated, counted, logged with the trace it
    /// rates, and exported as an OTLP event in that trace.
    async fn feedback(
        &self,
        session: &mut Session,
        snapshot: &Snapshot,
        facts: &mut RequestFacts,
        traced: &[(&'static str, String)],
    ) -> Finished {
        let client = ClientFormat::OpenAi;
        // A config or virtual key, when sent, names the config the feedback is counted under.
        if let Ok(resolved) = ingress::resolve(snapshot, &session.req_header().headers) {
            facts.config.clear();
            facts.config.push_str(resolved.config_label());
            facts.virtual_key = resolved.virtual_key.as_ref().map(|k| k.label.clone());
        }
        let body = match Self::read_body(session, MAX_FEEDBACK_BYTES, &snapshot.limits).await {
            Ok(b) => b,
            Err(e) => {
                session.set_keepalive(None);
                return respond::write_error(session, client, &e, traced).await;
            }
        };
        let feedback = match Feedback::parse(&body) {
            Ok(f) => f,
            Err(e) => {
                let e = GatewayError::InvalidRequest(e.to_string());
                return respond::write_error(session, client, &e, traced).await;
            }
        };
        self.metrics
            .genai
            .feedback_total
            .with_label_values(&[&facts.config, &feedback.value.to_string()])
            .inc();
        if let Some(otlp) = &self.otlp {
            let mut trace_id = [0u8; 16];
            if hex::decode_to_slice(&feedback.trace_id, &mut trace_id).is_ok() {
                let rated = TraceContext {
                    trace_id,
                    span_id: trace::new_span_id(),
                    parent_span_id: None,
                    sampled: true,
                    display_id: feedback.trace_id.clone(),
                };
                otlp.event(
                    &rated,
                    "gen_ai.feedback",
                    vec![
                        (
                            "switchyard.feedback.value".into(),
                            AttrValue::Int(i64::from(feedback.value)),
                        ),
                        (
                            "switchyard.feedback.weight".into(),
                            AttrValue::Double(feedback.weight),
                        ),
                    ],
                );
            }
        }
        let answer = serde_json::json!({
            "status": "success",
            "message": "feedback recorded",
            "trace_id": feedback.trace_id,
        });
        if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&feedback) {
            let mut m = serde_json::Map::new();
            m.insert("feedback".into(), serde_json::Value::Object(map));
            facts.metadata = Some(m);
        }
        respond::write_json(session, Bytes::from(answer.to_string()), traced).await
    }

    /// Reads the client body within the size limit and the minimum rate: byte `n` must have
    /// arrived by `body_timeout + n / min_body_rate` after the first read (Apache
    /// mod_reqtimeout's rule), so a body dribbled to hold the connection is cut with a 408.
    async fn read_body(
        session: &mut Session,
        limit: usize,
        limits: &RequestLimits,
    ) -> Result<Bytes, GatewayError> {
        let declared = session
            .req_header()
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(GatewayError::BodyTooLarge { limit });
        }
        let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
        let started = tokio::time::Instant::now();
        loop {
            let read = session.read_request_body();
            let read = match limits.min_body_rate {
                // 0: no minimum rate (only pingora's per-read timeout).
                0 => Ok(read.await),
                rate => {
                    let earned = Duration::from_secs_f64(body.len() as f64 / rate as f64);
                    let deadline = started + limits.body_timeout + earned;
                    tokio::time::timeout_at(deadline, read).await
                }
            };
            match read {
                Ok(Ok(Some(chunk))) => {
                    if body.len() + chunk.len() > limit {
                        return Err(GatewayError::BodyTooLarge { limit });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(Ok(None)) => return Ok(body.freeze()),
                Ok(Err(e)) => {
                    return Err(GatewayError::InvalidRequest(format!(
                        "cannot read the request body: {e}"
                    )))
                }
                Err(_) => {
                    return Err(GatewayError::ClientTooSlow(format!(
                        "the request body arrived slower than {} bytes/s after the first {} ms (limits.min_body_rate)",
                        limits.min_body_rate,
                        limits.body_timeout.as_millis()
                    )))
                }
            }
        }
    }

    /// Parses what the client sent; JSON routes ([`path::ROUTES`]) need a JSON object.
    fn parse_request(
        head: &pingora::http::RequestHeader,
        path_and_query: String,
        body: Bytes,
        needs_body: bool,
    ) -> Result<ClientRequest, GatewayError> {
        let method = head.method.clone();
        let request_timeout = match ["x-switchyard-request-timeout", "x-portkey-request-timeout"]
            .iter()
            .find_map(|h| head.headers.get(*h))
        {
            None => None,
            Some(v) => match v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) {
                Some(ms) if ms > 0 => Some(Duration::from_millis(ms)),
                _ => {
                    return Err(GatewayError::InvalidRequest(
                        "x-portkey-request-timeout must be a positive number of milliseconds"
                            .into(),
                    ))
                }
            },
        };
        let path = path_and_query.split('?').next().unwrap_or("");
        // Every route whose body carries a `model` (ingress::path::ROUTES) is parsed here.
        let is_json_route = path::is_json_route(&method, path);
        let (json, model, stream) = match (is_json_route, needs_body) {
            (false, _) => (None, None, false),
            // The config reads the body: validate and parse it whole, in one pass.
            (true, true) => {
                let map = ingress::body::parse(&body)?;
                let model = map.get("model").and_then(|m| m.as_str()).map(String::from);
                let stream = map.get("stream").and_then(|s| s.as_bool()) == Some(true);
                (Some(map), model, stream)
            }
            // It does not: validate and take `model` without building a tree; the body is
            // forwarded as received.
            (true, false) => {
                let peek = ingress::body::peek(&body)?;
                (
                    None,
                    peek.model.map(|m| m.into_owned()),
                    peek.stream == Some(true),
                )
            }
        };
        let metadata = match ["x-switchyard-metadata", "x-portkey-metadata"]
            .iter()
            .find_map(|h| head.headers.get(*h))
        {
            None => None,
            Some(v) if v.len() > MAX_METADATA_BYTES => {
                return Err(GatewayError::InvalidRequest(format!(
                    "x-portkey-metadata exceeds {MAX_METADATA_BYTES} bytes"
                )))
            }
            Some(v) => match serde_json::from_slice::<serde_json::Value>(v.as_bytes()) {
                Ok(serde_json::Value::Object(map)) => Some(map),
                _ => {
                    return Err(GatewayError::InvalidRequest(
                        "x-portkey-metadata must be a JSON object".into(),
                    ))
                }
            },
        };
        let format = if is_json_route {
            ClientFormat::from_path(path)
        } else {
            None
        };
        Ok(ClientRequest::new(
            method,
            path_and_query,
            body,
            json,
            model,
            request_timeout,
            metadata,
            format,
            stream,
        ))
    }

    /// A plain-HTTP request to an allowed host (forward-proxy mode): resolved here (async,
    /// bounded), then forwarded untouched by pingora's proxy pipeline (`Ok(false)`).
    async fn forward_plain(
        &self,
        session: &mut Session,
        ctx: &mut PlainForward,
        host: &str,
        port: u16,
        keepalive_secs: u64,
    ) -> pingora::Result<bool> {
        match self.forward.resolve(host, port).await {
            Ok(addr) => {
                *ctx = PlainForward::to(addr);
                session.set_keepalive(Some(keepalive_secs));
                Ok(false)
            }
            // 403 for the gateway's own address, 502 when it cannot be resolved.
            Err((_, e)) => {
                session.set_keepalive(None);
                respond::write_error(session, ClientFormat::OpenAi, &e, &[]).await;
                Ok(true)
            }
        }
    }

    /// Rewrites the request target to its canonical form ([`path::canonicalize`]) and checks
    /// it is a route the gateway serves: a 400 for a path that cannot be made canonical
    /// safely, a 404 `unknown_route` for the rest.
    fn canonical_route(session: &mut Session) -> Result<(), GatewayError> {
        if let Some(uri) = path::canonical_uri(session.req_header())? {
            session.req_header_mut().set_uri(uri);
        }
        let head = session.req_header();
        match path::route_of(&head.method, head.uri.path()) {
            Some(_) => Ok(()),
            None => Err(GatewayError::UnknownRoute {
                method: path::bounded(head.method.as_str()),
                path: path::bounded(head.uri.path()),
            }),
        }
    }

    /// Serves one request end to end.
    async fn serve(
        &self,
        session: &mut Session,
        snapshot: &Snapshot,
        route: RequestRoute<'_>,
        facts: &mut RequestFacts,
        journal: &Journal,
        upstream_wait_ns: &AtomicU64,
    ) -> Finished {
        let traced = trace_headers(&journal.trace);
        // Forward-proxy mode: the intercepted host's provider when the request selects none.
        let (inferred, intercepted) = match route {
            RequestRoute::Intercepted(inferred) => (inferred, true),
            RequestRoute::Refused(e) => {
                session.set_keepalive(None);
                return respond::write_error(session, ClientFormat::OpenAi, &e, &traced).await;
            }
            RequestRoute::Gateway | RequestRoute::Forward { .. } => (None, false),
        };
        // One spelling per route: everything after this (route match, policy, the forwarded
        // path, the record) sees the canonical target only.
        if let Err(e) = Self::canonical_route(session) {
            session.set_keepalive(None);
            let path = session.req_header().uri.path();
            let client = ClientFormat::from_path(path).unwrap_or(ClientFormat::OpenAi);
            return respond::write_error(session, client, &e, &traced).await;
        }
        let head = session.req_header();
        let path_and_query = head
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| head.uri.path().to_string());
        // Our own errors are written in the format of the client's API.
        let client = ClientFormat::from_path(head.uri.path()).unwrap_or(ClientFormat::OpenAi);
        if head.method == http::Method::POST && head.uri.path() == "/v1/feedback" {
            return self.feedback(session, snapshot, facts, &traced).await;
        }
        let headers = &session.req_header().headers;
        let resolved = match ingress::resolve_with(snapshot, headers, inferred, intercepted) {
            Ok(r) => r,
            Err(e) => {
                session.set_keepalive(None);
                return respond::write_error(session, client, &e, &traced).await;
            }
        };
        facts.config.clear();
        facts.config.push_str(resolved.config_label());
        facts.virtual_key = resolved.virtual_key.as_ref().map(|k| k.label.clone());
        let body = match Self::read_body(
            session,
            snapshot.limits.max_request_body_bytes,
            &snapshot.limits,
        )
        .await
        {
            Ok(b) => b,
            Err(e) => {
                if matches!(e, GatewayError::ClientTooSlow(_)) {
                    let closed = &self.metrics.downstream.closed_total;
                    closed.with_label_values(&["body_too_slow"]).inc();
                }
                // The rest of the body is unread: the connection cannot be reused.
                session.set_keepalive(None);
                return respond::write_error(session, client, &e, &traced).await;
            }
        };
        let needs_body = resolved.route.needs_body;
        let mut request =
            match Self::parse_request(session.req_header(), path_and_query, body, needs_body) {
                Ok(r) => r,
                Err(e) => return respond::write_error(session, client, &e, &traced).await,
            };
        if let (Some(key), Some(model)) = (&resolved.virtual_key, request.model()) {
            if !key.allows_model(model) {
                let e = GatewayError::ModelNotAllowed {
                    model: model.chars().take(128).collect(),
                    virtual_key: key.name.clone(),
                };
                return respond::write_error(session, client, &e, &traced).await;
            }
        }
        // The config's input guardrails, once, before anything is spent on the request.
        let format = request.format;
        let screened = match (
            &resolved.route.root.settings.input_guardrails,
            request.json.as_mut(),
        ) {
            (Some(set), Some(json)) => {
                let (eval, body) = guardrails::text::screen_request(set, format, json);
                eval.record(&self.metrics, &facts.config);
                if eval.denied() {
                    let denial = Denial {
                        input: vec![eval],
                        output: None,
                    };
                    return respond::write_denial(session, client, &denial, &traced).await;
                }
                if let Some(body) = body {
                    request.body = body;
                }
                Some(Screened {
                    applied: set.clone(),
                    eval,
                })
            }
            _ => None,
        };
        let view = RequestView {
            body: &request.body,
            json: request.json.as_ref(),
            model: request.model(),
            operation: request.operation(),
        };
        match self.governance.admit(snapshot, &resolved, view).await {
            Ok(ticket) => facts.governed = ticket,
            Err(rejected) => {
                let mut headers = rejected.headers;
                headers.extend(traced);
                return respond::write_error(session, client, &rejected.error, &headers).await;
            }
        }
        facts.model = request.model.clone();
        facts.stream = request.stream;
        facts.metadata = request.metadata.clone();
        let keep_body = keeps_bodies(snapshot, session.req_header());
        if keep_body {
            let b = &request.body;
            facts.request_body = Some(b.slice(..b.len().min(respond::MAX_LOGGED_BODY)));
        }
        let track = Tracking {
            journal,
            upstream_wait_ns,
            keep_body,
            limit_headers: facts.governed.as_ref().map_or(&[], |t| t.headers()),
            capture: None,
        };
        match (&resolved.route.root.settings.cache, &request.json) {
            (Some(settings), Some(body)) => {
                // Boxed: only configs that cache carry this future's size.
                let (finished, status) = Box::pin(self.serve_cached(
                    session,
                    snapshot,
                    &resolved,
                    &request,
                    body,
                    settings,
                    track,
                    screened.as_ref(),
                ))
                .await;
                facts.cache = status.header();
                finished
            }
            _ => {
                self.route(
                    session,
                    snapshot,
                    &resolved,
                    &request,
                    track,
                    screened.as_ref(),
                )
                .await
            }
        }
    }

    /// Serves a request of a config that caches: a stored answer, or the routed one (stored
    /// when it completes successfully).
    #[allow(clippy::too_many_arguments)]
    async fn serve_cached(
        &self,
        session: &mut Session,
        snapshot: &Snapshot,
        resolved: &Resolved,
        request: &ClientRequest,
        body: &serde_json::Map<String, serde_json::Value>,
        settings: &CacheSettings,
        track: Tracking<'_>,
        screened: Option<&Screened>,
    ) -> (Finished, cache::Status) {
        let head = session.req_header();
        let force_refresh = cache::FORCE_REFRESH_HEADERS.iter().any(|h| {
            head.headers
                .get(*h)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
        });
        let config = resolved.config_label();
        let lookup = cache::Request {
            scope: cache::key::Scope {
                config,
                virtual_key: resolved.virtual_key.as_ref().map(|k| k.name.as_str()),
                path: request.path_and_query.split('?').next().unwrap_or(""),
            },
            body,
            metadata: request.metadata.as_ref(),
            overrides: &resolved.route.root.settings.override_params,
            force_refresh,
        };
        let embed = EmbedCalls {
            client: &self.client,
            metrics: &self.metrics,
            breakers: &self.breakers,
            snapshot,
            config,
            trace: &track.journal.trace,
        };
        let pending = match self.cache.lookup(settings, lookup, &embed).await {
            Lookup::Hit(hit) => {
                let mut headers = hit.headers();
                headers.extend(trace_headers(&track.journal.trace));
                headers.extend_from_slice(track.limit_headers);
                let abort = cache::replay::write(session, &hit.entry, &headers)
                    .await
                    .is_err();
                let body = &hit.entry.body;
                let finished = Finished {
                    status: hit.entry.status,
                    outcome: Outcome::CacheHit,
                    abort,
                    attempt: None,
                    response_body: track
                        .keep_body
                        .then(|| body.slice(..body.len().min(respond::MAX_LOGGED_BODY))),
                    captured: None,
                };
                return (finished, hit.status);
            }
            Lookup::Bypass => None,
            Lookup::Miss(pending) => Some(pending),
        };
        let status = pending
            .as_ref()
            .map_or(cache::Status::Disabled, |p| p.status);
        let mut extra = cache::status_headers(status);
        extra.extend_from_slice(track.limit_headers);
        let track = Tracking {
            limit_headers: &extra,
            capture: pending.as_ref().map(cache::Pending::max_bytes),
            ..track
        };
        let mut finished = self
            .route(session, snapshot, resolved, request, track, screened)
            .await;
        if let (Some(pending), Some(captured)) = (pending, finished.captured.take()) {
            if matches!(finished.outcome, Outcome::Ok | Outcome::FallbackOk) && !finished.abort {
                self.cache
                    .store(pending, finished.status, captured.stream, captured.body);
            }
        }
        (finished, status)
    }

    /// Runs the config's strategy up to a commit point, then commits (or answers the last
    /// failure).
    async fn route(
        &self,
        session: &mut Session,
        snapshot: &Snapshot,
        resolved: &Resolved,
        request: &ClientRequest,
        track: Tracking<'_>,
        screened: Option<&Screened>,
    ) -> Finished {
        let Tracking {
            journal,
            upstream_wait_ns,
            keep_body,
            limit_headers,
            capture,
        } = track;
        let runner = AttemptRunner {
            journal,
            client: &self.client,
            metrics: &self.metrics,
            snapshot,
            request,
            client_head: session.req_header(),
            config: resolved.config_label(),
            upstream_wait_ns,
            screened,
        };
        let router = Router {
            attempts: &runner,
            breakers: &self.breakers,
            facts: Facts {
                metadata: request.metadata.as_ref(),
                params: request.json.as_ref(),
            },
        };
        match router.run(&resolved.route.root).await {
            Ok(won) => {
                let mut headers = route_headers(Some(won.leaf), i64::from(won.retries));
                headers.extend(trace_headers(&journal.trace));
                headers.extend_from_slice(limit_headers);
                let commit = Commit {
                    client: &self.client,
                    metrics: &self.metrics,
                    upstream_wait_ns,
                    target_path: &won.leaf.path,
                    operation: request.operation(),
                    keep_body,
                    screened,
                    capture,
                    outcome_if_ok: if won.fell_back {
                        Outcome::FallbackOk
                    } else {
                        Outcome::Ok
                    },
                };
                commit.run(session, won.ready, &headers).await
            }
            Err(failure) => {
                let retries = if failure.retries > 0 { -1 } else { 0 };
                let mut headers = route_headers(None, retries);
                headers.extend(trace_headers(&journal.trace));
                headers.extend_from_slice(limit_headers);
                respond::write_failure(
                    session,
                    request.format.unwrap_or(ClientFormat::OpenAi),
                    failure.detail,
                    &headers,
                )
                .await
            }
        }
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    /// Set only for a plain-HTTP request to a `forward.allow_hosts` host.
    type CTX = PlainForward;

    fn new_ctx(&self) -> Self::CTX {
        PlainForward::default()
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<Box<HttpPeer>> {
        // Every other request is served in `request_filter`; pingora's pipeline only forwards
        // plain-HTTP requests to allowed hosts (forward-proxy mode).
        match &ctx.peer {
            Some(peer) => Ok(peer.clone()),
            None => Error::e_explain(
                ErrorType::InternalError,
                "requests are served in request_filter",
            ),
        }
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut pingora::http::RequestHeader,
        _ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        PlainForward::rewrite(upstream_request);
        Ok(())
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<bool> {
        // The head is in: body reads and idle probes are not held to the head deadline.
        downstream::request_started(session);
        // A client that pipelines gets its answers in order (pingora keeps the bytes read past
        // this request for the next one) instead of losing every request after the first.
        session.as_downstream_mut().set_pipelining_enabled(true);
        let snapshot = self.live.load_full();
        // Pingora's keep-alive bound for this connection (its default is unbounded); the
        // downstream guard closes an idle one at the same limit.
        let keepalive_secs = snapshot.limits.keepalive_idle.as_secs().max(1);
        let route = forward::route_request(&snapshot, session.as_downstream(), &self.forward);
        if let RequestRoute::Forward { host, port } = &route {
            return self
                .forward_plain(session, ctx, host, *port, keepalive_secs)
                .await;
        }
        let _inflight = self.drain.enter();
        self.metrics.inflight_requests.inc();
        let started = Instant::now();
        let mut facts = RequestFacts {
            config: String::from("none"),
            virtual_key: None,
            model: None,
            stream: false,
            metadata: None,
            request_body: None,
            governed: None,
            cache: "DISABLED",
        };
        let journal = Journal::new(trace::from_headers(&session.req_header().headers));
        let upstream_wait_ns = AtomicU64::new(0);
        session.set_keepalive(if self.drain.is_draining() {
            None
        } else {
            Some(keepalive_secs)
        });
        let mut finished = self
            .serve(
                session,
                &snapshot,
                route,
                &mut facts,
                &journal,
                &upstream_wait_ns,
            )
            .await;
        let total = started.elapsed();
        let upstream = Duration::from_nanos(upstream_wait_ns.load(Ordering::Relaxed));
        let m = &self.metrics;
        m.inflight_requests.dec();
        m.requests_total
            .with_label_values(&[
                &facts.config,
                status_class(finished.status),
                finished.outcome.as_str(),
            ])
            .inc();
        m.request_duration_seconds
            .with_label_values(&[&facts.config])
            .observe(total.as_secs_f64());
        m.overhead_seconds
            .with_label_values(&[&facts.config])
            .observe(total.saturating_sub(upstream).as_secs_f64());
        let governed = facts.governed.take();
        let record = self.record(session, &snapshot, facts, journal, &mut finished, total);
        if let Some(ticket) = governed {
            ticket.settle(&record);
        }
        if let Some(otlp) = &self.otlp {
            otlp.export(&record);
        }
        self.console.record(&record);
        if !self.access_log.log(record) {
            m.genai.access_log_dropped_total.inc();
        }
        if finished.abort {
            // The response is incomplete: make pingora drop the connection.
            return Error::e_explain(ErrorType::ConnectionClosed, "response aborted");
        }
        Ok(true)
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, _ctx: &mut Self::CTX) {
        // The next request on this keep-alive connection gets a fresh head deadline.
        downstream::request_finished(session);
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Self::CTX,
    ) -> pingora::proxy::FailToProxy {
        if ctx.peer.is_some() {
            // A forwarded plain-HTTP request: pingora's pipeline failed it, answer for it.
            let code = match e.etype() {
                ErrorType::ConnectTimedout | ErrorType::ReadTimedout => 504,
                _ => 502,
            };
            if session.response_written().is_none() {
                let _ = session.respond_error(code).await;
            }
            return pingora::proxy::FailToProxy {
                error_code: code,
                can_reuse_downstream: false,
            };
        }
        // Whatever failed already wrote (or could not write) its own response; do not log a
        // misleading "500" or write a second one.
        pingora::proxy::FailToProxy {
            error_code: 0,
            can_reuse_downstream: false,
        }
    }
}
