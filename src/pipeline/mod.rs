//! The request pipeline: every request the gateway serves itself goes through the phases in
//! [`Pipeline::phases`], in order. Each phase is a file here; a phase either lets the request
//! continue (handing what it produced to the next) or stops it with a [`Rejection`], which
//! [`reject::respond`] — the one place — turns into the client's response. Whatever ended it,
//! [`record`] then counts, records and exports the request.
//!
//! Nothing reaches the client before the **commit point**: a whole non-streaming body, or a
//! stream's first content event ([`attempt`]). Before it any failure can still move to the
//! next target; after it ([`commit`]) a failure ends the stream with a terminal SSE error
//! event.
//!
//! The per-request state lives in a [`Context`]; the pingora glue (`ProxyHttp`, forward-proxy
//! mode, admin, shutdown) stays in `server/`, which hands each request over as an [`Entry`].

mod admission;
mod analytics;
pub mod attempt;
mod body;
mod cache;
pub mod commit;
pub mod context;
pub mod embed;
mod feedback;
pub mod ingress;
pub mod journal;
mod record;
pub mod reject;
mod route;
pub mod write;

use std::sync::Arc;
use std::time::Instant;

use pingora::prelude::Session;

pub use context::{Context, StallProbe};
pub use ingress::Entry;
pub use reject::Rejection;
pub use write::{Finished, Outcome};

use crate::cache::Cache;
use crate::config::Snapshot;
use crate::console::Console;
use crate::governance::Governance;
use crate::router::Breakers;
use crate::store::Store;
use crate::telemetry::access_log::AccessLog;
use crate::telemetry::feedback::FeedbackBook;
use crate::telemetry::otlp::OtlpExporter;
use crate::telemetry::{trace, Metrics};
use crate::upstream::UpstreamClient;
use context::Admitted;

/// What every request's phases share: the upstream client, state that outlives config reloads
/// (breakers, limit counters, cache stores) and where telemetry goes.
pub struct Pipeline {
    pub client: UpstreamClient,
    pub metrics: Arc<Metrics>,
    /// Circuit breakers by target; outlive config reloads (the console reads them too).
    pub breakers: Arc<Breakers>,
    /// Keeps the last requests for the console.
    pub console: Arc<Console>,
    pub access_log: AccessLog,
    /// OTLP trace export, when configured (`OTEL_EXPORTER_OTLP_*`).
    pub otlp: Option<Arc<OtlpExporter>>,
    /// Per-virtual-key limits; counters outlive config reloads.
    pub governance: Arc<Governance>,
    /// Response caches of the configs that set `cache`; stores outlive config reloads.
    pub cache: Arc<Cache>,
    /// The feedback ids issued, so `PUT /v1/feedback/{id}` can update one (bounded).
    pub feedback_book: Arc<FeedbackBook>,
    /// The request store (`store:`), when configured: every record and piece of feedback.
    pub store: Option<Arc<Store>>,
}

impl Pipeline {
    /// Serves one request on `snapshot` end to end and records it. Returns whether the
    /// response is incomplete (the connection must be dropped).
    pub async fn handle(
        &self,
        session: &mut Session,
        snapshot: &Snapshot,
        entry: Entry,
        stalled: StallProbe,
    ) -> bool {
        self.metrics.inflight_requests.inc();
        let started = Instant::now();
        let trace = trace::from_headers(&session.req_header().headers);
        let mut ctx = Context::new(snapshot, trace, stalled);
        let finished = match self.phases(session, &mut ctx, entry).await {
            Ok(finished) => finished,
            Err(rejection) => reject::respond(session, &ctx, rejection).await,
        };
        let abort = finished.abort;
        self.finish(session, ctx, finished, started.elapsed());
        abort
    }

    /// The phases, in order.
    async fn phases(
        &self,
        session: &mut Session,
        ctx: &mut Context<'_>,
        entry: Entry,
    ) -> Result<Finished, Rejection> {
        let origin = ingress::enter(session, ctx, entry)?;
        if feedback::is_feedback(session) {
            return self.feedback(session, ctx).await;
        }
        if analytics::is_analytics(session) {
            return self.analytics(session, ctx).await;
        }
        let resolved = match ingress::resolve(session, ctx, origin) {
            Err(refused) if !ingress::may_route_by_model(&refused) => return Err(refused),
            other => other,
        };
        let limit = ctx.snapshot.limits.max_request_body_bytes;
        let body = body::read(session, ctx, &self.metrics, limit).await?;
        let (resolved, mut request) = ingress::parse_with_slug(session, ctx, resolved, body)?;
        admission::allowlist(&resolved, &request)?;
        let screened = admission::screen_input(ctx, &self.metrics, &resolved, &mut request)?;
        admission::govern(ctx, &self.governance, &resolved, &request).await?;
        admission::note(session, ctx, &request);
        let call = Admitted {
            resolved: &resolved,
            request: &request,
            screened: screened.as_ref(),
        };
        let pending = match self.lookup(session, ctx, call).await {
            cache::Found::Hit(finished) => return Ok(finished),
            cache::Found::Miss(pending) => pending,
        };
        let capture = cache::capture_limit(pending.as_ref());
        let routed = self.route(session, ctx, call, &resolved.route.root).await?;
        // Past the commit point only the answer is needed: the request (its body, and for a
        // chat stream its decoded form) is not kept for the length of a stream.
        drop(request);
        let mut finished = self
            .commit(session, ctx, routed, screened.as_ref(), capture)
            .await;
        self.store(pending, &mut finished);
        Ok(finished)
    }
}
