//! Ingress: how the server hands a request over ([`Entry`]), the request target made
//! canonical and matched to a route, and the virtual key and config that will run it.

use std::sync::Arc;

use pingora::prelude::Session;

use super::attempt::ClientRequest;
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
    let canonical = canonical_route(session, ctx);
    // Our own errors are written in the format of the client's API.
    ctx.client = ClientFormat::for_errors(session.req_header().uri.path());
    canonical?;
    Ok(origin)
}

/// Rewrites the request target to its canonical form ([`path::canonicalize`]), an Azure OpenAI
/// path to the route it means ([`path::azure_rewrite`]), moves a Gemini `key=` query parameter
/// into `x-goog-api-key`, and checks it is a route the gateway serves: a 400 for a path that
/// cannot be made canonical safely, a 404 `unknown_route` for the rest.
fn canonical_route(session: &mut Session, ctx: &mut Context<'_>) -> Result<(), Rejection> {
    if let Some(uri) = path::canonical_uri(session.req_header()).map_err(GatewayError::from)? {
        session.req_header_mut().set_uri(uri);
    }
    let head = session.req_header();
    let rewritten = path::azure_rewrite(head.uri.path(), head.uri.query());
    if let Some((target, deployment)) = rewritten {
        let uri = http::Uri::try_from(target)
            .map_err(|_| GatewayError::from(crate::vocab::error::PathError::Unparseable))?;
        session.req_header_mut().set_uri(uri);
        ctx.deployment = deployment;
    }
    if crate::vocab::gemini_route(session.req_header().uri.path()).is_some() {
        gemini_query_key(session)?;
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

/// A Gemini client's `?key=…` (the SDKs' and curl's way of sending the API key): taken out of
/// the query (it is never forwarded, logged or recorded) and, unless a credential header came
/// too, sent on as `x-goog-api-key`, which ingress reads like any other credential.
fn gemini_query_key(session: &mut Session) -> Result<(), Rejection> {
    let head = session.req_header();
    let Some(query) = head.uri.query() else {
        return Ok(());
    };
    let (keys, kept): (Vec<&str>, Vec<&str>) = query
        .split('&')
        .filter(|p| !p.is_empty())
        .partition(|p| p.starts_with("key="));
    let Some(key) = keys.first().map(|k| &k["key=".len()..]) else {
        return Ok(());
    };
    let key: String = form_urlencoded::parse(format!("k={key}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mut target = head.uri.path().to_string();
    if !kept.is_empty() {
        target.push('?');
        target.push_str(&kept.join("&"));
    }
    let uri = http::Uri::try_from(target)
        .map_err(|_| GatewayError::from(crate::vocab::error::PathError::Unparseable))?;
    let has_credential = crate::vocab::headers::caller_credential(&head.headers).is_some();
    let req = session.req_header_mut();
    req.set_uri(uri);
    if !has_credential && !key.is_empty() {
        req.insert_header("x-goog-api-key", key).map_err(|_| {
            GatewayError::InvalidRequest("the key= parameter is not a valid header value".into())
        })?;
    }
    Ok(())
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

/// The body parsed for the route that runs, after Portkey's model catalog spelling
/// `"model": "@<slug>/<model>"` had its say: the slug routes to the virtual key or provider id
/// `<slug>` (`ingress::slug_route`) and `<model>` is sent. A request that selected nothing
/// (`unresolved`) may be routed this way; otherwise its 401 stands. A config header already
/// chose the route, so both together are refused rather than one silently winning.
pub fn parse_with_slug(
    session: &Session,
    ctx: &mut Context<'_>,
    resolved: Result<Resolved, Rejection>,
    body: bytes::Bytes,
) -> Result<(Resolved, ClientRequest), Rejection> {
    let needs_body = resolved.as_ref().is_ok_and(|r| r.route.needs_body);
    let head = session.req_header();
    let path_and_query = head
        .uri
        .path_and_query()
        .map_or_else(|| head.uri.path().to_string(), |p| p.as_str().to_string());
    let mut request = ClientRequest::parse(head, path_and_query, body, needs_body)?;
    // Azure OpenAI: the deployment of the path is the model asked for.
    if let Some(deployment) = &ctx.deployment {
        if request.model.as_deref() != Some(deployment.as_str()) {
            request = request.with_model(deployment)?;
        }
    }
    let Some(rest) = request.model.as_deref().and_then(|m| m.strip_prefix('@')) else {
        return Ok((resolved?, request));
    };
    let invalid = |m: &str| Rejection::Error(GatewayError::InvalidRequest(m.to_string()));
    let Some((slug, model)) = rest
        .split_once('/')
        .filter(|(s, m)| !s.is_empty() && !m.is_empty())
    else {
        return Err(invalid(
            "a model starting with @ is Portkey's catalog spelling: @<virtual key or provider id>/<model>",
        ));
    };
    let headers = &head.headers;
    if crate::vocab::headers::CONFIG
        .iter()
        .any(|h| headers.contains_key(*h))
    {
        return Err(invalid(
            "the model's @<slug> and the config header both choose the route: send one of them",
        ));
    }
    // The slug may be a mistyped virtual key: never echoed.
    let Some(chosen) = ingress::slug_route(ctx.snapshot, headers, slug)? else {
        return Err(invalid(
            "the @<slug> of the model names no virtual key, nor (with passthrough on) a provider id",
        ));
    };
    let request = request.with_model(model)?;
    ctx.facts.config.clear();
    ctx.facts.config.push_str(chosen.config_label());
    ctx.facts.virtual_key = chosen.virtual_key.as_ref().map(|k| k.label.clone());
    Ok((chosen, request))
}

/// Whether the request may go on to its body although resolution refused it: only a request
/// that selected nothing (its model may still name a route).
pub fn may_route_by_model(refused: &Rejection) -> bool {
    matches!(refused, Rejection::Error(GatewayError::NoRoute(_)))
}
