//! The one place a rejection becomes the client's response: any phase that stops a request
//! returns a [`Rejection`], and [`respond`] writes it — status, body in the client's wire
//! format, the headers every answer carries, and keep-alive (a connection whose request body
//! was not read cannot be reused). Metrics and the access-log line follow for every request in
//! [`super::record`].

use pingora::prelude::Session;

use super::attempt::Reply;
use super::context::Context;
use super::write::{write_whole, Finished, Outcome};
use crate::error::GatewayError;
use crate::guardrails::report::{self as guard_report, Denial};
use crate::providers::ClientFormat;

/// Why a phase stopped a request.
#[derive(Debug)]
pub enum Rejection {
    /// Our error.
    Error(GatewayError),
    /// Our error with headers of its own (a limit's `x-ratelimit-*` and `retry-after`).
    Limited {
        error: GatewayError,
        headers: Vec<(&'static str, String)>,
    },
    /// The config's input guardrails denied the request (446).
    Denied(Box<Denial>),
    /// Routing ran out of targets: the last failure's reply, in `format`, with the headers
    /// naming the route taken.
    Failed {
        reply: Reply,
        format: ClientFormat,
        headers: Vec<(&'static str, String)>,
    },
}

impl From<GatewayError> for Rejection {
    fn from(error: GatewayError) -> Rejection {
        Rejection::Error(error)
    }
}

/// Writes a rejection.
pub async fn respond(session: &mut Session, ctx: &Context<'_>, rejection: Rejection) -> Finished {
    if !ctx.body_read {
        // The rest of the request is unread: the connection cannot be reused.
        session.set_keepalive(None);
    }
    let mut headers = ctx.headers.clone();
    match rejection {
        Rejection::Error(e) => write_error(session, ctx.client, &e, &headers).await,
        Rejection::Limited {
            error,
            headers: own,
        } => {
            headers.extend(own);
            write_error(session, ctx.client, &error, &headers).await
        }
        Rejection::Denied(denial) => write_denial(session, ctx.client, &denial, headers).await,
        Rejection::Failed {
            reply,
            format,
            headers: own,
        } => {
            headers.extend(own);
            write_failure(session, format, reply, headers).await
        }
    }
}

/// Writes an error for a request the pipeline never took (forward-proxy mode's plain-HTTP
/// forwarding failed before it started), and closes the connection.
pub async fn refuse(session: &mut Session, error: &GatewayError) -> Finished {
    session.set_keepalive(None);
    write_error(session, ClientFormat::OpenAi, error, &[]).await
}

/// Writes one of our errors.
async fn write_error(
    session: &mut Session,
    client: ClientFormat,
    error: &GatewayError,
    headers: &[(&'static str, String)],
) -> Finished {
    let status = error.status();
    let outcome = match error {
        GatewayError::Timeout { .. } => Outcome::Timeout,
        GatewayError::UpstreamUnreachable { .. }
        | GatewayError::UpstreamInvalid { .. }
        | GatewayError::Internal(_) => Outcome::Error,
        _ => Outcome::Rejected,
    };
    let abort = write_whole(session, status, None, headers, error.to_client_json(client))
        .await
        .is_err();
    Finished::new(status, outcome, abort)
}

/// Writes a guardrail's 446, with the header naming the failed checks.
async fn write_denial(
    session: &mut Session,
    client: ClientFormat,
    denial: &Denial,
    mut headers: Vec<(&'static str, String)>,
) -> Finished {
    if let Some(h) = denial.header() {
        headers.push((guard_report::FAILED_HEADER, h));
    }
    let status = guard_report::DENIED_STATUS;
    let abort = write_whole(session, status, None, &headers, denial.body(client))
        .await
        .is_err();
    Finished::new(status, Outcome::Rejected, abort)
}

/// Writes the reply of the last failure: the provider's own, or ours.
async fn write_failure(
    session: &mut Session,
    client: ClientFormat,
    reply: Reply,
    headers: Vec<(&'static str, String)>,
) -> Finished {
    match reply {
        Reply::Gateway(e) => write_error(session, client, &e, &headers).await,
        Reply::Guardrail(d) => write_denial(session, client, &d, headers).await,
        Reply::Upstream {
            status,
            header,
            body,
        } => {
            let abort = write_whole(session, status, Some(&header), &headers, body)
                .await
                .is_err();
            Finished::new(status, Outcome::Error, abort)
        }
    }
}
