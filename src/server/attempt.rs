//! One upstream attempt up to the commit point — the router's [`Attempts`]. Nothing here
//! writes to the client: a non-streaming body is read whole, a stream is held until its first
//! content event; anything that goes wrong before that is a [`Failure`] the router can retry,
//! fall back from, or race (hedging).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::http::{RequestHeader, ResponseHeader};

use std::sync::OnceLock;

use super::journal::Journal;
use crate::config::{ProviderKind, Snapshot, Target, TargetKind, TargetSettings};
use crate::error::GatewayError;
use crate::guardrails::report::{Denial, DENIED_STATUS};
use crate::guardrails::{self, AttemptChecks, Screened};
use crate::providers::{
    self, build_request, translate_error, translate_response, ChatCall, ClientFormat,
    DecodedRequest, EventClass, Format, RequestHead, StreamTranslator, TranslateContext,
    TranslateError,
};
use crate::router::{Attempts, Failure, FailureKind};
use crate::telemetry::{trace, AttemptRecord, Metrics};
use crate::upstream::client::DEFAULT_CONNECT_TIMEOUT;
use crate::upstream::sse::{SseEvent, SseParser};
use crate::upstream::{AttemptError, Deadlines, UpstreamClient, UpstreamResponse};

/// Largest single SSE event held before the commit point.
const MAX_SSE_EVENT_BYTES: usize = 1 << 20;

/// What the client asked for, parsed once.
pub struct ClientRequest {
    pub method: http::Method,
    pub path_and_query: String,
    pub body: Bytes,
    /// The parsed body, for JSON routes whose config needs it (`RouteConfig::needs_body`).
    pub json: Option<serde_json::Map<String, serde_json::Value>>,
    /// The body's `model`, for JSON routes.
    pub model: Option<String>,
    /// `x-portkey-request-timeout` / `x-switchyard-request-timeout` (ms), if sent.
    pub request_timeout: Option<Duration>,
    /// `x-portkey-metadata`, for conditional routing.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// The chat format of the route (`/v1/chat/completions`, `/v1/messages`); `None` for the
    /// other routes, which are forwarded as they are to OpenAI-format providers.
    pub format: Option<ClientFormat>,
    /// The body's `stream` flag, for chat routes.
    pub stream: bool,
    /// The chat body decoded into the canonical model, the first time a target needs it
    /// (another format, `override_params`, or a stream whose usage we must ask for).
    decoded: OnceLock<Result<(DecodedRequest, TranslateContext), TranslateError>>,
}

impl ClientRequest {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        method: http::Method,
        path_and_query: String,
        body: Bytes,
        json: Option<serde_json::Map<String, serde_json::Value>>,
        model: Option<String>,
        request_timeout: Option<Duration>,
        metadata: Option<serde_json::Map<String, serde_json::Value>>,
        format: Option<ClientFormat>,
        stream: bool,
    ) -> ClientRequest {
        ClientRequest {
            method,
            path_and_query,
            body,
            json,
            model,
            request_timeout,
            metadata,
            format,
            stream,
            decoded: OnceLock::new(),
        }
    }

    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The GenAI operation name of the route (`gen_ai.operation.name`).
    pub fn operation(&self) -> &'static str {
        crate::ingress::path::operation_of(self.path_and_query.split('?').next().unwrap_or(""))
    }

    /// The canonical request and its translation context, decoded once.
    fn decoded(
        &self,
        format: ClientFormat,
    ) -> Result<&(DecodedRequest, TranslateContext), TranslateError> {
        self.decoded
            .get_or_init(|| {
                let decoded = match &self.json {
                    Some(map) => DecodedRequest::from_parts(format, self.body.clone(), map.clone()),
                    None => DecodedRequest::decode(format, self.body.clone()),
                }?;
                let ctx = TranslateContext::new(decoded.request());
                Ok((decoded, ctx))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The body for one target: the original bytes unless `override_params` change them.
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

    /// A copy carrying another body (a target's input guardrails redacted its text).
    fn with_body(
        &self,
        body: Bytes,
        json: serde_json::Map<String, serde_json::Value>,
    ) -> ClientRequest {
        ClientRequest::new(
            self.method.clone(),
            self.path_and_query.clone(),
            body,
            Some(json),
            self.model.clone(),
            self.request_timeout,
            self.metadata.clone(),
            self.format,
            self.stream,
        )
    }

    fn model_for<'a>(&'a self, settings: &'a TargetSettings) -> Option<&'a str> {
        settings
            .override_params
            .get("model")
            .and_then(|m| m.as_str())
            .or_else(|| self.model())
    }
}

/// What the client gets if a failure is the last one.
#[derive(Debug)]
pub enum Reply {
    /// The provider's own status, headers and body.
    Upstream {
        status: u16,
        header: Box<ResponseHeader>,
        body: Bytes,
    },
    /// Our error.
    Gateway(GatewayError),
    /// A guardrail stopped the request or the answer (446).
    Guardrail(Box<Denial>),
}

/// A response at the commit point, not yet written to the client.
pub struct Prepared {
    pub response: UpstreamResponse,
    /// The whole body (non-streaming), or the stream's events so far.
    pub held: Bytes,
    pub is_stream: bool,
    /// The stream already ended (everything is in `held`).
    pub upstream_ended: bool,
    pub labels: AttemptLabels,
    /// For a chat stream: the translator the rest of the stream goes through (and the parser
    /// holding any partial event). `None`: the rest is forwarded byte for byte.
    pub pump: Option<Box<StreamPump>>,
    /// This attempt's record so far; the commit completes it.
    pub record: Box<AttemptRecord>,
    /// Guardrail results to report at the commit (`None`: no guardrail ran or failed).
    pub guard: Option<Box<AttemptChecks>>,
}

/// A chat stream after the commit point: upstream events in, client-format events out.
pub struct StreamPump {
    pub parser: SseParser,
    pub translator: StreamTranslator,
    pub client: ClientFormat,
}

/// The formats one chat attempt translates between, and the request's context when it was
/// decoded (a same-format, non-streaming request with nothing to change is not).
#[derive(Clone, Copy)]
struct Translation<'a> {
    client: ClientFormat,
    upstream: Format,
    ctx: Option<&'a TranslateContext>,
}

impl Translation<'_> {
    fn crosses(&self) -> bool {
        self.client.format() != self.upstream
    }
}

/// The failure of an attempt whose request or response could not be translated.
fn translate_failure(leaf: &Target, e: TranslateError) -> Failure<Reply> {
    match e {
        // The client's own mistake: no other target would do better.
        TranslateError::InvalidRequest(m) => failure(
            FailureKind::NoRoute,
            Reply::Gateway(GatewayError::InvalidRequest(m)),
        ),
        // This target's format cannot carry the request; one of another format may.
        TranslateError::Unsupported { .. } => failure(
            FailureKind::Status(400),
            Reply::Gateway(GatewayError::InvalidRequest(format!(
                "target {} cannot serve this request: {e}",
                leaf.path
            ))),
        ),
        TranslateError::InvalidResponse { .. } => failure(
            FailureKind::Stream,
            Reply::Gateway(GatewayError::UpstreamInvalid {
                target: leaf.path.clone(),
                reason: e.to_string(),
            }),
        ),
    }
}

/// Metric labels of one attempt, all bounded by the config.
#[derive(Clone)]
pub struct AttemptLabels {
    pub config: String,
    pub target: String,
    pub provider: String,
    pub model: String,
}

impl AttemptLabels {
    pub fn record(&self, metrics: &Metrics, result: &str, took: Duration) {
        metrics
            .upstream_attempts_total
            .with_label_values(&[
                &self.config,
                &self.target,
                &self.provider,
                &self.model,
                result,
            ])
            .inc();
        metrics
            .upstream_duration_seconds
            .with_label_values(&[&self.target, &self.provider, &self.model])
            .observe(took.as_secs_f64());
    }
}

/// Runs attempts for one request.
pub struct AttemptRunner<'a> {
    pub client: &'a UpstreamClient,
    pub metrics: &'a Metrics,
    pub snapshot: &'a Snapshot,
    pub request: &'a ClientRequest,
    pub client_head: &'a RequestHeader,
    pub config: &'a str,
    /// Nanoseconds spent waiting on upstreams (for the overhead metric).
    pub upstream_wait_ns: &'a AtomicU64,
    /// Where each attempt's record goes.
    pub journal: &'a Journal,
    /// The config's input guardrails, applied before routing.
    pub screened: Option<&'a Screened>,
}

fn deadlines(settings: &TargetSettings, request_timeout: Option<Duration>) -> Deadlines {
    Deadlines {
        connect: settings.timeouts.connect.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        // Portkey: the `x-portkey-request-timeout` header wins over the config.
        headers: request_timeout
            .or(settings.request_timeout)
            .or(settings.timeouts.headers),
        first_chunk: settings.timeouts.ttft,
        idle: settings.timeouts.idle,
        total: settings.timeouts.total,
    }
}

/// The routing kind of a transport failure.
pub fn failure_kind(error: &AttemptError) -> FailureKind {
    match error {
        AttemptError::Timeout { phase, .. } => FailureKind::Timeout(*phase),
        AttemptError::Resolve { .. } | AttemptError::Connect(_) | AttemptError::Trust(_) => {
            FailureKind::Connect
        }
        AttemptError::Io(_) | AttemptError::TooLarge { .. } => FailureKind::Stream,
    }
}

/// Our error for a transport failure on `target`.
pub fn gateway_error(target: &str, error: AttemptError) -> GatewayError {
    match error {
        AttemptError::Timeout { phase, budget } => GatewayError::Timeout {
            target: target.to_string(),
            phase: phase.as_str(),
            ms: budget.as_millis(),
        },
        AttemptError::TooLarge { .. } => GatewayError::UpstreamInvalid {
            target: target.to_string(),
            reason: error.to_string(),
        },
        other => {
            // The detail names addresses and SNI: the log gets it, the client a fixed phrase.
            tracing::warn!(%target, error = %other, "upstream attempt failed");
            GatewayError::UpstreamUnreachable {
                target: target.to_string(),
                reason: other.client_reason(),
            }
        }
    }
}

fn failure(kind: FailureKind, reply: Reply) -> Failure<Reply> {
    Failure {
        kind,
        retry_after: None,
        detail: reply,
        retries: 0,
    }
}

impl AttemptRunner<'_> {
    fn labels(&self, leaf: &Target, model: Option<&str>) -> AttemptLabels {
        let provider = match &leaf.kind {
            TargetKind::Leaf { virtual_key } => virtual_key.provider.name.as_str(),
            TargetKind::Group { .. } => "other",
        };
        AttemptLabels {
            config: self.config.to_string(),
            target: leaf.label().to_string(),
            provider: provider.to_string(),
            model: match model {
                Some(m) if self.snapshot.known_models.contains(m) => m.to_string(),
                _ => "other".to_string(),
            },
        }
    }

    /// A record for an attempt on `leaf` starting now, with nothing measured yet.
    fn new_record(&self, leaf: &Target, span_id: [u8; 8]) -> AttemptRecord {
        let (provider, provider_kind) = match &leaf.kind {
            TargetKind::Leaf { virtual_key } => (
                virtual_key.provider.name.clone(),
                virtual_key.provider.kind.as_str(),
            ),
            TargetKind::Group { .. } => ("other".to_string(), "other"),
        };
        AttemptRecord {
            span_id,
            target: leaf.label().to_string(),
            provider,
            provider_kind,
            request_model: self.request.model_for(&leaf.settings).map(str::to_string),
            response_model: None,
            status: None,
            result: crate::telemetry::AttemptResult::Ok,
            start: SystemTime::now(),
            connect: None,
            headers: None,
            first_token: None,
            total: Duration::ZERO,
            usage: None,
        }
    }

    /// Counts an attempt that never ran to a result of its own (skipped, or dropped).
    fn count_attempt(&self, leaf: &Target, result: &str) {
        let labels = self.labels(leaf, self.request.model_for(&leaf.settings));
        self.metrics
            .upstream_attempts_total
            .with_label_values(&[
                &labels.config,
                &labels.target,
                &labels.provider,
                &labels.model,
                result,
            ])
            .inc();
    }

    /// Awaits an upstream future, adding its time to the upstream wait.
    async fn waiting<T>(&self, fut: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let out = fut.await;
        self.upstream_wait_ns
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        out
    }

    async fn prepare(
        &self,
        leaf: &Target,
        mut record: Box<AttemptRecord>,
    ) -> Result<Prepared, Failure<Reply>> {
        let TargetKind::Leaf { virtual_key } = &leaf.kind else {
            return Err(failure(
                FailureKind::NoRoute,
                Reply::Gateway(GatewayError::Internal("a group is not a leaf".into())),
            ));
        };
        let settings = &leaf.settings;
        let model = self.request.model_for(settings);
        if let Some(m) = model {
            if !virtual_key.allows_model(m) {
                let e = GatewayError::ModelNotAllowed {
                    model: m.chars().take(128).collect(),
                    virtual_key: virtual_key.label.clone(),
                };
                return Err(failure(FailureKind::Status(403), Reply::Gateway(e)));
            }
        }
        let labels = self.labels(leaf, model);
        let provider = &virtual_key.provider;
        let upstream = Format::of(provider.kind);
        // The body for this target, and how its answer is translated back.
        let (body, encoded, translation) = match self.request.format {
            None if upstream != Format::OpenAi => {
                return Err(translate_failure(
                    leaf,
                    TranslateError::Unsupported {
                        target: upstream.as_str(),
                        what: format!(
                            "{} is only served by OpenAI-format providers",
                            self.request.path_and_query.split('?').next().unwrap_or("")
                        ),
                    },
                ))
            }
            None => {
                let body = self
                    .request
                    .body_for(settings)
                    .map_err(|e| failure(FailureKind::NoRoute, Reply::Gateway(e)))?;
                (body, None, None)
            }
            // Same format, nothing to change, no stream usage to ask for: the bytes as sent.
            Some(client)
                if client.format() == upstream
                    && settings.override_params.is_empty()
                    && !self.request.stream
                    && provider.kind != ProviderKind::AzureOpenAi =>
            {
                let t = Translation {
                    client,
                    upstream,
                    ctx: None,
                };
                (self.request.body.clone(), None, Some(t))
            }
            Some(client) => {
                let (decoded, ctx) = self
                    .request
                    .decoded(client)
                    .map_err(|e| translate_failure(leaf, e))?;
                let enc = decoded
                    .encode(provider.kind, &settings.override_params, None)
                    .map_err(|e| translate_failure(leaf, e))?;
                let t = Translation {
                    client,
                    upstream,
                    ctx: Some(ctx),
                };
                (enc.body.clone(), Some(enc), Some(t))
            }
        };
        let chat = match (&encoded, translation) {
            (Some(enc), _) => Some(enc.chat_call()),
            (None, Some(_)) => Some(ChatCall {
                model: model.unwrap_or(""),
                stream: false,
            }),
            (None, None) => None,
        };
        let head = RequestHead {
            method: &self.request.method,
            client_path_and_query: &self.request.path_and_query,
            chat,
            body_len: body.len(),
        };
        let header = build_request(provider, self.client_head, &head)
            .and_then(|mut h| {
                h.insert_header(
                    "traceparent",
                    trace::traceparent(&self.journal.trace, &record.span_id),
                )?;
                Ok(h)
            })
            .map_err(|e| {
                failure(
                    FailureKind::NoRoute,
                    Reply::Gateway(GatewayError::InvalidRequest(format!(
                        "cannot build the upstream request: {e}"
                    ))),
                )
            })?;
        let sent = Instant::now();
        let deadlines = deadlines(settings, self.request.request_timeout);
        // Boxed: the send future (pingora's connector inside) is several KB, and inline it
        // would be copied into this future's state and every one wrapping it.
        let mut response = match self
            .waiting(Box::pin(
                self.client.send(provider, header, body, deadlines),
            ))
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(self.transport_failure(leaf, &labels, sent, e)),
        };
        let status = response.status();
        record.status = Some(status);
        record.connect = Some(response.connect_time());
        record.headers = Some(response.headers_time());
        if !(200..300).contains(&status) {
            let limit = self.snapshot.limits.max_response_body_bytes;
            let body = self.waiting(response.read_to_end(limit)).await;
            let kind = FailureKind::Status(status);
            labels.record(self.metrics, kind.label(), sent.elapsed());
            let header = response.header().cloned();
            let retry_after = header
                .as_ref()
                .and_then(|h| crate::router::retry::parse_retry_after(&h.headers));
            self.client.finish(response).await;
            let reply = match (body, header) {
                (Ok(body), Some(header)) => {
                    let (status, body) = match translation {
                        Some(t) if t.crosses() => {
                            translate_error(t.upstream, t.client, status, body)
                        }
                        _ => (status, body),
                    };
                    Reply::Upstream {
                        status,
                        header: Box::new(header),
                        body,
                    }
                }
                (Err(e), _) => Reply::Gateway(gateway_error(&leaf.path, e)),
                (Ok(_), None) => Reply::Gateway(GatewayError::UpstreamInvalid {
                    target: leaf.path.clone(),
                    reason: "no response header".into(),
                }),
            };
            return Err(Failure {
                kind,
                retry_after,
                detail: reply,
                retries: 0,
            });
        }
        if response.is_event_stream() {
            let pump = translation.and_then(|t| {
                Some(Box::new(StreamPump {
                    parser: SseParser::new(MAX_SSE_EVENT_BYTES),
                    translator: StreamTranslator::new(t.upstream, t.client, t.ctx?),
                    client: t.client,
                }))
            });
            let held = self
                .hold_stream(leaf, labels, response, sent, pump, record)
                .await;
            return match &settings.output_guardrails {
                Some(set) if guardrails::text::checks_output(self.request.operation(), true) => {
                    held.map(|mut p| {
                        p.guard.get_or_insert_default().stream = Some(
                            guardrails::stream::StreamGuard::new(set.clone(), self.request.format),
                        );
                        p
                    })
                }
                _ => held,
            };
        }
        let limit = self.snapshot.limits.max_response_body_bytes;
        match self.waiting(response.read_to_end(limit)).await {
            Ok(held) => {
                let held = match translation {
                    Some(Translation {
                        client,
                        upstream,
                        ctx: Some(ctx),
                    }) if client.format() != upstream => {
                        match translate_response(upstream, client, held, ctx) {
                            Ok(t) => {
                                record.usage = t.usage;
                                record.response_model = t.model;
                                t.body
                            }
                            Err(e) => {
                                self.client.finish(response).await;
                                labels.record(
                                    self.metrics,
                                    FailureKind::Stream.label(),
                                    sent.elapsed(),
                                );
                                return Err(translate_failure(leaf, e));
                            }
                        }
                    }
                    Some(t) => {
                        (record.usage, record.response_model) =
                            providers::facts_of_response(t.upstream, &held);
                        held
                    }
                    None => held,
                };
                let (held, guard) = match &settings.output_guardrails {
                    Some(set)
                        if guardrails::text::checks_output(self.request.operation(), false) =>
                    {
                        let (eval, redacted) =
                            guardrails::text::screen_response(set, self.request.format, &held);
                        eval.record(self.metrics, self.config);
                        if eval.blocks() {
                            self.client.finish(response).await;
                            let kind = FailureKind::Guardrail {
                                fallback: eval.falls_back(),
                            };
                            labels.record(self.metrics, kind.label(), sent.elapsed());
                            let denial = Denial {
                                input: self.screened.map(|s| s.eval.clone()).into_iter().collect(),
                                output: Some(eval),
                            };
                            return Err(failure(kind, Reply::Guardrail(Box::new(denial))));
                        }
                        let guard = eval.any_failed().then(|| {
                            Box::new(AttemptChecks {
                                output: Some(eval),
                                ..Default::default()
                            })
                        });
                        (redacted.unwrap_or(held), guard)
                    }
                    _ => (held, None),
                };
                Ok(Prepared {
                    response,
                    held,
                    is_stream: false,
                    upstream_ended: true,
                    labels,
                    pump: None,
                    record,
                    guard,
                })
            }
            Err(e) => {
                self.client.finish(response).await;
                Err(self.transport_failure(leaf, &labels, sent, e))
            }
        }
    }

    fn transport_failure(
        &self,
        leaf: &Target,
        labels: &AttemptLabels,
        sent: Instant,
        error: AttemptError,
    ) -> Failure<Reply> {
        let kind = failure_kind(&error);
        labels.record(self.metrics, kind.label(), sent.elapsed());
        failure(kind, Reply::Gateway(gateway_error(&leaf.path, error)))
    }

    /// Reads a stream until its first content event. An error event, a stream that ends with
    /// no content, or any read failure before that is a failure the router may fall back from.
    /// With a `pump` the events are translated as they are held (and the pump goes on to the
    /// commit); without one the raw bytes are held.
    async fn hold_stream(
        &self,
        leaf: &Target,
        labels: AttemptLabels,
        mut response: UpstreamResponse,
        sent: Instant,
        mut pump: Option<Box<StreamPump>>,
        mut record: Box<AttemptRecord>,
    ) -> Result<Prepared, Failure<Reply>> {
        let mut raw_parser = SseParser::new(MAX_SSE_EVENT_BYTES);
        let mut held = BytesMut::new();
        let mut out = Vec::new();
        let stream_failure = |reason: String| {
            labels.record(self.metrics, FailureKind::Stream.label(), sent.elapsed());
            failure(
                FailureKind::Stream,
                Reply::Gateway(GatewayError::UpstreamInvalid {
                    target: leaf.path.clone(),
                    reason,
                }),
            )
        };
        loop {
            let chunk = match self.waiting(response.next_chunk(true)).await {
                Ok(Some(c)) => c,
                Ok(None) => {
                    self.client.finish(response).await;
                    return Err(stream_failure("the stream ended before any content".into()));
                }
                Err(e) => {
                    self.client.finish(response).await;
                    return Err(self.transport_failure(leaf, &labels, sent, e));
                }
            };
            let parser = match pump.as_mut() {
                Some(p) => &mut p.parser,
                None => {
                    held.extend_from_slice(&chunk);
                    &mut raw_parser
                }
            };
            if parser.push(&chunk).is_err() {
                self.client.finish(response).await;
                return Err(stream_failure(format!(
                    "an SSE event exceeds {MAX_SSE_EVENT_BYTES} bytes"
                )));
            }
            let mut committed = false;
            while let Some(event) = next_event(&mut pump, &mut raw_parser) {
                let class = match pump.as_mut() {
                    Some(p) => p.translator.push(&event, &mut out),
                    None => providers::classify_event(&event),
                };
                if committed {
                    // Past the commit point already: translate the rest of this chunk.
                    continue;
                }
                match class {
                    EventClass::Preamble => {}
                    EventClass::Content => committed = true,
                    EventClass::Error => {
                        self.client.finish(response).await;
                        let shown: String = event.data.chars().take(300).collect();
                        return Err(stream_failure(format!(
                            "the stream reported an error before any content: {shown}"
                        )));
                    }
                    EventClass::Done => {
                        self.client.finish(response).await;
                        return Err(stream_failure("the stream ended before any content".into()));
                    }
                }
            }
            if committed {
                let first = sent.elapsed();
                record.first_token = Some(first);
                self.metrics
                    .time_to_first_token_seconds
                    .with_label_values(&[&labels.target, &labels.provider, &labels.model])
                    .observe(first.as_secs_f64());
                self.metrics
                    .genai
                    .time_to_first_chunk
                    .with_label_values(&[
                        self.request.operation(),
                        record.provider_kind,
                        &labels.model,
                    ])
                    .observe(first.as_secs_f64());
                let held = match pump {
                    Some(_) => Bytes::from(out),
                    None => held.freeze(),
                };
                return Ok(Prepared {
                    response,
                    held,
                    is_stream: true,
                    upstream_ended: false,
                    labels,
                    pump,
                    record,
                    guard: None,
                });
            }
        }
    }
}

impl AttemptRunner<'_> {
    /// An attempt on a target with input guardrails of its own: they run on the request (as
    /// the config's left it); a denial is a 446 failure the fallback may move on from (as in
    /// Portkey), a redaction sends this target the redacted text.
    async fn prepare_screened(
        &self,
        leaf: &Target,
        set: &guardrails::Guardrails,
        record: Box<AttemptRecord>,
    ) -> Result<Prepared, Failure<Reply>> {
        let Some(mut json) = self.request.json.clone() else {
            return self.prepare(leaf, record).await;
        };
        let (eval, body) = guardrails::text::screen_request(set, self.request.format, &mut json);
        eval.record(self.metrics, self.config);
        let mut input: Vec<guardrails::Evaluation> =
            self.screened.map(|s| s.eval.clone()).into_iter().collect();
        if eval.denied() {
            input.push(eval);
            let denial = Denial {
                input,
                output: None,
            };
            return Err(failure(
                FailureKind::Status(DENIED_STATUS),
                Reply::Guardrail(Box::new(denial)),
            ));
        }
        let redacted = body.map(|b| self.request.with_body(b, json));
        let result = match &redacted {
            Some(request) => {
                let runner = AttemptRunner { request, ..*self };
                runner.prepare(leaf, record).await
            }
            None => self.prepare(leaf, record).await,
        };
        let failed = eval.any_failed();
        match result {
            Ok(mut p) if failed => {
                p.guard.get_or_insert_default().input = Some(eval);
                Ok(p)
            }
            Err(mut f) => {
                if let Reply::Guardrail(d) = &mut f.detail {
                    d.input.push(eval);
                }
                Err(f)
            }
            other => other,
        }
    }
}

/// The next complete event, from the pump's parser when there is one.
fn next_event(pump: &mut Option<Box<StreamPump>>, raw: &mut SseParser) -> Option<SseEvent> {
    match pump {
        Some(p) => p.parser.next_event(),
        None => raw.next_event(),
    }
}

#[async_trait]
impl Attempts for AttemptRunner<'_> {
    type Ready = Prepared;
    type Detail = Reply;

    async fn attempt(&self, leaf: &Target) -> Result<Prepared, Failure<Reply>> {
        let started = Instant::now();
        let span_id = trace::new_span_id();
        let record = Box::new(self.new_record(leaf, span_id));
        let result = match &leaf.settings.input_guardrails {
            // No list of its own: the config's (if any) was applied before routing.
            set if guardrails::same(set.as_ref(), self.screened.map(|s| &s.applied)) => {
                self.prepare(leaf, record).await
            }
            None => self.prepare(leaf, record).await,
            Some(set) => self.prepare_screened(leaf, set, record).await,
        };
        if let Err(f) = &result {
            let mut record = self.new_record(leaf, span_id);
            record.start = SystemTime::now() - started.elapsed();
            record.result = f.kind.result();
            record.status = match f.kind {
                FailureKind::Status(s) => Some(s),
                _ => None,
            };
            record.total = started.elapsed();
            self.journal.push(record);
        }
        result
    }

    fn no_route(&self) -> Reply {
        Reply::Gateway(GatewayError::InvalidRequest(
            "no target matched the request (conditional routing has no matching condition and no default)".into(),
        ))
    }

    fn fell_back(&self, from: &Target, kind: FailureKind) {
        self.metrics
            .fallbacks_total
            .with_label_values(&[self.config, from.label(), kind.label()])
            .inc();
    }

    fn retried(&self, leaf: &Target, kind: FailureKind) {
        self.metrics
            .retries_total
            .with_label_values(&[self.config, leaf.label(), kind.label()])
            .inc();
    }

    fn skipped_open(&self, leaf: &Target) {
        self.count_attempt(leaf, "circuit_open");
        let mut record = self.new_record(leaf, trace::new_span_id());
        record.result = crate::telemetry::AttemptResult::CircuitOpen;
        self.journal.push(record);
        self.metrics
            .fallbacks_total
            .with_label_values(&[self.config, leaf.label(), "circuit_open"])
            .inc();
    }

    fn hedge_lost(&self, leaf: &Target) {
        self.count_attempt(leaf, "hedge_lost");
        let mut record = self.new_record(leaf, trace::new_span_id());
        record.result = crate::telemetry::AttemptResult::HedgeLost;
        self.journal.push(record);
    }
}
