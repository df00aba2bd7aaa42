//! The cache phase, for configs that set `cache`: a stored answer is replayed; otherwise the
//! routed answer is captured and stored when it completes successfully. The status
//! (`x-portkey-cache-status`) goes on every answer from here on.

use pingora::prelude::Session;

use super::context::{Admitted, Context};
use super::embed::EmbedCalls;
use super::write::{Finished, Outcome, MAX_LOGGED_BODY};
use super::Pipeline;
use crate::cache::{self, Lookup, Pending};

/// What the lookup found.
pub enum Found {
    /// Answered from the cache.
    Hit(Finished),
    /// Route it; store the answer under `Pending` when there is one (a miss, not a bypass).
    Miss(Option<Pending>),
}

impl Pipeline {
    /// Looks the request up when its config caches (`Found::Miss(None)` when it does not).
    pub(super) async fn lookup(
        &self,
        session: &mut Session,
        ctx: &mut Context<'_>,
        call: Admitted<'_>,
    ) -> Found {
        let (Some(settings), Some(body)) =
            (&call.resolved.route.root.settings.cache, &call.request.json)
        else {
            return Found::Miss(None);
        };
        let head = session.req_header();
        let force_refresh = cache::FORCE_REFRESH_HEADERS.iter().any(|h| {
            head.headers
                .get(*h)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
        });
        let config = call.resolved.config_label();
        // Passthrough: entries are the caller's own (their key decides what they may see),
        // keyed by a hash of the key, never the key.
        let caller = match &call.resolved.virtual_key {
            None if call.resolved.route.root.uses_caller_credential() => {
                Some(cache::key::caller_scope(&head.headers))
            }
            _ => None,
        };
        // A Gemini JSON-array stream is keyed apart from the same call with `alt=sse`.
        let query = call.request.path_and_query.split_once('?').map(|(_, q)| q);
        let cache_path = crate::providers::gemini::client::cache_path(call.request.path(), query);
        let lookup = cache::Request {
            scope: cache::key::Scope {
                config,
                virtual_key: match &call.resolved.virtual_key {
                    Some(k) => Some(k.name.as_str()),
                    None => caller.as_deref(),
                },
                path: &cache_path,
            },
            body,
            metadata: call.request.metadata.as_ref(),
            overrides: &call.resolved.route.root.settings.override_params,
            force_refresh,
        };
        let embed = EmbedCalls {
            client: &self.client,
            metrics: &self.metrics,
            breakers: &self.breakers,
            snapshot: ctx.snapshot,
            config,
            trace: &ctx.journal.trace,
        };
        // Boxed: only configs that cache carry this future's size.
        let found = Box::pin(self.cache.lookup(settings, lookup, &embed)).await;
        let pending = match found {
            Lookup::Hit(hit) => {
                ctx.facts.cache = hit.status.header();
                let mut headers = hit.headers();
                headers.extend_from_slice(&ctx.headers);
                let abort = cache::replay::write(session, &hit.entry, &headers)
                    .await
                    .is_err();
                let body = &hit.entry.body;
                let mut finished = Finished::new(hit.entry.status, Outcome::CacheHit, abort);
                finished.response_body = ctx
                    .keep_body
                    .then(|| body.slice(..body.len().min(MAX_LOGGED_BODY)));
                return Found::Hit(finished);
            }
            Lookup::Bypass => None,
            Lookup::Miss(pending) => Some(pending),
        };
        let status = pending
            .as_ref()
            .map_or(cache::Status::Disabled, |p| p.status);
        ctx.facts.cache = status.header();
        ctx.headers.extend(cache::status_headers(status));
        Found::Miss(pending)
    }

    /// Stores a routed answer that completed successfully.
    pub(super) fn store(&self, pending: Option<Pending>, finished: &mut Finished) {
        if let (Some(pending), Some(captured)) = (pending, finished.captured.take()) {
            if matches!(finished.outcome, Outcome::Ok | Outcome::FallbackOk) && !finished.abort {
                self.cache
                    .store(pending, finished.status, captured.stream, captured.body);
            }
        }
    }
}

/// The most of an answer the cache may capture.
pub fn capture_limit(pending: Option<&Pending>) -> Option<usize> {
    pending.map(Pending::max_bytes)
}
