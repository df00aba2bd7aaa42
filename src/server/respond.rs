//! Everything written to the client: our errors, relayed upstream errors, and the commit of a
//! prepared response — a whole body, or a stream pumped chunk by chunk as it arrives, with a
//! client hang-up tearing the upstream down and an upstream failure ending the stream with a
//! terminal SSE error event (never a silent truncated 200).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use pingora::prelude::Session;

use super::attempt::{failure_kind, gateway_error, Prepared, Reply, StreamPump};
use super::downstream;
use crate::error::GatewayError;
use crate::guardrails::report::{self as guard_report, Denial};
use crate::guardrails::{CommitReport, Screened};
use crate::providers::{ClientFormat, Usage};
use crate::router::FailureKind;
use crate::telemetry::AttemptRecord;
use crate::telemetry::Metrics;
use crate::upstream::AttemptError;
use crate::upstream::UpstreamClient;

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

/// A complete response as the client received it.
pub struct Captured {
    pub body: Bytes,
    /// An SSE stream (else a whole body).
    pub stream: bool,
}

/// Most of a response body kept for the access log.
pub const MAX_LOGGED_BODY: usize = 64 * 1024;

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
fn response_head(
    status: u16,
    upstream: Option<&ResponseHeader>,
    extra: &[(&'static str, String)],
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
async fn write_whole(
    session: &mut Session,
    status: u16,
    upstream: Option<&ResponseHeader>,
    extra: &[(&'static str, String)],
    body: Bytes,
) -> pingora::Result<()> {
    let mut resp = response_head(status, upstream, extra)?;
    resp.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await
}

/// Writes a successful JSON answer of our own (the feedback API's).
pub async fn write_json(
    session: &mut Session,
    body: Bytes,
    extra: &[(&'static str, String)],
) -> Finished {
    let abort = write_whole(session, 200, None, extra, body).await.is_err();
    Finished {
        status: 200,
        outcome: Outcome::Ok,
        abort,
        attempt: None,
        response_body: None,
        captured: None,
    }
}

/// Writes one of our errors.
pub async fn write_error(
    session: &mut Session,
    client: ClientFormat,
    error: &GatewayError,
    extra: &[(&'static str, String)],
) -> Finished {
    let status = error.status();
    let outcome = match error {
        GatewayError::Timeout { .. } => Outcome::Timeout,
        GatewayError::UpstreamUnreachable { .. }
        | GatewayError::UpstreamInvalid { .. }
        | GatewayError::Internal(_) => Outcome::Error,
        _ => Outcome::Rejected,
    };
    let abort = write_whole(session, status, None, extra, error.to_client_json(client))
        .await
        .is_err();
    Finished {
        attempt: None,
        response_body: None,
        captured: None,
        status,
        outcome,
        abort,
    }
}

/// Writes a guardrail's 446, with the header naming the failed checks.
pub async fn write_denial(
    session: &mut Session,
    client: ClientFormat,
    denial: &Denial,
    extra: &[(&'static str, String)],
) -> Finished {
    let mut headers = extra.to_vec();
    if let Some(h) = denial.header() {
        headers.push((guard_report::FAILED_HEADER, h));
    }
    let status = guard_report::DENIED_STATUS;
    let abort = write_whole(session, status, None, &headers, denial.body(client))
        .await
        .is_err();
    Finished {
        attempt: None,
        response_body: None,
        status,
        outcome: Outcome::Rejected,
        abort,
        captured: None,
    }
}

/// Writes the reply of the last failure: the provider's own, or ours.
pub async fn write_failure(
    session: &mut Session,
    client: ClientFormat,
    reply: Reply,
    extra: &[(&'static str, String)],
) -> Finished {
    match reply {
        Reply::Gateway(e) => write_error(session, client, &e, extra).await,
        Reply::Guardrail(d) => write_denial(session, client, &d, extra).await,
        Reply::Upstream {
            status,
            header,
            body,
        } => {
            let abort = write_whole(session, status, Some(&header), extra, body)
                .await
                .is_err();
            Finished {
                attempt: None,
                response_body: None,
                captured: None,
                status,
                outcome: Outcome::Error,
                abort,
            }
        }
    }
}

/// Commits a prepared response and, for a stream, pumps it to the end.
pub struct Commit<'a> {
    pub client: &'a UpstreamClient,
    pub metrics: &'a Metrics,
    pub upstream_wait_ns: &'a AtomicU64,
    /// Option-index path of the target, for error events.
    pub target_path: &'a str,
    pub outcome_if_ok: Outcome,
    /// `gen_ai.operation.name` of the request.
    pub operation: &'static str,
    /// Keep (up to [`MAX_LOGGED_BODY`] of) what is sent, for the access log.
    pub keep_body: bool,
    /// The config's input guardrail results (`None`: it has none).
    pub screened: Option<&'a Screened>,
    /// Capture the whole response up to this many bytes, for the response cache.
    pub capture: Option<usize>,
}

impl Commit<'_> {
    pub async fn run(
        &self,
        session: &mut Session,
        prepared: Prepared,
        extra: &[(&'static str, String)],
    ) -> Finished {
        let Prepared {
            mut response,
            held,
            is_stream,
            upstream_ended,
            labels,
            mut pump,
            mut record,
            guard,
        } = prepared;
        let mut status = response.status();
        let started = response.started();
        let mut kept = self.keep_body.then(BytesMut::new);
        // Guardrails: a failed warn check makes a 200 a 246 and is listed in a header.
        let report = CommitReport::new(self.screened, guard.as_deref());
        let mut stream_guard = guard.and_then(|g| g.stream);
        let with_guard: Vec<(&'static str, String)>;
        let extra = match report.as_ref().and_then(|r| r.header.clone()) {
            Some(h) => {
                with_guard = extra
                    .iter()
                    .cloned()
                    .chain([(guard_report::FAILED_HEADER, h)])
                    .collect();
                &with_guard[..]
            }
            None => extra,
        };
        let warned = report.as_ref().is_some_and(|r| r.warned);
        if warned && status == 200 {
            status = guard_report::WARNED_STATUS;
        }
        let held = match &report {
            Some(r) if warned && !is_stream => {
                guard_report::with_hook_results(&held, r.hook_results()).unwrap_or(held)
            }
            _ => held,
        };
        let held = match stream_guard.as_mut() {
            Some(g) => g.relay(&held),
            None => held,
        };
        if !is_stream {
            if let Some(k) = kept.as_mut() {
                k.extend_from_slice(&held[..held.len().min(MAX_LOGGED_BODY)]);
            }
            let captured = self
                .capture
                .filter(|max| held.len() <= *max)
                .map(|_| Captured {
                    body: held.clone(),
                    stream: false,
                });
            let written = write_whole(session, status, response.header(), extra, held).await;
            labels.record(self.metrics, "ok", started.elapsed());
            self.client.finish(response).await;
            record.total = started.elapsed();
            return Finished {
                attempt: Some(record),
                response_body: kept.map(BytesMut::freeze),
                captured: captured.filter(|_| written.is_ok()),
                status,
                outcome: match written {
                    Err(_) if downstream::stalled(session) => Outcome::ClientStalled,
                    _ => self.outcome_if_ok,
                },
                abort: written.is_err(),
            };
        }
        let head = response_head(status, response.header(), extra).and_then(|mut h| {
            // Without a length or chunked framing pingora would close-delimit the body and
            // the connection could not be reused (the HTTP/2 server strips this itself).
            h.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
            Ok(h)
        });
        if let Some(k) = kept.as_mut() {
            k.extend_from_slice(&held[..held.len().min(MAX_LOGGED_BODY)]);
        }
        let mut capture = Capture::new(self.capture);
        capture.push(&held);
        let committed = match head {
            Ok(head) => {
                session
                    .write_response_header(Box::new(head), false)
                    .await
                    .is_ok()
                    && session.write_response_body(Some(held), false).await.is_ok()
            }
            Err(_) => false,
        };
        let (result, finished) = if !committed {
            ("ok", client_gone(session, status))
        } else if upstream_ended {
            let abort = session.write_response_body(None, true).await.is_err();
            let mut done = self.finished(status, abort);
            done.captured = capture.finish().filter(|_| !abort);
            ("ok", done)
        } else {
            // After the commit point: forward (or translate) as it arrives.
            let (mut chunks, first_at) = (0u32, Instant::now());
            let mut last_at = first_at;
            loop {
                let wait = Instant::now();
                let next = tokio::select! {
                    chunk = response.next_chunk(false) => Some(chunk),
                    _ = session.read_body_or_idle(true) => None,
                };
                self.upstream_wait_ns
                    .fetch_add(wait.elapsed().as_nanos() as u64, Ordering::Relaxed);
                let step = match (next, pump.as_deref_mut()) {
                    // The client hung up: the upstream is torn down below (no more token spend).
                    (None, _) => Step::ClientGone,
                    (Some(Ok(Some(chunk))), None) => Step::Write(relay(&mut stream_guard, chunk)),
                    (Some(Ok(Some(chunk))), Some(pump)) => match translate_chunk(pump, &chunk) {
                        Ok(out) => Step::Write(relay(&mut stream_guard, out)),
                        Err(e) => Step::Fail(
                            FailureKind::Stream.label(),
                            pump_abort(pump, &gateway_error(self.target_path, e)),
                        ),
                    },
                    (Some(Ok(None)), None) => Step::End(None),
                    (Some(Ok(None)), Some(pump)) => {
                        let mut out = Vec::new();
                        pump.translator.finish(&mut out);
                        Step::End(Some(Bytes::from(out)))
                    }
                    (Some(Err(e)), pump) => {
                        let result = failure_kind(&e).label();
                        let error = gateway_error(self.target_path, e);
                        let event = match pump {
                            Some(pump) => pump_abort(pump, &error),
                            None => error.to_sse_event(),
                        };
                        Step::Fail(result, event)
                    }
                };
                match step {
                    Step::Write(chunk) if chunk.is_empty() => continue,
                    Step::Write(chunk) => {
                        chunks += 1;
                        capture.push(&chunk);
                        if let Some(k) = kept.as_mut() {
                            let room = MAX_LOGGED_BODY.saturating_sub(k.len());
                            k.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        }
                        last_at = Instant::now();
                        if session
                            .write_response_body(Some(chunk), false)
                            .await
                            .is_ok()
                        {
                            continue;
                        }
                        break ("ok", client_gone(session, status));
                    }
                    Step::ClientGone => break ("ok", client_gone(session, status)),
                    Step::End(last) => {
                        if chunks > 0 {
                            self.metrics
                                .genai
                                .time_per_output_chunk
                                .with_label_values(&[
                                    self.operation,
                                    record.provider_kind,
                                    &labels.model,
                                ])
                                .observe(
                                    last_at.duration_since(first_at).as_secs_f64()
                                        / f64::from(chunks),
                                );
                        }
                        let last = match stream_guard.as_mut() {
                            None => last,
                            Some(g) => {
                                let mut tail = BytesMut::new();
                                if let Some(b) = last {
                                    tail.extend_from_slice(&g.relay(&b));
                                }
                                let input: Vec<_> =
                                    report.iter().flat_map(|r| r.input.iter()).collect();
                                let (eval, end) = g.finish(&input);
                                eval.record(self.metrics, &labels.config);
                                tail.extend_from_slice(&end);
                                if let Some(k) = kept.as_mut() {
                                    let room = MAX_LOGGED_BODY.saturating_sub(k.len());
                                    k.extend_from_slice(&end[..end.len().min(room)]);
                                }
                                Some(tail.freeze())
                            }
                        };
                        let last = last.filter(|b| !b.is_empty());
                        if let Some(l) = &last {
                            capture.push(l);
                        }
                        let abort = session.write_response_body(last, true).await.is_err();
                        let mut done = self.finished(status, abort);
                        done.captured = capture.finish().filter(|_| !abort);
                        break ("ok", done);
                    }
                    Step::Fail(result, event) => {
                        let abort = session
                            .write_response_body(Some(event), true)
                            .await
                            .is_err();
                        break (
                            result,
                            Finished {
                                attempt: None,
                                response_body: None,
                                captured: None,
                                status,
                                outcome: Outcome::StreamAborted,
                                abort,
                            },
                        );
                    }
                }
            }
        };
        labels.record(self.metrics, result, started.elapsed());
        self.client.finish(response).await;
        record.total = started.elapsed();
        record.result = crate::telemetry::AttemptResult::from_label(result).unwrap_or_default();
        if let Some(pump) = &pump {
            let usage = pump.translator.usage();
            record.usage = (usage != Usage::default()).then_some(usage);
            record.response_model = pump.translator.model().map(str::to_string);
        }
        Finished {
            attempt: Some(record),
            response_body: kept.map(BytesMut::freeze),
            ..finished
        }
    }

    fn finished(&self, status: u16, abort: bool) -> Finished {
        Finished {
            attempt: None,
            response_body: None,
            captured: None,
            status,
            outcome: self.outcome_if_ok,
            abort,
        }
    }
}

/// A stream's bytes gathered for the response cache, up to a bound (past it: nothing).
struct Capture {
    buf: Option<BytesMut>,
    max: usize,
}

impl Capture {
    fn new(max: Option<usize>) -> Capture {
        Capture {
            buf: max.map(|_| BytesMut::new()),
            max: max.unwrap_or(0),
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        if let Some(buf) = self.buf.as_mut() {
            if buf.len() + chunk.len() > self.max {
                self.buf = None;
            } else {
                buf.extend_from_slice(chunk);
            }
        }
    }

    fn finish(self) -> Option<Captured> {
        self.buf.map(|b| Captured {
            body: b.freeze(),
            stream: true,
        })
    }
}

/// What the pump does with one turn of the stream.
enum Step {
    Write(Bytes),
    ClientGone,
    /// The upstream ended; the translator's closing events, if any.
    End(Option<Bytes>),
    /// The stream failed after the commit point: the result label and the terminal event.
    Fail(&'static str, Bytes),
}

/// Client-format bytes through a stream's output guard, when it has one.
fn relay(guard: &mut Option<crate::guardrails::stream::StreamGuard>, chunk: Bytes) -> Bytes {
    match guard {
        Some(g) => g.relay(&chunk),
        None => chunk,
    }
}

/// One upstream chunk through the pump: the client-format bytes of the events it completed.
fn translate_chunk(pump: &mut StreamPump, chunk: &[u8]) -> Result<Bytes, AttemptError> {
    pump.parser
        .push(chunk)
        .map_err(|e| AttemptError::Io(format!("the stream is not valid SSE: {e}")))?;
    let mut out = Vec::new();
    while let Some(event) = pump.parser.next_event() {
        pump.translator.push(&event, &mut out);
    }
    Ok(Bytes::from(out))
}

/// The terminal error event in the client's format.
fn pump_abort(pump: &mut StreamPump, error: &GatewayError) -> Bytes {
    if pump.client == ClientFormat::OpenAi {
        // The same event as an untranslated stream's (our error type and code).
        return error.to_sse_event();
    }
    let mut out = Vec::new();
    pump.translator.abort(&error.to_provider_error(), &mut out);
    Bytes::from(out)
}

/// The client went away mid-response, or stopped reading it: drop the connection.
fn client_gone(session: &Session, status: u16) -> Finished {
    let outcome = if downstream::stalled(session) {
        Outcome::ClientStalled
    } else {
        Outcome::ClientClosed
    };
    Finished {
        attempt: None,
        response_body: None,
        captured: None,
        status,
        outcome,
        abort: true,
    }
}
