//! The body phase: the client body read once, within the size limit and the minimum rate, then
//! parsed with the head (`super::ingress::parse_with_slug`) into the request the later phases
//! work on.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora::prelude::Session;

use super::context::Context;
use super::reject::Rejection;
use crate::config::RequestLimits;
use crate::error::GatewayError;
use crate::telemetry::metrics::CloseReason;
use crate::telemetry::Metrics;

/// Reads the body (`limit` bytes at most); a body too slow is counted as a closed connection.
pub async fn read(
    session: &mut Session,
    ctx: &mut Context<'_>,
    metrics: &Metrics,
    limit: usize,
) -> Result<Bytes, Rejection> {
    match read_limited(session, limit, &ctx.snapshot.limits).await {
        Ok(body) => {
            ctx.body_read = true;
            Ok(body)
        }
        Err(e) => {
            if matches!(e, GatewayError::ClientTooSlow(_)) {
                let closed = &metrics.downstream.closed_total;
                closed.with(&CloseReason::BodyTooSlow).inc();
            }
            Err(e.into())
        }
    }
}

/// Reads the client body within the size limit and the minimum rate: byte `n` must have
/// arrived by `body_timeout + n / min_body_rate` after the first read (Apache
/// mod_reqtimeout's rule), so a body dribbled to hold the connection is cut with a 408.
async fn read_limited(
    session: &mut Session,
    limit: usize,
    limits: &RequestLimits,
) -> Result<Bytes, GatewayError> {
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
    let started = tokio::time::Instant::now();
    loop {
        let read = session.read_request_body();
        let read = match limits.min_body_rate {
            // 0: no minimum rate (only pingora's per-read timeout).
            0 => Ok(read.await),
            rate => {
                let earned = Duration::from_secs_f64(body.len() as f64 / rate as f64);
                let deadline = started + limits.body_timeout + earned;
                tokio::time::timeout_at(deadline, read).await
            }
        };
        match read {
            Ok(Ok(Some(chunk))) => {
                if body.len() + chunk.len() > limit {
                    return Err(GatewayError::BodyTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Ok(None)) => return Ok(body.freeze()),
            Ok(Err(e)) => {
                return Err(GatewayError::InvalidRequest(format!(
                    "cannot read the request body: {e}"
                )))
            }
            Err(_) => {
                return Err(GatewayError::ClientTooSlow(format!(
                    "the request body arrived slower than {} bytes/s after the first {} ms (limits.min_body_rate)",
                    limits.min_body_rate,
                    limits.body_timeout.as_millis()
                )))
            }
        }
    }
}
