//! A stream after the commit point: each upstream chunk forwarded (or translated) as it
//! arrives, a client hang-up tearing the upstream down (no more token spend), and an upstream
//! failure ending the stream with a terminal SSE error event — never a silent truncated 200.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use pingora::prelude::Session;

use super::{Answer, Commit, Taps};
use crate::error::GatewayError;
use crate::pipeline::attempt::{failure_kind, gateway_error, StreamPump};
use crate::pipeline::write::{Finished, Outcome};
use crate::providers::ClientFormat;
use crate::router::FailureKind;
use crate::telemetry::metrics::GenAiLabels;
use crate::telemetry::AttemptResult;
use crate::upstream::AttemptError;

/// What the pump does with one turn of the stream.
enum Step {
    Write(Bytes),
    ClientGone,
    /// The upstream ended; the translator's closing events, if any.
    End(Option<Bytes>),
    /// The stream failed after the commit point: the result label and the terminal event.
    Fail(AttemptResult, Bytes),
}

impl Commit<'_> {
    /// Pumps the stream to its end: the attempt's result label and how the request ended.
    pub(super) async fn pump(
        &self,
        session: &mut Session,
        answer: &mut Answer,
        taps: &mut Taps,
    ) -> (AttemptResult, Finished) {
        let status = answer.status;
        taps.timing = super::taps::ChunkTiming::new();
        loop {
            match self.next_step(session, answer).await {
                Step::Write(chunk) => {
                    let chunk = taps.guard.relay(chunk);
                    if chunk.is_empty() {
                        continue;
                    }
                    taps.sent(&chunk);
                    if session
                        .write_response_body(Some(chunk), false)
                        .await
                        .is_err()
                    {
                        return (AttemptResult::Ok, self.client_gone(session, status));
                    }
                }
                Step::ClientGone => return (AttemptResult::Ok, self.client_gone(session, status)),
                Step::End(last) => {
                    return (
                        AttemptResult::Ok,
                        self.end(session, answer, taps, last).await,
                    )
                }
                Step::Fail(result, event) => {
                    let abort = session
                        .write_response_body(Some(event), true)
                        .await
                        .is_err();
                    return (result, Finished::new(status, Outcome::StreamAborted, abort));
                }
            }
        }
    }

    /// The next upstream chunk (translated), or the client's hang-up.
    async fn next_step(&self, session: &mut Session, answer: &mut Answer) -> Step {
        let wait = Instant::now();
        let next = tokio::select! {
            chunk = answer.response.next_chunk(false) => Some(chunk),
            _ = session.read_body_or_idle(true) => None,
        };
        self.upstream_wait_ns
            .fetch_add(wait.elapsed().as_nanos() as u64, Ordering::Relaxed);
        match (next, answer.pump.as_deref_mut()) {
            // The client hung up: the upstream is torn down by the caller.
            (None, _) => Step::ClientGone,
            (Some(Ok(Some(chunk))), None) => Step::Write(chunk),
            (Some(Ok(Some(chunk))), Some(pump)) => match translate_chunk(pump, &chunk) {
                Ok(out) => Step::Write(out),
                Err(e) => Step::Fail(
                    FailureKind::Stream.result(),
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
                let result = failure_kind(&e).result();
                let error = gateway_error(self.target_path, e);
                let event = match pump {
                    Some(pump) => pump_abort(pump, &error),
                    None => error.to_sse_event(),
                };
                Step::Fail(result, event)
            }
        }
    }

    /// The upstream ended: the chunk timing, the guard's verdict, the last bytes.
    async fn end(
        &self,
        session: &mut Session,
        answer: &Answer,
        taps: &mut Taps,
        last: Option<Bytes>,
    ) -> Finished {
        if let Some(mean) = taps.timing.mean_secs() {
            let labels = GenAiLabels {
                operation: self.operation,
                provider: answer.record.provider_kind,
                model: &answer.labels.model,
            };
            self.metrics
                .genai
                .time_per_output_chunk
                .with(&labels)
                .observe(mean);
        }
        let last = taps
            .guard
            .finish(last, self.metrics, &answer.labels.config)
            .filter(|b| !b.is_empty());
        if let Some(l) = &last {
            taps.capture.push(l);
            taps.log.push(l);
        }
        let abort = session.write_response_body(last, true).await.is_err();
        let mut done = Finished::new(answer.status, self.outcome_if_ok, abort);
        done.captured = taps.capture.finish(true).filter(|_| !abort);
        done
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
