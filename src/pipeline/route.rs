//! The route phase: the config's strategy (retries, fallbacks, load balancing, conditions,
//! breakers, hedging — [`crate::router`]) runs attempts up to a commit point ([`Pipeline::route`]),
//! then the winner is committed ([`Pipeline::commit`]); when every target failed, the last
//! failure is the rejection.

use pingora::prelude::Session;

use super::attempt::{AttemptRunner, Prepared};
use super::commit::Commit;
use super::context::{Admitted, Context};
use super::journal::Tried;
use super::reject::Rejection;
use super::write::{Finished, Outcome};
use super::Pipeline;
use crate::config::{Target, TargetKind};
use crate::guardrails::Screened;
use crate::providers::ClientFormat;
use crate::router::condition::Facts;
use crate::router::{Router, Won};

/// The target that answered (or, when every target failed, the last one tried).
fn tried(leaf: &Target) -> Tried {
    // Portkey's provider ids: the id a passthrough target was reached by, else the kind's.
    let provider = match &leaf.kind {
        TargetKind::Leaf { virtual_key } => {
            let p = &virtual_key.provider;
            let passthrough = virtual_key.label == crate::config::compile::PASSTHROUGH_LABEL;
            match passthrough.then(|| crate::vocab::kinds::portkey_provider(&p.name)) {
                Some(Some(known)) => known.id,
                _ => p.kind.portkey_id(),
            }
        }
        TargetKind::Group { .. } => "",
    };
    Tried {
        path: leaf.path.clone(),
        provider,
        label: leaf.label().to_string(),
    }
}

/// The response headers that say which target answered — or was tried last when every one
/// failed — and how many retries it took (Portkey's names and ours). Portkey's retry count is
/// -1 when retries ran out.
fn route_headers(target: Option<Tried>, retries: i64) -> Vec<(&'static str, String)> {
    let mut headers = Vec::with_capacity(6);
    if let Some(t) = target {
        headers.push(("x-portkey-last-used-option-index", t.path.clone()));
        headers.push(("x-switchyard-last-used-option-index", t.path));
        if !t.provider.is_empty() {
            headers.push(("x-portkey-provider", t.provider.to_string()));
        }
        headers.push(("x-switchyard-target", t.label));
    }
    headers.push(("x-portkey-retry-attempt-count", retries.to_string()));
    headers.push(("x-switchyard-retry-attempt-count", retries.to_string()));
    headers
}

/// A request routed up to its commit point: the attempt that answered, not yet committed.
pub(super) struct Routed<'t> {
    won: Won<'t, Box<Prepared>>,
    /// The route headers, then the context's.
    headers: Vec<(&'static str, String)>,
    operation: &'static str,
}

impl Pipeline {
    /// Routes the request up to a commit point on its config's strategy tree `root` (given
    /// apart from `call` so the answer outlives the request). Nothing is written to the client
    /// here; when every target failed, the last failure is the rejection.
    pub(super) async fn route<'t>(
        &self,
        session: &Session,
        ctx: &Context<'_>,
        call: Admitted<'_>,
        root: &'t Target,
    ) -> Result<Routed<'t>, Rejection> {
        let runner = AttemptRunner {
            journal: &ctx.journal,
            client: &self.client,
            metrics: &self.metrics,
            snapshot: ctx.snapshot,
            request: call.request,
            client_head: session.req_header(),
            config: call.resolved.config_label(),
            upstream_wait_ns: &ctx.upstream_wait_ns,
            screened: call.screened,
        };
        let router = Router {
            attempts: &runner,
            breakers: &self.breakers,
            facts: Facts {
                metadata: call.request.metadata.as_ref(),
                params: call.request.json.as_ref(),
            },
        };
        let won = match router.run(root).await {
            Ok(won) => won,
            Err(failure) => {
                let retries = if failure.retries > 0 { -1 } else { 0 };
                return Err(Rejection::Failed {
                    reply: failure.detail,
                    format: call.request.format.unwrap_or(ClientFormat::OpenAi),
                    headers: route_headers(ctx.journal.last_failed(), retries),
                });
            }
        };
        let mut headers = route_headers(Some(tried(won.leaf)), i64::from(won.retries));
        headers.extend_from_slice(&ctx.headers);
        Ok(Routed {
            won,
            headers,
            operation: call.request.operation(),
        })
    }

    /// Commits the answer that won (`capture`: the most the cache keeps) and, for a stream,
    /// pumps it to the end.
    pub(super) async fn commit(
        &self,
        session: &mut Session,
        ctx: &Context<'_>,
        routed: Routed<'_>,
        screened: Option<&Screened>,
        capture: Option<usize>,
    ) -> Finished {
        let Routed {
            won,
            headers,
            operation,
        } = routed;
        let commit = Commit {
            metrics: &self.metrics,
            upstream_wait_ns: &ctx.upstream_wait_ns,
            target_path: &won.leaf.path,
            operation,
            keep_body: ctx.keep_body,
            screened,
            capture,
            outcome_if_ok: match won.fell_back {
                true => Outcome::FallbackOk,
                false => Outcome::Ok,
            },
            stalled: ctx.stalled,
        };
        commit.run(session, won.ready, &headers).await
    }
}
