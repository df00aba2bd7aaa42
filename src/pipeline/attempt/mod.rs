//! One upstream attempt up to the commit point — the router's [`Attempts`]. Nothing here
//! writes to the client: a non-streaming body is read whole, a stream is held until its first
//! content event; anything that goes wrong before that is a [`Failure`] the router can retry,
//! fall back from, or race (hedging).
//!
//! The parts: [`request`] (what the client asked for), [`plan`] (the body and head for one
//! target), [`failure`] (failure kinds and replies), [`hold`] (up to the commit point),
//! [`screen`] (a target's own input guardrails), [`runner`] (what the attempts share, and
//! the transport side of one).

mod failure;
mod hold;
mod plan;
pub mod request;
mod runner;
mod screen;
mod translation;

use std::time::Instant;

use async_trait::async_trait;

pub use failure::{failure_kind, gateway_error, Reply};
pub use hold::{Prepared, StreamPump};
pub use request::ClientRequest;
pub use runner::{AttemptLabels, AttemptRunner};

use crate::config::Target;
use crate::error::GatewayError;
use crate::guardrails;
use crate::router::{Attempts, Failure, FailureKind};
use crate::telemetry::metrics::{FallbackLabels, RetryLabels};
use crate::telemetry::{trace, AttemptRecord, AttemptResult};
use failure::{failure, status_failure};
use hold::Held;
use plan::Plan;

impl AttemptRunner<'_> {
    /// One attempt on `leaf`: plan, send, and hold the answer up to the commit point.
    async fn prepare(
        &self,
        leaf: &Target,
        mut record: Box<AttemptRecord>,
    ) -> Result<Box<Prepared>, Failure<Reply>> {
        let provider = &self.key_for(leaf)?.provider;
        let model = self.request.model_for(&leaf.settings);
        let labels = self.labels(leaf, model);
        let plan = Plan::new(self.request, leaf, provider)?;
        let mut header = plan.head(self.request, self.client_head, provider, model)?;
        let traceparent = trace::traceparent(&self.journal.trace, &record.span_id);
        if let Err(e) = header.insert_header("traceparent", traceparent) {
            return Err(failure(
                FailureKind::NoRoute,
                Reply::Gateway(GatewayError::InvalidRequest(format!(
                    "cannot build the upstream request: {e}"
                ))),
            ));
        }
        let sent = Instant::now();
        let response = match self.send(leaf, provider, header, plan.body).await {
            Ok(r) => r,
            Err(e) => return Err(self.transport_failure(leaf, &labels, sent, e)),
        };
        record.status = Some(response.status());
        record.connect = Some(response.connect_time());
        record.headers = Some(response.headers_time());
        let mut held = Held {
            leaf,
            labels,
            response,
            sent,
            translation: plan.translation,
            record,
        };
        let status = held.response.status();
        if !(200..300).contains(&status) {
            let limit = self.snapshot.limits.max_response_body_bytes;
            let body = self.waiting(held.response.read_to_end(limit)).await;
            let kind = FailureKind::Status(status);
            held.labels
                .record(self.metrics, kind.result(), sent.elapsed());
            return Err(status_failure(leaf, held.response, held.translation, body).await);
        }
        if held.response.is_event_stream() {
            return self.hold_stream(held).await;
        }
        self.read_whole(held).await
    }
}

#[async_trait]
impl Attempts for AttemptRunner<'_> {
    // Boxed: the answer is handed up through the router's futures and down to the commit,
    // and inline its few hundred bytes were copied at each level and kept in each future.
    type Ready = Box<Prepared>;
    type Detail = Reply;

    async fn attempt(&self, leaf: &Target) -> Result<Box<Prepared>, Failure<Reply>> {
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
            self.failed_record(leaf, span_id, started, f.kind);
        }
        result
    }

    fn no_route(&self) -> Reply {
        Reply::Gateway(GatewayError::InvalidRequest(
            "no target matched the request (conditional routing has no matching condition and no default)".into(),
        ))
    }

    fn fell_back(&self, from: &Target, kind: FailureKind) {
        self.fallback(from, kind.result());
    }

    fn retried(&self, leaf: &Target, kind: FailureKind) {
        let labels = RetryLabels {
            config: self.config,
            target: leaf.label(),
            reason: kind.result(),
        };
        self.metrics.retries_total.with(&labels).inc();
    }

    fn skipped_open(&self, leaf: &Target) {
        self.skipped(leaf, AttemptResult::CircuitOpen);
        self.fallback(leaf, AttemptResult::CircuitOpen);
    }

    fn hedge_lost(&self, leaf: &Target) {
        self.skipped(leaf, AttemptResult::HedgeLost);
    }
}

impl AttemptRunner<'_> {
    /// An attempt that never ran to a result of its own: counted and journalled.
    fn skipped(&self, leaf: &Target, result: AttemptResult) {
        self.count_attempt(leaf, result);
        let mut record = self.new_record(leaf, trace::new_span_id());
        record.result = result;
        self.journal.push(record);
    }

    fn fallback(&self, from: &Target, reason: AttemptResult) {
        let labels = FallbackLabels {
            config: self.config,
            from_target: from.label(),
            reason,
        };
        self.metrics.fallbacks_total.with(&labels).inc();
    }
}
