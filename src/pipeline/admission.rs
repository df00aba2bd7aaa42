//! Admission: what must hold before anything is spent on a request — the presented virtual
//! key allows the model, the config's input guardrails pass (or redact), and the key's limits
//! (rate, tokens, spend) admit it, reserving what it may use.

use pingora::prelude::Session;

use super::attempt::ClientRequest;
use super::context::Context;
use super::reject::Rejection;
use super::write::MAX_LOGGED_BODY;
use crate::error::GatewayError;
use crate::governance::{Governance, RequestView};
use crate::guardrails::{self, report::Denial, Screened};
use crate::ingress::Resolved;
use crate::telemetry::Metrics;

/// The presented virtual key's model allowlist (each target's key is checked per attempt).
pub fn allowlist(resolved: &Resolved, request: &ClientRequest) -> Result<(), Rejection> {
    match (&resolved.virtual_key, request.model()) {
        (Some(key), Some(model)) if !key.allows_model(model) => {
            Err(Rejection::Error(GatewayError::ModelNotAllowed {
                model: model.chars().take(128).collect(),
                virtual_key: key.name.clone(),
            }))
        }
        _ => Ok(()),
    }
}

/// The config's input guardrails, once, before routing: a denial is a 446, a redaction
/// changes the body every target gets.
pub fn screen_input(
    ctx: &Context<'_>,
    metrics: &Metrics,
    resolved: &Resolved,
    request: &mut ClientRequest,
) -> Result<Option<Screened>, Rejection> {
    let format = request.format;
    let (Some(set), Some(json)) = (
        &resolved.route.root.settings.input_guardrails,
        request.json.as_mut(),
    ) else {
        return Ok(None);
    };
    let (eval, body) = guardrails::text::screen_request(set, format, json);
    eval.record(metrics, &ctx.facts.config);
    if eval.denied() {
        return Err(Rejection::Denied(Box::new(Denial {
            input: vec![eval],
            output: None,
        })));
    }
    if let Some(body) = body {
        request.body = body;
    }
    Ok(Some(Screened {
        applied: set.clone(),
        eval,
    }))
}

/// The key's limits: a reservation on admission (its `x-ratelimit-*` headers go on every
/// answer from here on), a 429 with its headers when a limit is reached.
pub async fn govern(
    ctx: &mut Context<'_>,
    governance: &Governance,
    resolved: &Resolved,
    request: &ClientRequest,
) -> Result<(), Rejection> {
    let view = RequestView {
        body: &request.body,
        json: request.json.as_ref(),
        model: request.model(),
        operation: request.operation(),
    };
    match governance.admit(ctx.snapshot, resolved, view).await {
        Ok(ticket) => {
            if let Some(t) = &ticket {
                ctx.headers.extend_from_slice(t.headers());
            }
            ctx.governed = ticket;
            Ok(())
        }
        Err(rejected) => Err(Rejection::Limited {
            error: rejected.error,
            headers: rejected.headers,
        }),
    }
}

/// What the record keeps of an admitted request: model, stream, metadata, and the body when
/// the access log keeps bodies (`log_bodies`, unless the request opts out).
pub fn note(session: &Session, ctx: &mut Context<'_>, request: &ClientRequest) {
    ctx.facts.model = request.model.clone();
    ctx.facts.stream = request.stream;
    ctx.facts.metadata = request.metadata.clone();
    ctx.keep_body = ctx.snapshot.telemetry.log_bodies && !opts_out_of_logging(session);
    if ctx.keep_body {
        let b = &request.body;
        ctx.facts.request_body = Some(b.slice(..b.len().min(MAX_LOGGED_BODY)));
    }
}

/// `x-switchyard-log: off`, or Portkey's `x-portkey-disable-logging: true`: no prompt or
/// completion text of this request is logged.
fn opts_out_of_logging(session: &Session) -> bool {
    let headers = &session.req_header().headers;
    let is = |name: &str, value: &[u8]| {
        headers
            .get(name)
            .is_some_and(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(value))
    };
    is("x-switchyard-log", b"off") || is("x-portkey-disable-logging", b"true")
}
