//! Ingress: how the server hands a request over ([`Entry`]), the request target made
//! canonical and matched to a route, and the virtual key and config that will run it.

use std::sync::Arc;

use pingora::prelude::Session;

use super::context::Context;
use super::reject::Rejection;
use crate::config::RouteConfig;
use crate::error::GatewayError;
use crate::ingress::{self, path, Resolved};
use crate::providers::ClientFormat;

/// How a request reaches the pipeline, as far as forward-proxy mode is concerned.
pub enum Entry {
    /// Base-URL mode.
    Gateway,
    /// Through TLS interception: the intercepted host's provider runs when the request selects
    /// no virtual key or config.
    Intercepted(Option<Arc<RouteConfig>>),
    /// Refused by forward-proxy policy with this error.
    Refused(GatewayError),
}

/// What ingress learned about where the request came from.
pub struct Origin {
    inferred: Option<Arc<RouteConfig>>,
    intercepted: bool,
}

/// Takes the request in: forward-proxy policy, then one spelling per route — everything after
/// this (route match, policy, the forwarded path, the record) sees the canonical target only.
pub fn enter(
    session: &mut Session,
    ctx: &mut Context<'_>,
    entry: Entry,
) -> Result<Origin, Rejection> {
    let origin = match entry {
        Entry::Refused(e) => return Err(e.into()),
        Entry::Intercepted(inferred) => Origin {
            inferred,
            intercepted: true,
        },
        Entry::Gateway => Origin {
            inferred: None,
            intercepted: false,
        },
    };
    let canonical = canonical_route(session);
    // Our own errors are written in the format of the client's API.
    ctx.client =
        ClientFormat::from_path(session.req_header().uri.path()).unwrap_or(ClientFormat::OpenAi);
    canonical?;
    Ok(origin)
}

/// Rewrites the request target to its canonical form ([`path::canonicalize`]) and checks it is
/// a route the gateway serves: a 400 for a path that cannot be made canonical safely, a 404
/// `unknown_route` for the rest.
fn canonical_route(session: &mut Session) -> Result<(), Rejection> {
    if let Some(uri) = path::canonical_uri(session.req_header()).map_err(GatewayError::from)? {
        session.req_header_mut().set_uri(uri);
    }
    let head = session.req_header();
    match path::route_of(&head.method, head.uri.path()) {
        Some(_) => Ok(()),
        None => Err(Rejection::Error(GatewayError::UnknownRoute {
            method: path::bounded(head.method.as_str()),
            path: path::bounded(head.uri.path()),
        })),
    }
}

/// The virtual key and config that run the request.
pub fn resolve(
    session: &Session,
    ctx: &mut Context<'_>,
    origin: Origin,
) -> Result<Resolved, Rejection> {
    let headers = &session.req_header().headers;
    let asked = ingress::Origin {
        inferred: origin.inferred.as_ref(),
        intercepted: origin.intercepted,
        anthropic_api: session.req_header().uri.path().starts_with("/v1/messages"),
    };
    let resolved = ingress::resolve_with(ctx.snapshot, headers, asked)?;
    ctx.facts.config.clear();
    ctx.facts.config.push_str(resolved.config_label());
    ctx.facts.virtual_key = resolved.virtual_key.as_ref().map(|k| k.label.clone());
    Ok(resolved)
}
