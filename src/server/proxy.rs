//! The app-facing proxy service. It takes every request over in `request_filter` (pingora's
//! pipeline cannot fall back on a status, replays at most 64 KiB and commits response headers as
//! soon as the upstream's arrive; DESIGN.md §1): read the body once, resolve the virtual key and
//! config, then run the attempts and write the response ourselves.
//!
//! Nothing reaches the client before the **commit point**: a whole non-streaming body, or a
//! stream's first content event. Before it any failure can still move to the next target; after
//! it a failure ends the stream with a terminal SSE error event.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::{Error, ErrorType};

use super::shutdown::Drain;
use crate::config::{Snapshot, TargetSettings, VirtualKey};
use crate::error::GatewayError;
use crate::ingress::{self, Resolved, Route};
use crate::providers::{self, openai, EventClass};
use crate::router;
use crate::telemetry::Metrics;
use crate::upstream::client::DEFAULT_CONNECT_TIMEOUT;
use crate::upstream::sse::SseParser;
use crate::upstream::{AttemptError, Deadlines, UpstreamClient, UpstreamResponse};

/// Idle keep-alive for client connections (pingora's default is unbounded).
const DOWNSTREAM_KEEPALIVE_SECS: u64 = 75;
/// Largest single SSE event held before the commit point.
const MAX_SSE_EVENT_BYTES: usize = 1 << 20;
/// Routes whose body must be a JSON object.
const JSON_ROUTES: [&str; 4] = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/responses",
];

static DIRECT_SETTINGS: LazyLock<TargetSettings> = LazyLock::new(|| TargetSettings {
    retry: Default::default(),
    request_timeout: None,
    timeouts: Default::default(),
    override_params: Default::default(),
    circuit_breaker: Default::default(),
    cache: None,
    input_guardrails: vec![],
    output_guardrails: vec![],
});

/// The app-facing service.
pub struct Gateway {
    pub live: Arc<ArcSwap<Snapshot>>,
    pub client: UpstreamClient,
    pub metrics: Arc<Metrics>,
    pub drain: Arc<Drain>,
}

/// How a request ended, for `switchyard_requests_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    FallbackOk,
    Error,
    Timeout,
    Rejected,
    StreamAborted,
    ClientClosed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::FallbackOk => "fallback_ok",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::Rejected => "rejected",
            Outcome::StreamAborted => "stream_aborted",
            Outcome::ClientClosed => "client_closed",
        }
    }
}

/// The end of a request: what was sent, and whether the client connection may be reused.
struct Finished {
    status: u16,
    outcome: Outcome,
    /// The connection is broken (client gone, or a stream cut): drop it.
    abort: bool,
}

impl Finished {
    /// The client went away mid-response: drop the connection.
    fn client_closed(status: u16) -> Self {
        Finished {
            status,
            outcome: Outcome::ClientClosed,
            abort: true,
        }
    }
}

/// One leaf to attempt: a target of the config tree, or the virtual key itself.
struct Leg<'a> {
    /// Bounded metric label.
    label: &'a str,
    /// Portkey's option-index path.
    path: &'a str,
    virtual_key: &'a Arc<VirtualKey>,
    settings: &'a TargetSettings,
}

/// What the client asked for, parsed once.
struct ClientRequest {
    method: http::Method,
    path_and_query: String,
    body: Bytes,
    /// The parsed body, for JSON routes.
    json: Option<serde_json::Map<String, serde_json::Value>>,
    /// `x-portkey-request-timeout` / `x-switchyard-request-timeout` (ms), if sent.
    request_timeout: Option<Duration>,
}

impl ClientRequest {
    fn model(&self) -> Option<&str> {
        self.json.as_ref()?.get("model")?.as_str()
    }

    /// The body for one leg: the original bytes unless `override_params` change it.
    fn body_for(&self, settings: &TargetSettings) -> Result<Bytes, GatewayError> {
        match &self.json {
            Some(json) if !settings.override_params.is_empty() => {
                let mut merged = json.clone();
                for (k, v) in &settings.override_params {
                    merged.insert(k.clone(), v.clone());
                }
                serde_json::to_vec(&merged)
                    .map(Bytes::from)
                    .map_err(|e| GatewayError::Internal(format!("cannot encode body: {e}")))
            }
            _ => Ok(self.body.clone()),
        }
    }

    fn model_for<'a>(&'a self, settings: &'a TargetSettings) -> Option<&'a str> {
        settings
            .override_params
            .get("model")
            .and_then(|m| m.as_str())
            .or_else(|| self.model())
    }
}

/// Per-request bookkeeping shared by every phase.
struct Exchange {
    started: Instant,
    config_label: String,
    /// Time spent waiting on upstreams (for the overhead metric).
    upstream_wait: Duration,
}

fn deadlines(settings: &TargetSettings, request_timeout: Option<Duration>) -> Deadlines {
    Deadlines {
        connect: settings.timeouts.connect.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        // Portkey: the `x-portkey-request-timeout` header wins over the config.
        headers: request_timeout.or(settings.request_timeout),
        first_chunk: settings.timeouts.ttft,
        idle: settings.timeouts.idle,
        total: settings.timeouts.total,
    }
}

/// Upstream response headers we pass to the client (hop-by-hop and framing are ours).
fn forwards_response_header(name: &str) -> bool {
    !matches!(
        name,
        "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "upgrade"
            | "set-cookie"
            | "content-encoding"
    )
}

fn model_label<'a>(snapshot: &Snapshot, model: Option<&'a str>) -> &'a str {
    match model {
        Some(m) if snapshot.known_models.contains(m) => m,
        _ => "other",
    }
}

fn attempt_result(error: &AttemptError) -> &'static str {
    match error {
        AttemptError::Timeout { .. } => "timeout",
        AttemptError::Resolve { .. } | AttemptError::Connect(_) | AttemptError::Trust(_) => {
            "connect_error"
        }
        AttemptError::Io(_) => "io_error",
        AttemptError::TooLarge { .. } => "invalid_response",
    }
}

fn to_gateway_error(leg: &Leg<'_>, error: AttemptError) -> GatewayError {
    match error {
        AttemptError::Timeout { phase, budget } => GatewayError::Timeout {
            target: leg.path.to_string(),
            phase: phase.as_str(),
            ms: budget.as_millis(),
        },
        AttemptError::TooLarge { .. } => GatewayError::UpstreamInvalid {
            target: leg.path.to_string(),
            reason: error.to_string(),
        },
        other => GatewayError::UpstreamUnreachable {
            target: leg.path.to_string(),
            reason: other.to_string(),
        },
    }
}

impl Gateway {
    /// The head of a response: the upstream's headers (if any) minus hop-by-hop and framing,
    /// then ours.
    fn response_head(
        status: u16,
        upstream: Option<&ResponseHeader>,
        extra: &[(&'static str, String)],
    ) -> pingora::Result<ResponseHeader> {
        let mut resp = ResponseHeader::build(status, Some(8 + extra.len()))?;
        match upstream {
            Some(up) => {
                for (name, value) in up.headers.iter() {
                    if forwards_response_header(name.as_str()) {
                        resp.append_header(name.clone(), value.clone())?;
                    }
                }
            }
            None => {
                resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
            }
        }
        for (name, value) in extra {
            resp.insert_header(*name, value.as_str())?;
        }
        Ok(resp)
    }

    /// Writes a complete response (our error or a relayed/finished upstream one).
    async fn write_whole(
        session: &mut Session,
        status: u16,
        upstream: Option<&ResponseHeader>,
        extra: &[(&'static str, String)],
        body: Bytes,
    ) -> pingora::Result<()> {
        let mut resp = Self::response_head(status, upstream, extra)?;
        resp.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
        session.write_response_header(Box::new(resp), false).await?;
        session.write_response_body(Some(body), true).await
    }

    async fn write_error(session: &mut Session, error: &GatewayError) -> Finished {
        let status = error.status();
        let outcome = match error {
            GatewayError::Timeout { .. } => Outcome::Timeout,
            GatewayError::UpstreamUnreachable { .. }
            | GatewayError::UpstreamInvalid { .. }
            | GatewayError::Internal(_) => Outcome::Error,
            _ => Outcome::Rejected,
        };
        let abort = Self::write_whole(session, status, None, &[], error.to_json())
            .await
            .is_err();
        Finished {
            status,
            outcome,
            abort,
        }
    }

    /// Reads the client body within the limit.
    async fn read_body(session: &mut Session, limit: usize) -> Result<Bytes, GatewayError> {
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
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        return Err(GatewayError::BodyTooLarge { limit });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body.freeze()),
                Err(e) => {
                    return Err(GatewayError::InvalidRequest(format!(
                        "cannot read the request body: {e}"
                    )))
                }
            }
        }
    }

    /// Parses what the client sent; routes in [`JSON_ROUTES`] need a JSON object.
    fn parse_request(
        head: &pingora::http::RequestHeader,
        path_and_query: String,
        body: Bytes,
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
        let needs_json = method == http::Method::POST && JSON_ROUTES.contains(&path);
        let json = if needs_json {
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(serde_json::Value::Object(map)) => Some(map),
                Ok(_) => {
                    return Err(GatewayError::InvalidJson(
                        "expected a JSON object".to_string(),
                    ))
                }
                Err(e) => return Err(GatewayError::InvalidJson(e.to_string())),
            }
        } else {
            None
        };
        Ok(ClientRequest {
            method,
            path_and_query,
            body,
            json,
            request_timeout,
        })
    }

    /// Serves one request end to end.
    async fn serve(
        &self,
        session: &mut Session,
        snapshot: &Snapshot,
        exchange: &mut Exchange,
    ) -> Finished {
        let head = session.req_header();
        let method = head.method.clone();
        let path_and_query = head
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| head.uri.path().to_string());
        if !head.uri.path().starts_with("/v1/") {
            let error = GatewayError::UnknownRoute {
                method: method.to_string(),
                path: head.uri.path().chars().take(128).collect(),
            };
            session.set_keepalive(None);
            return Self::write_error(session, &error).await;
        }
        let resolved = match ingress::resolve(snapshot, &session.req_header().headers) {
            Ok(r) => r,
            Err(e) => {
                session.set_keepalive(None);
                return Self::write_error(session, &e).await;
            }
        };
        exchange.config_label = resolved.config_label().to_string();
        let body = match Self::read_body(session, snapshot.limits.max_request_body_bytes).await {
            Ok(b) => b,
            Err(e) => {
                // The rest of the body is unread: the connection cannot be reused.
                session.set_keepalive(None);
                return Self::write_error(session, &e).await;
            }
        };
        let request = match Self::parse_request(session.req_header(), path_and_query, body) {
            Ok(r) => r,
            Err(e) => return Self::write_error(session, &e).await,
        };
        if let (Some(key), Some(model)) = (&resolved.virtual_key, request.model()) {
            if !key.allows_model(model) {
                let e = GatewayError::ModelNotAllowed {
                    model: model.chars().take(128).collect(),
                    virtual_key: key.name.clone(),
                };
                return Self::write_error(session, &e).await;
            }
        }
        self.run_attempts(session, snapshot, exchange, &resolved, &request)
            .await
    }

    /// The attempt loop: each leg in order until one commits or nothing is left.
    async fn run_attempts(
        &self,
        session: &mut Session,
        snapshot: &Snapshot,
        exchange: &mut Exchange,
        resolved: &Resolved,
        request: &ClientRequest,
    ) -> Finished {
        let legs: Vec<Leg<'_>> = match &resolved.route {
            Route::Config(config) => router::attempt_order(&config.root)
                .into_iter()
                .filter_map(|t| match &t.kind {
                    crate::config::TargetKind::Leaf { virtual_key } => Some(Leg {
                        label: t.label(),
                        path: &t.path,
                        virtual_key,
                        settings: &t.settings,
                    }),
                    crate::config::TargetKind::Group { .. } => None,
                })
                .collect(),
            Route::Direct(key) => vec![Leg {
                label: &key.name,
                path: "config",
                virtual_key: key,
                settings: &DIRECT_SETTINGS,
            }],
        };
        let root = match &resolved.route {
            Route::Config(c) => Some(&c.root),
            Route::Direct(_) => None,
        };
        let mut last: Option<LegFailure> = None;
        for (index, leg) in legs.iter().enumerate() {
            let is_last = index + 1 == legs.len();
            let model = request.model_for(leg.settings);
            if let Some(m) = model {
                if !leg.virtual_key.allows_model(m) {
                    let e = GatewayError::ModelNotAllowed {
                        model: m.chars().take(128).collect(),
                        virtual_key: leg.virtual_key.name.clone(),
                    };
                    return Self::write_error(session, &e).await;
                }
            }
            let labels = AttemptLabels {
                config: &exchange.config_label.clone(),
                target: leg.label,
                provider: &leg.virtual_key.provider.name,
                model: model_label(snapshot, model),
            };
            let outcome_if_ok = if index == 0 {
                Outcome::Ok
            } else {
                Outcome::FallbackOk
            };
            match self
                .attempt(
                    session,
                    snapshot,
                    exchange,
                    request,
                    leg,
                    &labels,
                    outcome_if_ok,
                )
                .await
            {
                LegResult::Done(finished) => return finished,
                LegResult::Failed(failure) => {
                    let moves_on = match &failure {
                        LegFailure::Status { status, .. } => {
                            root.is_none_or(|r| router::falls_back_on_status(r, *status))
                        }
                        LegFailure::Gateway(_) => true,
                    };
                    last = Some(failure);
                    if is_last || !moves_on {
                        break;
                    }
                }
            }
        }
        match last {
            Some(LegFailure::Status {
                status,
                header,
                body,
            }) => {
                let extra = [("x-switchyard-upstream-error", "true".to_string())];
                let abort = Self::write_whole(session, status, Some(&header), &extra, body)
                    .await
                    .is_err();
                Finished {
                    status,
                    outcome: Outcome::Error,
                    abort,
                }
            }
            Some(LegFailure::Gateway(e)) => Self::write_error(session, &e).await,
            None => {
                let e = GatewayError::Internal("the config has no target to attempt".into());
                Self::write_error(session, &e).await
            }
        }
    }

    /// One attempt on one leg.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        session: &mut Session,
        snapshot: &Snapshot,
        exchange: &mut Exchange,
        request: &ClientRequest,
        leg: &Leg<'_>,
        labels: &AttemptLabels<'_>,
        outcome_if_ok: Outcome,
    ) -> LegResult {
        let provider = &leg.virtual_key.provider;
        let body = match request.body_for(leg.settings) {
            Ok(b) => b,
            Err(e) => return LegResult::Failed(LegFailure::Gateway(e)),
        };
        let header = match openai::build_request(
            provider,
            &request.method,
            &request.path_and_query,
            session.req_header(),
            body.len(),
        ) {
            Ok(h) => h,
            Err(e) => {
                return LegResult::Failed(LegFailure::Gateway(GatewayError::InvalidRequest(
                    format!("cannot build the upstream request: {e}"),
                )))
            }
        };
        let sent = Instant::now();
        let result = self
            .client
            .send(
                provider,
                header,
                body,
                deadlines(leg.settings, request.request_timeout),
            )
            .await;
        exchange.upstream_wait += sent.elapsed();
        let mut response = match result {
            Ok(r) => r,
            Err(e) => {
                labels.record_attempt(&self.metrics, attempt_result(&e), sent.elapsed());
                return LegResult::Failed(LegFailure::Gateway(to_gateway_error(leg, e)));
            }
        };
        let status = response.status();
        let headers = leg_headers(leg);
        if !(200..300).contains(&status) {
            let read = Instant::now();
            let body = response
                .read_to_end(snapshot.limits.max_response_body_bytes)
                .await;
            exchange.upstream_wait += read.elapsed();
            labels.record_attempt(&self.metrics, "http_error", sent.elapsed());
            let header = response.header().cloned();
            self.client.finish(response).await;
            return match (body, header) {
                (Ok(body), Some(header)) => LegResult::Failed(LegFailure::Status {
                    status,
                    header: Box::new(header),
                    body,
                }),
                (Err(e), _) => LegResult::Failed(LegFailure::Gateway(to_gateway_error(leg, e))),
                (Ok(_), None) => {
                    LegResult::Failed(LegFailure::Gateway(GatewayError::UpstreamInvalid {
                        target: leg.path.to_string(),
                        reason: "no response header".into(),
                    }))
                }
            };
        }
        if response.is_event_stream() {
            return self
                .stream(
                    session,
                    exchange,
                    leg,
                    labels,
                    response,
                    headers,
                    outcome_if_ok,
                )
                .await;
        }
        let read = Instant::now();
        let body = response
            .read_to_end(snapshot.limits.max_response_body_bytes)
            .await;
        exchange.upstream_wait += read.elapsed();
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                labels.record_attempt(&self.metrics, attempt_result(&e), sent.elapsed());
                self.client.finish(response).await;
                return LegResult::Failed(LegFailure::Gateway(to_gateway_error(leg, e)));
            }
        };
        labels.record_attempt(&self.metrics, "ok", sent.elapsed());
        let written = Self::write_whole(session, status, response.header(), &headers, body).await;
        self.client.finish(response).await;
        LegResult::Done(Finished {
            status,
            outcome: outcome_if_ok,
            abort: written.is_err(),
        })
    }

    /// A streaming attempt: hold events until the first content one (the commit point), then
    /// forward every upstream chunk as it arrives.
    #[allow(clippy::too_many_arguments)]
    async fn stream(
        &self,
        session: &mut Session,
        exchange: &mut Exchange,
        leg: &Leg<'_>,
        labels: &AttemptLabels<'_>,
        mut response: UpstreamResponse,
        headers: Vec<(&'static str, String)>,
        outcome_if_ok: Outcome,
    ) -> LegResult {
        let sent = response.started();
        let mut parser = SseParser::new(MAX_SSE_EVENT_BYTES);
        let mut held = BytesMut::new();
        // Before the commit point: buffer, and fail over on anything that is not content.
        let mut upstream_ended = false;
        loop {
            let wait = Instant::now();
            let chunk = response.next_chunk(true).await;
            exchange.upstream_wait += wait.elapsed();
            let chunk = match chunk {
                Ok(Some(c)) => c,
                Ok(None) => {
                    upstream_ended = true;
                    break;
                }
                Err(e) => {
                    labels.record_attempt(&self.metrics, attempt_result(&e), sent.elapsed());
                    self.client.finish(response).await;
                    return LegResult::Failed(LegFailure::Gateway(to_gateway_error(leg, e)));
                }
            };
            held.extend_from_slice(&chunk);
            if parser.push(&chunk).is_err() {
                labels.record_attempt(&self.metrics, "invalid_response", sent.elapsed());
                self.client.finish(response).await;
                return LegResult::Failed(LegFailure::Gateway(GatewayError::UpstreamInvalid {
                    target: leg.path.to_string(),
                    reason: "an SSE event exceeds 1 MiB".into(),
                }));
            }
            let mut commit = false;
            while let Some(event) = parser.next_event() {
                match providers::classify_event(&event) {
                    EventClass::Preamble => {}
                    EventClass::Content | EventClass::Error | EventClass::Done => {
                        commit = true;
                        break;
                    }
                }
            }
            if commit {
                break;
            }
        }
        labels.record_ttft(&self.metrics, sent.elapsed());

        // The commit point.
        let status = response.status();
        let head = Self::response_head(status, response.header(), &headers).and_then(|mut h| {
            // Without a length or chunked framing pingora would close-delimit the body and
            // the connection could not be reused (the HTTP/2 server strips this itself).
            h.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
            Ok(h)
        });
        let committed = match head {
            Ok(head) => {
                session
                    .write_response_header(Box::new(head), false)
                    .await
                    .is_ok()
                    && session
                        .write_response_body(Some(held.freeze()), false)
                        .await
                        .is_ok()
            }
            Err(_) => false,
        };
        if !committed {
            let finished = Finished::client_closed(status);
            return self
                .end_attempt(labels, "client_closed", response, finished)
                .await;
        }
        if upstream_ended {
            let abort = session.write_response_body(None, true).await.is_err();
            let finished = Finished {
                status,
                outcome: outcome_if_ok,
                abort,
            };
            return self.end_attempt(labels, "ok", response, finished).await;
        }

        // After the commit point: forward as it arrives; a client hang-up tears the upstream
        // down (no more token spend); an upstream failure ends the stream with an error event.
        loop {
            let wait = Instant::now();
            let next = tokio::select! {
                chunk = response.next_chunk(false) => Some(chunk),
                _ = session.read_body_or_idle(true) => None,
            };
            exchange.upstream_wait += wait.elapsed();
            let (result, finished) = match next {
                Some(Ok(Some(chunk))) => {
                    if session
                        .write_response_body(Some(chunk), false)
                        .await
                        .is_ok()
                    {
                        continue;
                    }
                    ("client_closed", Finished::client_closed(status))
                }
                None => ("client_closed", Finished::client_closed(status)),
                Some(Ok(None)) => {
                    let abort = session.write_response_body(None, true).await.is_err();
                    (
                        "ok",
                        Finished {
                            status,
                            outcome: outcome_if_ok,
                            abort,
                        },
                    )
                }
                Some(Err(e)) => {
                    let result = attempt_result(&e);
                    let event = to_gateway_error(leg, e).to_sse_event();
                    let abort = session
                        .write_response_body(Some(event), true)
                        .await
                        .is_err();
                    (
                        result,
                        Finished {
                            status,
                            outcome: Outcome::StreamAborted,
                            abort,
                        },
                    )
                }
            };
            return self.end_attempt(labels, result, response, finished).await;
        }
    }

    /// Records how an attempt that reached the client ended and releases its connection.
    async fn end_attempt(
        &self,
        labels: &AttemptLabels<'_>,
        result: &str,
        response: UpstreamResponse,
        finished: Finished,
    ) -> LegResult {
        labels.record_attempt(&self.metrics, result, response.started().elapsed());
        self.client.finish(response).await;
        LegResult::Done(finished)
    }
}

/// The response headers that say which leg answered (Portkey's names and ours).
fn leg_headers(leg: &Leg<'_>) -> Vec<(&'static str, String)> {
    vec![
        ("x-portkey-last-used-option-index", leg.path.to_string()),
        ("x-switchyard-last-used-option-index", leg.path.to_string()),
        ("x-portkey-retry-attempt-count", "0".to_string()),
        ("x-switchyard-retry-attempt-count", "0".to_string()),
        (
            "x-portkey-provider",
            leg.virtual_key.provider.kind.as_str().to_string(),
        ),
        ("x-switchyard-target", leg.label.to_string()),
    ]
}

/// Why a leg did not answer.
enum LegFailure {
    /// The provider answered with a non-2xx status.
    Status {
        status: u16,
        header: Box<ResponseHeader>,
        body: Bytes,
    },
    /// We could not get an answer (connect, timeout, reset) or built none.
    Gateway(GatewayError),
}

enum LegResult {
    /// The client got its response (successful or not): stop.
    Done(Finished),
    Failed(LegFailure),
}

/// Metric labels of one attempt, all bounded by the config.
struct AttemptLabels<'a> {
    config: &'a str,
    target: &'a str,
    provider: &'a str,
    model: &'a str,
}

impl AttemptLabels<'_> {
    fn record_attempt(&self, metrics: &Metrics, result: &str, took: Duration) {
        metrics
            .upstream_attempts_total
            .with_label_values(&[self.config, self.target, self.provider, self.model, result])
            .inc();
        metrics
            .upstream_duration_seconds
            .with_label_values(&[self.target, self.provider, self.model])
            .observe(took.as_secs_f64());
    }

    fn record_ttft(&self, metrics: &Metrics, took: Duration) {
        metrics
            .time_to_first_token_seconds
            .with_label_values(&[self.target, self.provider, self.model])
            .observe(took.as_secs_f64());
    }
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

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> pingora::Result<Box<HttpPeer>> {
        // Every request is served in `request_filter`; pingora's pipeline never runs.
        Error::e_explain(
            ErrorType::InternalError,
            "requests are served in request_filter",
        )
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> pingora::Result<bool> {
        let _inflight = self.drain.enter();
        self.metrics.inflight_requests.inc();
        let mut exchange = Exchange {
            started: Instant::now(),
            config_label: "none".to_string(),
            upstream_wait: Duration::ZERO,
        };
        session.set_keepalive(if self.drain.is_draining() {
            None
        } else {
            Some(DOWNSTREAM_KEEPALIVE_SECS)
        });
        let snapshot = self.live.load_full();
        let finished = self.serve(session, &snapshot, &mut exchange).await;
        let total = exchange.started.elapsed();
        let m = &self.metrics;
        m.inflight_requests.dec();
        m.requests_total
            .with_label_values(&[
                &exchange.config_label,
                status_class(finished.status),
                finished.outcome.as_str(),
            ])
            .inc();
        m.request_duration_seconds
            .with_label_values(&[&exchange.config_label])
            .observe(total.as_secs_f64());
        m.overhead_seconds
            .with_label_values(&[&exchange.config_label])
            .observe(total.saturating_sub(exchange.upstream_wait).as_secs_f64());
        if finished.abort {
            // The response is incomplete: make pingora drop the connection.
            return Error::e_explain(ErrorType::ConnectionClosed, "response aborted");
        }
        Ok(true)
    }

    async fn fail_to_proxy(
        &self,
        _session: &mut Session,
        _e: &Error,
        _ctx: &mut Self::CTX,
    ) -> pingora::proxy::FailToProxy {
        // Whatever failed already wrote (or could not write) its own response; do not log a
        // misleading "500" or write a second one.
        pingora::proxy::FailToProxy {
            error_code: 0,
            can_reuse_downstream: false,
        }
    }
}
