//! The commit of a prepared answer: its head (a failed warn guardrail makes a 200 a 246 and is
//! named in a header), then a whole body, or a stream pumped chunk by chunk as it arrives
//! ([`pump`]) with each chunk shown to the taps ([`taps`]). The upstream response is finished
//! here, its record completed and its result counted.

mod pump;
mod taps;

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use pingora::prelude::Session;

use super::attempt::{AttemptLabels, Prepared, StreamPump};
use super::context::StallProbe;
use super::write::{response_head, write_whole, Captured, Finished, Framing, Headers, Outcome};
use crate::guardrails::report as guard_report;
use crate::guardrails::{CommitReport, Screened};
use crate::providers::Usage;
use crate::telemetry::{AttemptRecord, AttemptResult, Metrics};
use crate::upstream::UpstreamResponse;
use taps::{BodyLog, Capture, ChunkTiming, GuardTap};

/// Commits a prepared response and, for a stream, pumps it to the end.
pub struct Commit<'a> {
    pub metrics: &'a Metrics,
    pub upstream_wait_ns: &'a AtomicU64,
    /// Option-index path of the target, for error events.
    pub target_path: &'a str,
    pub outcome_if_ok: Outcome,
    /// `gen_ai.operation.name` of the request.
    pub operation: &'static str,
    /// Keep (up to a bound of) what is sent, for the access log.
    pub keep_body: bool,
    /// The config's input guardrail results (`None`: it has none).
    pub screened: Option<&'a Screened>,
    /// Capture the whole response up to this many bytes, for the response cache.
    pub capture: Option<usize>,
    pub stalled: StallProbe,
}

/// Everything that watches the answer as it is sent.
struct Taps {
    guard: GuardTap,
    capture: Capture,
    log: BodyLog,
    timing: ChunkTiming,
}

impl Taps {
    /// A chunk was sent to the client.
    fn sent(&mut self, chunk: &[u8]) {
        self.timing.push();
        self.capture.push(chunk);
        self.log.push(chunk);
    }
}

/// The attempt being committed.
struct Answer {
    response: UpstreamResponse,
    labels: AttemptLabels,
    record: Box<AttemptRecord>,
    pump: Option<Box<StreamPump>>,
    status: u16,
}

impl Commit<'_> {
    pub async fn run(
        &self,
        session: &mut Session,
        prepared: Box<Prepared>,
        extra: &Headers,
    ) -> Finished {
        let Prepared {
            response,
            held,
            is_stream,
            upstream_ended,
            labels,
            pump,
            record,
            guard,
        } = *prepared;
        let report = CommitReport::new(self.screened, guard.as_deref());
        let (status, extra) = guarded_head(response.status(), report.as_ref(), extra);
        let held = match &report {
            Some(r) if r.warned && !is_stream => {
                guard_report::with_hook_results(&held, r.hook_results()).unwrap_or(held)
            }
            _ => held,
        };
        let mut taps = Taps {
            guard: GuardTap {
                stream: guard.and_then(|g| g.stream),
                report,
            },
            capture: Capture::new(self.capture),
            log: BodyLog::new(self.keep_body),
            timing: ChunkTiming::new(),
        };
        let held = taps.guard.relay(held);
        taps.log.push(&held);
        let answer = Answer {
            response,
            labels,
            record,
            pump,
            status,
        };
        if !is_stream {
            return self.whole(session, answer, taps, &extra, held).await;
        }
        taps.capture.push(&held);
        self.stream(session, answer, taps, &extra, held, upstream_ended)
            .await
    }

    /// A whole body: written with its length, then the attempt is finished.
    async fn whole(
        &self,
        session: &mut Session,
        answer: Answer,
        taps: Taps,
        extra: &Headers,
        held: Bytes,
    ) -> Finished {
        let Answer {
            response,
            labels,
            mut record,
            status,
            ..
        } = answer;
        let started = response.started();
        let captured = self
            .capture
            .filter(|max| held.len() <= *max)
            .map(|_| Captured {
                body: held.clone(),
                stream: false,
            });
        let written = write_whole(session, status, response.header(), extra, held).await;
        labels.record(self.metrics, AttemptResult::Ok, started.elapsed());
        response.finish().await;
        record.total = started.elapsed();
        Finished {
            attempt: Some(record),
            response_body: taps.log.finish(),
            captured: captured.filter(|_| written.is_ok()),
            status,
            outcome: match written {
                Err(_) if (self.stalled)(session) => Outcome::ClientStalled,
                _ => self.outcome_if_ok,
            },
            abort: written.is_err(),
        }
    }

    /// A stream: the head and the events held so far, then the rest as it arrives.
    async fn stream(
        &self,
        session: &mut Session,
        mut answer: Answer,
        mut taps: Taps,
        extra: &Headers,
        held: Bytes,
        upstream_ended: bool,
    ) -> Finished {
        let status = answer.status;
        let started = answer.response.started();
        // A client stream that is not server-sent events (a Gemini client's JSON array).
        let content_type = answer
            .pump
            .as_ref()
            .and_then(|p| p.translator.content_type());
        let typed: Vec<(&'static str, String)>;
        let extra = match content_type {
            Some(ct) => {
                typed = extra
                    .iter()
                    .cloned()
                    .chain([("content-type", ct.to_string())])
                    .collect();
                typed.as_slice()
            }
            None => extra,
        };
        let head = response_head(status, answer.response.header(), extra, Framing::Chunked);
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
            (AttemptResult::Ok, self.client_gone(session, status))
        } else if upstream_ended {
            let abort = session.write_response_body(None, true).await.is_err();
            let mut done = Finished::new(status, self.outcome_if_ok, abort);
            done.captured = taps.capture.finish(true).filter(|_| !abort);
            (AttemptResult::Ok, done)
        } else {
            // After the commit point: forward (or translate) as it arrives.
            self.pump(session, &mut answer, &mut taps).await
        };
        let Answer {
            response,
            labels,
            mut record,
            pump,
            ..
        } = answer;
        labels.record(self.metrics, result, started.elapsed());
        response.finish().await;
        record.total = started.elapsed();
        record.result = result;
        if let Some(pump) = &pump {
            let usage = pump.translator.usage();
            record.usage = (usage != Usage::default()).then_some(usage);
            record.response_model = pump.translator.model().map(str::to_string);
        }
        Finished {
            attempt: Some(record),
            response_body: taps.log.finish(),
            ..finished
        }
    }

    /// The client went away mid-response, or stopped reading it: drop the connection.
    fn client_gone(&self, session: &Session, status: u16) -> Finished {
        let outcome = if (self.stalled)(session) {
            Outcome::ClientStalled
        } else {
            Outcome::ClientClosed
        };
        Finished::new(status, outcome, true)
    }
}

/// The status and headers of a committed answer: a failed warn check makes a 200 a 246 and is
/// listed in a header.
fn guarded_head<'h>(
    status: u16,
    report: Option<&CommitReport>,
    extra: &'h Headers,
) -> (u16, Cow<'h, Headers>) {
    let Some(report) = report else {
        return (status, Cow::Borrowed(extra));
    };
    let status = match report.warned && status == 200 {
        true => guard_report::WARNED_STATUS,
        false => status,
    };
    match &report.header {
        Some(h) => {
            let mut headers = extra.to_vec();
            headers.push((guard_report::FAILED_HEADER, h.clone()));
            (status, Cow::Owned(headers))
        }
        None => (status, Cow::Borrowed(extra)),
    }
}
