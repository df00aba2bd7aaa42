//! What watches a committed answer on its way to the client, one small type each: the output
//! guardrails of a stream ([`GuardTap`]), the response cache's copy ([`Capture`]), the access
//! log's bounded copy ([`BodyLog`]), and the per-chunk timing ([`ChunkTiming`]).

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::super::write::{Captured, MAX_LOGGED_BODY};
use crate::guardrails::stream::StreamGuard;
use crate::guardrails::CommitReport;
use crate::telemetry::Metrics;

/// A stream's output guardrails: every chunk passes through them (a redaction changes it),
/// and the end adds their verdict.
pub struct GuardTap {
    pub stream: Option<StreamGuard>,
    /// The results so far (input checks, a whole body's output check).
    pub report: Option<CommitReport>,
}

impl GuardTap {
    pub fn relay(&mut self, chunk: Bytes) -> Bytes {
        match self.stream.as_mut() {
            Some(g) => g.relay(&chunk),
            None => chunk,
        }
    }

    /// The stream's tail: the translator's last events through the guard, then the guard's
    /// closing events (its verdict), counted under `config`.
    pub fn finish(
        &mut self,
        last: Option<Bytes>,
        metrics: &Metrics,
        config: &str,
    ) -> Option<Bytes> {
        let Some(g) = self.stream.as_mut() else {
            return last;
        };
        let mut tail = BytesMut::new();
        if let Some(b) = last {
            tail.extend_from_slice(&g.relay(&b));
        }
        let input: Vec<_> = self.report.iter().flat_map(|r| r.input.iter()).collect();
        let (eval, end) = g.finish(&input);
        eval.record(metrics, config);
        tail.extend_from_slice(&end);
        Some(tail.freeze())
    }
}

/// A stream's bytes gathered for the response cache, up to a bound (past it: nothing).
pub struct Capture {
    buf: Option<BytesMut>,
    max: usize,
}

impl Capture {
    pub fn new(max: Option<usize>) -> Capture {
        Capture {
            buf: max.map(|_| BytesMut::new()),
            max: max.unwrap_or(0),
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        if let Some(buf) = self.buf.as_mut() {
            if buf.len() + chunk.len() > self.max {
                self.buf = None;
            } else {
                buf.extend_from_slice(chunk);
            }
        }
    }

    pub fn finish(&mut self, stream: bool) -> Option<Captured> {
        self.buf.take().map(|b| Captured {
            body: b.freeze(),
            stream,
        })
    }
}

/// What the client was sent, up to [`MAX_LOGGED_BODY`], when the access log keeps bodies.
pub struct BodyLog(Option<BytesMut>);

impl BodyLog {
    pub fn new(keep: bool) -> BodyLog {
        BodyLog(keep.then(BytesMut::new))
    }

    pub fn push(&mut self, chunk: &[u8]) {
        if let Some(k) = self.0.as_mut() {
            let room = MAX_LOGGED_BODY.saturating_sub(k.len());
            k.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    }

    pub fn finish(self) -> Option<Bytes> {
        self.0.map(BytesMut::freeze)
    }
}

/// The gaps between a stream's chunks after the commit, for
/// `gen_ai.server.time_per_output_chunk`.
pub struct ChunkTiming {
    chunks: u32,
    first_at: Instant,
    last_at: Instant,
}

impl ChunkTiming {
    pub fn new() -> ChunkTiming {
        let now = Instant::now();
        ChunkTiming {
            chunks: 0,
            first_at: now,
            last_at: now,
        }
    }

    pub fn push(&mut self) {
        self.chunks += 1;
        self.last_at = Instant::now();
    }

    /// The mean gap, when any chunk followed the commit.
    pub fn mean_secs(&self) -> Option<f64> {
        (self.chunks > 0).then(|| {
            self.last_at.duration_since(self.first_at).as_secs_f64() / f64::from(self.chunks)
        })
    }
}
