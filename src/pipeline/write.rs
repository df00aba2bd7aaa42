//! How a request ended ([`Finished`], [`Outcome`]) and the low-level writing of a whole
//! response: the head (the upstream's headers minus hop-by-hop and framing, then ours) and a
//! body with its length. Rejections are written by [`super::reject`], commits by
//! [`super::commit`]; both come through here.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::Session;

use crate::telemetry::AttemptRecord;

/// How a request ended, for `switchyard_requests_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    FallbackOk,
    Error,
    Timeout,
    Rejected,
    StreamAborted,
    ClientClosed,
    /// The client stopped reading: a write made no progress for `limits.write_timeout_ms`.
    ClientStalled,
    /// Served from the response cache (no upstream attempt).
    CacheHit,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::FallbackOk => "fallback_ok",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::Rejected => "rejected",
            Outcome::StreamAborted => "stream_aborted",
            Outcome::ClientClosed => "client_closed",
            Outcome::ClientStalled => "client_stalled",
            Outcome::CacheHit => "cache_hit",
        }
    }
}

/// The end of a request: what was sent, and whether the client connection may be reused.
pub struct Finished {
    pub status: u16,
    pub outcome: Outcome,
    /// The connection is broken (client gone, or a stream cut): drop it.
    pub abort: bool,
    /// The attempt that answered, completed (`None` when no attempt answered).
    pub attempt: Option<Box<AttemptRecord>>,
    /// What the client was sent (bounded), when the commit was asked to keep it (`log_bodies`).
    pub response_body: Option<Bytes>,
    /// The whole response as sent, when the commit was asked to capture it (the response
    /// cache) and it completed.
    pub captured: Option<Captured>,
}

impl Finished {
    /// A request that ended with `status` and nothing else to report.
    pub fn new(status: u16, outcome: Outcome, abort: bool) -> Finished {
        Finished {
            status,
            outcome,
            abort,
            attempt: None,
            response_body: None,
            captured: None,
        }
    }
}

/// A complete response as the client received it.
pub struct Captured {
    pub body: Bytes,
    /// An SSE stream (else a whole body).
    pub stream: bool,
}

/// Most of a response body kept for the access log.
pub const MAX_LOGGED_BODY: usize = 64 * 1024;

/// Extra response headers: name and value.
pub type Headers = [(&'static str, String)];

/// Upstream response headers we pass to the client (hop-by-hop and framing are ours).
fn forwards_response_header(name: &str) -> bool {
    !matches!(
        name,
        "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "upgrade"
            | "set-cookie"
            | "content-encoding"
    )
}

/// The head of a response: the upstream's headers (if any) minus hop-by-hop and framing, then
/// ours.
pub fn response_head(
    status: u16,
    upstream: Option<&ResponseHeader>,
    extra: &Headers,
) -> pingora::Result<ResponseHeader> {
    let mut resp = ResponseHeader::build(status, Some(8 + extra.len()))?;
    match upstream {
        Some(up) => {
            for (name, value) in up.headers.iter() {
                if forwards_response_header(name.as_str()) {
                    resp.append_header(name.clone(), value.clone())?;
                }
            }
        }
        None => {
            resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
        }
    }
    for (name, value) in extra {
        resp.insert_header(*name, value.as_str())?;
    }
    Ok(resp)
}

/// Writes a complete response (our error, or a relayed or finished upstream one).
pub async fn write_whole(
    session: &mut Session,
    status: u16,
    upstream: Option<&ResponseHeader>,
    extra: &Headers,
    body: Bytes,
) -> pingora::Result<()> {
    let mut resp = response_head(status, upstream, extra)?;
    resp.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await
}

/// Writes a successful JSON answer of our own (the feedback API's).
pub async fn write_json(session: &mut Session, body: Bytes, extra: &Headers) -> Finished {
    let abort = write_whole(session, 200, None, extra, body).await.is_err();
    Finished::new(200, Outcome::Ok, abort)
}
