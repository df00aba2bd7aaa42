//! One upstream attempt up to the commit point — the router's [`Attempts`]. Nothing here
//! writes to the client: a non-streaming body is read whole, a stream is held until its first
//! content event; anything that goes wrong before that is a [`Failure`] the router can retry,
//! fall back from, or race (hedging).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::http::{RequestHeader, ResponseHeader};

use crate::config::{Snapshot, Target, TargetKind, TargetSettings};
use crate::error::GatewayError;
use crate::providers::{self, openai, EventClass};
use crate::router::{Attempts, Failure, FailureKind};
use crate::telemetry::Metrics;
use crate::upstream::client::DEFAULT_CONNECT_TIMEOUT;
use crate::upstream::sse::SseParser;
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
}

impl ClientRequest {
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
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
        other => GatewayError::UpstreamUnreachable {
            target: target.to_string(),
            reason: other.to_string(),
        },
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

    async fn prepare(&self, leaf: &Target) -> Result<Prepared, Failure<Reply>> {
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
                    virtual_key: virtual_key.name.clone(),
                };
                return Err(failure(FailureKind::Status(403), Reply::Gateway(e)));
            }
        }
        let labels = self.labels(leaf, model);
        let body = self
            .request
            .body_for(settings)
            .map_err(|e| failure(FailureKind::NoRoute, Reply::Gateway(e)))?;
        let provider = &virtual_key.provider;
        let header = openai::build_request(
            provider,
            &self.request.method,
            &self.request.path_and_query,
            self.client_head,
            body.len(),
        )
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
        let mut response = match self
            .waiting(self.client.send(provider, header, body, deadlines))
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(self.transport_failure(leaf, &labels, sent, e)),
        };
        let status = response.status();
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
                (Ok(body), Some(header)) => Reply::Upstream {
                    status,
                    header: Box::new(header),
                    body,
                },
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
            return self.hold_stream(leaf, labels, response, sent).await;
        }
        let limit = self.snapshot.limits.max_response_body_bytes;
        match self.waiting(response.read_to_end(limit)).await {
            Ok(held) => Ok(Prepared {
                response,
                held,
                is_stream: false,
                upstream_ended: true,
                labels,
            }),
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
    async fn hold_stream(
        &self,
        leaf: &Target,
        labels: AttemptLabels,
        mut response: UpstreamResponse,
        sent: Instant,
    ) -> Result<Prepared, Failure<Reply>> {
        let mut parser = SseParser::new(MAX_SSE_EVENT_BYTES);
        let mut held = BytesMut::new();
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
            held.extend_from_slice(&chunk);
            if parser.push(&chunk).is_err() {
                self.client.finish(response).await;
                return Err(stream_failure(format!(
                    "an SSE event exceeds {MAX_SSE_EVENT_BYTES} bytes"
                )));
            }
            while let Some(event) = parser.next_event() {
                match providers::classify_event(&event) {
                    EventClass::Preamble => {}
                    EventClass::Content => {
                        self.metrics
                            .time_to_first_token_seconds
                            .with_label_values(&[&labels.target, &labels.provider, &labels.model])
                            .observe(sent.elapsed().as_secs_f64());
                        return Ok(Prepared {
                            response,
                            held: held.freeze(),
                            is_stream: true,
                            upstream_ended: false,
                            labels,
                        });
                    }
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
        }
    }
}

#[async_trait]
impl Attempts for AttemptRunner<'_> {
    type Ready = Prepared;
    type Detail = Reply;

    async fn attempt(&self, leaf: &Target) -> Result<Prepared, Failure<Reply>> {
        self.prepare(leaf).await
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
        self.metrics
            .fallbacks_total
            .with_label_values(&[self.config, leaf.label(), "circuit_open"])
            .inc();
    }

    fn hedge_lost(&self, leaf: &Target) {
        self.count_attempt(leaf, "hedge_lost");
    }
}
