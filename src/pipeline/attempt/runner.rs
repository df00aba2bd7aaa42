//! The attempt runner: what one request's attempts share (client, metrics, the request, its
//! journal and upstream wait), each attempt's metric labels and record, and the transport
//! side of an attempt (deadlines, send, transport failures).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use pingora::http::RequestHeader;

use super::failure::{failure, failure_kind, gateway_error, Reply};
use super::request::ClientRequest;
use crate::config::{Provider, Snapshot, Target, TargetKind, TargetSettings, VirtualKey};
use crate::error::GatewayError;
use crate::guardrails::Screened;
use crate::pipeline::journal::{Journal, Tried};
use crate::router::{Failure, FailureKind};
use crate::telemetry::metrics::{TargetLabels, UpstreamAttemptLabels};
use crate::telemetry::{AttemptRecord, AttemptResult, Metrics};
use crate::upstream::client::DEFAULT_CONNECT_TIMEOUT;
use crate::upstream::{AttemptError, Deadlines, UpstreamClient, UpstreamResponse};

/// Metric labels of one attempt, all bounded by the config.
#[derive(Clone)]
pub struct AttemptLabels {
    pub config: String,
    pub target: String,
    pub provider: String,
    pub model: String,
}

impl AttemptLabels {
    pub fn record(&self, metrics: &Metrics, result: AttemptResult, took: Duration) {
        self.count(metrics, result);
        metrics
            .upstream_duration_seconds
            .with(&self.target_labels())
            .observe(took.as_secs_f64());
    }

    /// Counts an attempt with this result in `switchyard_upstream_attempts_total`.
    pub fn count(&self, metrics: &Metrics, result: AttemptResult) {
        metrics
            .upstream_attempts_total
            .with(&UpstreamAttemptLabels {
                config: &self.config,
                target: &self.target,
                provider: &self.provider,
                model: &self.model,
                result,
            })
            .inc();
    }

    /// The per-target label set (duration, time to first token).
    pub fn target_labels(&self) -> TargetLabels<'_> {
        TargetLabels {
            target: &self.target,
            provider: &self.provider,
            model: &self.model,
        }
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

impl AttemptRunner<'_> {
    pub(super) fn labels(&self, leaf: &Target, model: Option<&str>) -> AttemptLabels {
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
    pub(super) fn new_record(&self, leaf: &Target, span_id: [u8; 8]) -> AttemptRecord {
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
            result: AttemptResult::Ok,
            start: SystemTime::now(),
            connect: None,
            headers: None,
            first_token: None,
            total: Duration::ZERO,
            usage: None,
        }
    }

    /// Counts an attempt that never ran to a result of its own (skipped, or dropped).
    pub(super) fn count_attempt(&self, leaf: &Target, result: AttemptResult) {
        let labels = self.labels(leaf, self.request.model_for(&leaf.settings));
        labels.count(self.metrics, result);
    }

    /// Awaits an upstream future, adding its time to the upstream wait.
    pub(super) async fn waiting<T>(&self, fut: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let out = fut.await;
        self.upstream_wait_ns
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        out
    }

    /// The leaf's virtual key, if it allows the model this target would be sent.
    pub(super) fn key_for<'t>(&self, leaf: &'t Target) -> Result<&'t VirtualKey, Failure<Reply>> {
        let TargetKind::Leaf { virtual_key } = &leaf.kind else {
            return Err(failure(
                FailureKind::NoRoute,
                Reply::Gateway(GatewayError::Internal("a group is not a leaf".into())),
            ));
        };
        match self.request.model_for(&leaf.settings) {
            Some(m) if !virtual_key.allows_model(m) => {
                let e = GatewayError::ModelNotAllowed {
                    model: m.chars().take(128).collect(),
                    virtual_key: virtual_key.label.clone(),
                };
                Err(failure(FailureKind::Status(403), Reply::Gateway(e)))
            }
            _ => Ok(virtual_key),
        }
    }

    /// Sends the request within the target's deadlines.
    pub(super) async fn send(
        &self,
        leaf: &Target,
        provider: &Provider,
        header: RequestHeader,
        body: bytes::Bytes,
    ) -> Result<UpstreamResponse, AttemptError> {
        let deadlines = deadlines(&leaf.settings, self.request.request_timeout);
        // Boxed: the send future (pingora's connector inside) is several KB, and inline it
        // would be copied into this future's state and every one wrapping it.
        self.waiting(Box::pin(
            self.client.send(provider, header, body, deadlines),
        ))
        .await
    }

    pub(super) fn transport_failure(
        &self,
        leaf: &Target,
        labels: &AttemptLabels,
        sent: Instant,
        error: AttemptError,
    ) -> Failure<Reply> {
        let kind = failure_kind(&error);
        labels.record(self.metrics, kind.result(), sent.elapsed());
        failure(kind, Reply::Gateway(gateway_error(&leaf.path, error)))
    }

    /// The journal's record of an attempt that failed.
    pub(super) fn failed_record(
        &self,
        leaf: &Target,
        span_id: [u8; 8],
        started: Instant,
        kind: FailureKind,
    ) {
        let mut record = self.new_record(leaf, span_id);
        record.start = SystemTime::now() - started.elapsed();
        record.result = kind.result();
        record.status = match kind {
            FailureKind::Status(s) => Some(s),
            _ => None,
        };
        record.total = started.elapsed();
        self.journal.failed_on(Tried {
            path: leaf.path.clone(),
            provider: record.provider_kind,
            label: record.target.clone(),
        });
        self.journal.push(record);
    }
}
