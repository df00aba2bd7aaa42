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

/// How a response body is framed on HTTP/1.
#[derive(Debug, Clone, Copy)]
pub enum Framing {
    /// `content-length`.
    Length(usize),
    /// `transfer-encoding: chunked` (a stream: without a length or chunked framing pingora
    /// would close-delimit the body and the connection could not be reused; the HTTP/2
    /// server strips it itself).
    Chunked,
}

/// The names of the headers nearly every answer carries, parsed once (at compile time).
static KNOWN_NAMES: [http::HeaderName; 10] = {
    use http::HeaderName as N;
    [
        N::from_static("x-portkey-trace-id"),
        N::from_static("x-switchyard-trace-id"),
        N::from_static("x-portkey-last-used-option-index"),
        N::from_static("x-switchyard-last-used-option-index"),
        N::from_static("x-portkey-provider"),
        N::from_static("x-switchyard-target"),
        N::from_static("x-portkey-retry-attempt-count"),
        N::from_static("x-switchyard-retry-attempt-count"),
        N::from_static("x-portkey-cache-status"),
        N::from_static("x-switchyard-cache-status"),
    ]
};

/// A header name of ours: a known one without parsing or allocating, else parsed.
fn header_name(name: &str) -> pingora::Result<http::HeaderName> {
    match KNOWN_NAMES.iter().find(|k| k.as_str() == name) {
        Some(known) => Ok(known.clone()),
        None => http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid("invalid header name")),
    }
}

fn invalid(what: &'static str) -> Box<pingora::Error> {
    pingora::Error::explain(pingora::ErrorType::InvalidHTTPHeader, what)
}

/// The head of a response: the upstream's headers (if any) minus hop-by-hop and framing, then
/// ours, then the framing.
///
/// Built as `http` parts, without pingora's case-preserving name map: every name is written
/// as pingora writes a name it has no case for (standard ones title-cased, ours as they are,
/// lower case) — what the map held anyway — and each insert skips a second map and a second
/// parse of the name.
pub fn response_head(
    status: u16,
    upstream: Option<&ResponseHeader>,
    extra: &Headers,
    framing: Framing,
) -> pingora::Result<ResponseHeader> {
    use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
    let mut parts = http::Response::new(()).into_parts().0;
    parts.status = http::StatusCode::from_u16(status).map_err(|_| invalid("invalid status"))?;
    // Exactly what is inserted: the map is kept (by pingora) for the rest of the request, and
    // its table is sized to the next power of two of 4/3 of this.
    let forwarded = upstream.map_or(1, |up| {
        up.headers
            .keys()
            .filter(|n| forwards_response_header(n.as_str()))
            .count()
    });
    let mut headers = HeaderMap::with_capacity(forwarded + extra.len() + 1);
    match upstream {
        Some(up) => {
            for (name, value) in up.headers.iter() {
                if forwards_response_header(name.as_str()) {
                    headers.append(name.clone(), value.clone());
                }
            }
        }
        None => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
    }
    for (name, value) in extra {
        let name = header_name(name)?;
        let value = HeaderValue::from_str(value).map_err(|_| invalid("invalid header value"))?;
        headers.insert(name, value);
    }
    match framing {
        Framing::Length(len) => {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        }
        Framing::Chunked => {
            headers.insert(
                http::header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }
    }
    parts.headers = headers;
    Ok(ResponseHeader::from(parts))
}

/// Writes a complete response (our error, or a relayed or finished upstream one).
pub async fn write_whole(
    session: &mut Session,
    status: u16,
    upstream: Option<&ResponseHeader>,
    extra: &Headers,
    body: Bytes,
) -> pingora::Result<()> {
    let resp = response_head(status, upstream, extra, Framing::Length(body.len()))?;
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await
}

/// Writes a successful JSON answer of our own (the feedback API's).
pub async fn write_json(session: &mut Session, body: Bytes, extra: &Headers) -> Finished {
    let abort = write_whole(session, 200, None, extra, body).await.is_err();
    Finished::new(200, Outcome::Ok, abort)
}
