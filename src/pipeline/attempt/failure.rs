//! How an attempt fails: the routing kind of each failure (what the router retries or falls
//! back on) and the [`Reply`] the client gets if it is the last one — the provider's own
//! error (translated into the client's format), or ours.

use bytes::Bytes;
use pingora::http::ResponseHeader;

use crate::config::Target;
use crate::error::GatewayError;
use crate::guardrails::report::Denial;
use crate::providers::{translate_error, TranslateError};
use crate::router::{Failure, FailureKind};
use crate::upstream::{AttemptError, UpstreamResponse};

use super::translation::Translation;

/// What the client gets if a failure is the last one.
#[derive(Debug)]
pub enum Reply {
    /// The provider's own status, headers and body.
    Upstream {
        status: u16,
        header: Box<ResponseHeader>,
        body: Bytes,
    },
    /// Our error.
    Gateway(GatewayError),
    /// A guardrail stopped the request or the answer (446).
    Guardrail(Box<Denial>),
}

pub fn failure(kind: FailureKind, reply: Reply) -> Failure<Reply> {
    Failure {
        kind,
        retry_after: None,
        detail: reply,
        retries: 0,
    }
}

/// The failure of an attempt whose request or response could not be translated.
pub fn translate_failure(leaf: &Target, e: TranslateError) -> Failure<Reply> {
    match e {
        // The client's own mistake: no other target would do better.
        TranslateError::InvalidRequest(m) => failure(
            FailureKind::NoRoute,
            Reply::Gateway(GatewayError::InvalidRequest(m)),
        ),
        // This target's format cannot carry the request; one of another format may.
        TranslateError::Unsupported { .. } => failure(
            FailureKind::Status(400),
            Reply::Gateway(GatewayError::InvalidRequest(format!(
                "target {} cannot serve this request: {e}",
                leaf.path
            ))),
        ),
        TranslateError::InvalidResponse { .. } => failure(
            FailureKind::Stream,
            Reply::Gateway(GatewayError::UpstreamInvalid {
                target: leaf.path.clone(),
                reason: e.to_string(),
            }),
        ),
    }
}

/// The routing kind of a transport failure.
pub fn failure_kind(error: &AttemptError) -> FailureKind {
    match error {
        AttemptError::Timeout { phase, .. } => FailureKind::Timeout(*phase),
        AttemptError::Resolve { .. } | AttemptError::Connect(_) | AttemptError::Trust(_) => {
            FailureKind::Connect
        }
        AttemptError::Io(_) | AttemptError::TooLarge { .. } => FailureKind::Stream,
    }
}

/// Our error for a transport failure on `target`.
pub fn gateway_error(target: &str, error: AttemptError) -> GatewayError {
    match error {
        AttemptError::Timeout { phase, budget } => GatewayError::Timeout {
            target: target.to_string(),
            phase: phase.as_str(),
            ms: budget.as_millis(),
        },
        AttemptError::TooLarge { .. } => GatewayError::UpstreamInvalid {
            target: target.to_string(),
            reason: error.to_string(),
        },
        other => {
            // The detail names addresses and SNI: the log gets it, the client a fixed phrase.
            tracing::warn!(%target, error = %other, "upstream attempt failed");
            GatewayError::UpstreamUnreachable {
                target: target.to_string(),
                reason: other.client_reason(),
            }
        }
    }
}

/// The failure of a response with a non-2xx status, its body read (bounded by `limit`) so the
/// connection can be reused and the client can get the provider's own error.
pub async fn status_failure(
    leaf: &Target,
    response: UpstreamResponse,
    translation: Option<Translation<'_>>,
    body: Result<Bytes, AttemptError>,
) -> Failure<Reply> {
    let status = response.status();
    let header = response.header().cloned();
    let retry_after = header
        .as_ref()
        .and_then(|h| crate::router::retry::parse_retry_after(&h.headers));
    // Read to the end (or failed): back to the pool, or closed.
    response.finish().await;
    let reply = match (body, header) {
        (Ok(body), Some(header)) => {
            let (status, body) = match translation {
                Some(t) if t.crosses() => translate_error(t.upstream, t.client, status, body),
                _ => (status, body),
            };
            Reply::Upstream {
                status,
                header: Box::new(header),
                body,
            }
        }
        (Err(e), _) => Reply::Gateway(gateway_error(&leaf.path, e)),
        (Ok(_), None) => Reply::Gateway(GatewayError::UpstreamInvalid {
            target: leaf.path.clone(),
            reason: "no response header".into(),
        }),
    };
    Failure {
        kind: FailureKind::Status(status),
        retry_after,
        detail: reply,
        retries: 0,
    }
}
