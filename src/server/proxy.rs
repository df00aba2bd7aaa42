//! The app-facing proxy service: pingora's `ProxyHttp` glue around the request
//! [`Pipeline`](crate::pipeline). Every request is taken over in `request_filter` (pingora's
//! pipeline cannot fall back on a status, replays at most 64 KiB and commits response headers
//! as soon as the upstream's arrive; DESIGN.md §1) and served by the pipeline, except a
//! plain-HTTP request to a `forward.allow_hosts` host, which pingora's proxy forwards
//! untouched.

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::{Error, ErrorType};

use super::downstream;
use super::forward::{self, Forwarder, PlainForward, RequestRoute};
use super::shutdown::Drain;
use crate::config::Snapshot;
use crate::pipeline::{reject, Entry, Pipeline};

/// The app-facing service.
pub struct Gateway {
    pub live: Arc<ArcSwap<Snapshot>>,
    pub drain: Arc<Drain>,
    /// Forward-proxy mode state shared with the listener app.
    pub forward: Arc<Forwarder>,
    pub pipeline: Pipeline,
}

impl Gateway {
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
                reject::refuse(session, &e).await;
                Ok(true)
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
        let entry = match forward::route_request(&snapshot, session.as_downstream(), &self.forward)
        {
            RequestRoute::Forward { host, port } => {
                return self
                    .forward_plain(session, ctx, &host, port, keepalive_secs)
                    .await;
            }
            RequestRoute::Gateway => Entry::Gateway,
            RequestRoute::Intercepted(inferred) => Entry::Intercepted(inferred.cloned()),
            RequestRoute::Refused(e) => Entry::Refused(e),
        };
        let _inflight = self.drain.enter();
        session.set_keepalive(match self.drain.is_draining() {
            true => None,
            false => Some(keepalive_secs),
        });
        let abort = self
            .pipeline
            .handle(session, &snapshot, entry, downstream::stalled)
            .await;
        if abort {
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
