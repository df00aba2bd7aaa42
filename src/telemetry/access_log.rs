//! The access log: one JSON line per request, written by a thread of its own from a bounded
//! queue. The request path only hands over its finished [`RequestRecord`]; when the queue is
//! full the line is dropped and counted — logging never waits.
//!
//! A line carries ids, names, timings, tokens, cost, cache status and metadata; prompt and
//! completion text only when the record has them (`log_bodies`, and not `x-switchyard-log:
//! off`). Records never hold a credential, so there is nothing here to redact.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};

use super::record::{AttemptRecord, ClientSpan, RequestRecord};
pub use crate::config::LogTarget;
use crate::providers::Usage;

/// The sending side, shared by every request.
pub struct AccessLog {
    tx: Option<SyncSender<Arc<RequestRecord>>>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Starts the writer thread (none for `Off`). A file that cannot be opened falls back to
    /// stderr with a warning: losing the log is worse than writing it elsewhere.
    pub fn start(target: LogTarget, buffer_lines: usize) -> AccessLog {
        let dropped = Arc::new(AtomicU64::new(0));
        if target == LogTarget::Off {
            return AccessLog { tx: None, dropped };
        }
        let (tx, rx) = sync_channel::<Arc<RequestRecord>>(buffer_lines.max(1));
        let out: Box<dyn Write + Send> = match &target {
            LogTarget::Stdout => Box::new(std::io::stdout()),
            LogTarget::Stderr | LogTarget::Off => Box::new(std::io::stderr()),
            LogTarget::File(path) => {
                match OpenOptions::new().create(true).append(true).open(path) {
                    Ok(f) => Box::new(f),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot open the access log; writing it to stderr");
                        Box::new(std::io::stderr())
                    }
                }
            }
        };
        Self::with_writer(out, tx, rx, dropped)
    }

    fn with_writer(
        out: Box<dyn Write + Send>,
        tx: SyncSender<Arc<RequestRecord>>,
        rx: Receiver<Arc<RequestRecord>>,
        dropped: Arc<AtomicU64>,
    ) -> AccessLog {
        let spawned = std::thread::Builder::new()
            .name("switchyard-access-log".into())
            .spawn(move || write_lines(rx, out));
        match spawned {
            Ok(_) => AccessLog {
                tx: Some(tx),
                dropped,
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the access log writer; access log off");
                AccessLog { tx: None, dropped }
            }
        }
    }

    /// Queues the record's line; never blocks. Returns `false` if it was dropped.
    pub fn log(&self, record: Arc<RequestRecord>) -> bool {
        let Some(tx) = &self.tx else {
            return true;
        };
        match tx.try_send(record) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// How long the writer lets lines gather after waking: under load a send finds the writer
/// asleep here, not blocked in `recv`, so it wakes no one — one wake-up per batch, not per line.
const BATCH_WINDOW: Duration = Duration::from_millis(20);

fn write_lines(rx: Receiver<Arc<RequestRecord>>, out: Box<dyn Write + Send>) {
    let mut out = BufWriter::new(out);
    while let Ok(first) = rx.recv() {
        std::thread::sleep(BATCH_WINDOW);
        for record in std::iter::once(first).chain(rx.try_iter()) {
            let mut line = to_line(&record);
            line.push(b'\n');
            let _ = out.write_all(&line);
        }
        let _ = out.flush();
    }
    let _ = out.flush();
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[derive(Serialize)]
struct Tokens {
    input: u64,
    output: u64,
    cached: u64,
    reasoning: u64,
}

impl From<&Usage> for Tokens {
    fn from(u: &Usage) -> Tokens {
        Tokens {
            input: u.input_tokens,
            output: u.output_tokens,
            cached: u.cached_tokens,
            reasoning: u.reasoning_tokens,
        }
    }
}

/// One attempt as logged (borrowed from the record: no tree is built).
#[derive(Serialize)]
struct AttemptLine<'a> {
    target: &'a str,
    provider: &'a str,
    model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_model: Option<&'a str>,
    status: Option<u16>,
    result: &'a str,
    span_id: String,
    connect_ms: Option<f64>,
    headers_ms: Option<f64>,
    first_token_ms: Option<f64>,
    total_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<Tokens>,
}

impl<'a> From<&'a AttemptRecord> for AttemptLine<'a> {
    fn from(a: &'a AttemptRecord) -> AttemptLine<'a> {
        AttemptLine {
            target: &a.target,
            provider: &a.provider,
            model: a.request_model.as_deref(),
            response_model: a.response_model.as_deref(),
            status: a.status,
            result: a.result.as_str(),
            span_id: hex::encode(a.span_id),
            connect_ms: a.connect.map(millis),
            headers_ms: a.headers.map(millis),
            first_token_ms: a.first_token.map(millis),
            total_ms: millis(a.total),
            tokens: a.usage.as_ref().map(Tokens::from),
        }
    }
}

/// A request as logged.
#[derive(Serialize)]
struct Line<'a> {
    ts: f64,
    trace_id: &'a str,
    span_id: String,
    method: &'a str,
    path: &'a str,
    operation: &'a str,
    config: &'a str,
    virtual_key: Option<&'a str>,
    model: Option<&'a str>,
    response_model: Option<&'a str>,
    stream: bool,
    status: u16,
    outcome: &'a str,
    duration_ms: f64,
    attempts: Vec<AttemptLine<'a>>,
    tokens: Option<Tokens>,
    cost_usd: Option<f64>,
    cache: &'a str,
    metadata: Option<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_span: Option<&'a ClientSpan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_body: Option<&'a str>,
}

/// The JSON line of a record (without the newline).
pub fn to_line(r: &RequestRecord) -> Vec<u8> {
    let ts = r
        .start
        .duration_since(UNIX_EPOCH)
        .map(|d| (d.as_secs_f64() * 1e3).round() / 1e3)
        .unwrap_or(0.0);
    let line = Line {
        ts,
        trace_id: &r.trace.display_id,
        span_id: hex::encode(r.trace.span_id),
        method: &r.method,
        path: &r.path,
        operation: r.operation,
        config: &r.config,
        virtual_key: r.virtual_key.as_deref(),
        model: r.request_model.as_deref(),
        response_model: r.response_model.as_deref(),
        stream: r.stream,
        status: r.status,
        outcome: r.outcome,
        duration_ms: millis(r.duration),
        attempts: r.attempts.iter().map(AttemptLine::from).collect(),
        tokens: r.usage.as_ref().map(Tokens::from),
        cost_usd: r.cost_usd,
        cache: r.cache,
        metadata: r.metadata.as_ref(),
        client_span: r.client_span.as_ref(),
        request_body: r.bodies.as_ref().map(|b| b.request.as_str()),
        response_body: r.bodies.as_ref().map(|b| b.response.as_str()),
    };
    serde_json::to_vec(&line).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::TraceContext;
    use std::sync::mpsc::Receiver as StdReceiver;
    use std::time::{Instant, SystemTime};

    /// A writer stuck until the test lets it go, like a full pipe nobody reads.
    struct Stuck(std::sync::Mutex<StdReceiver<()>>);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(rx) = self.0.lock() {
                let _ = rx.recv();
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn record() -> Arc<RequestRecord> {
        Arc::new(RequestRecord {
            trace: TraceContext {
                trace_id: [1; 16],
                span_id: [2; 8],
                parent_span_id: None,
                sampled: true,
                display_id: "t".into(),
            },
            start: SystemTime::now(),
            duration: Duration::from_millis(3),
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            operation: "chat",
            config: "c".into(),
            virtual_key: Some("vk".into()),
            request_model: None,
            response_model: None,
            stream: false,
            status: 200,
            outcome: "ok",
            attempts: vec![],
            usage: None,
            cost_usd: None,
            cache: "DISABLED",
            metadata: None,
            bodies: None,
            client_span: None,
        })
    }

    #[test]
    fn a_full_buffer_drops_lines_without_waiting() {
        let (release, stuck) = std::sync::mpsc::channel();
        let (tx, rx) = sync_channel(4);
        let dropped = Arc::new(AtomicU64::new(0));
        let log = AccessLog::with_writer(
            Box::new(BufWriter::with_capacity(
                0,
                Stuck(std::sync::Mutex::new(stuck)),
            )),
            tx,
            rx,
            dropped,
        );
        let started = Instant::now();
        let accepted = (0..100).filter(|_| log.log(record())).count();
        assert!(started.elapsed() < Duration::from_secs(1));
        // The writer holds one line, the queue four more; the rest are dropped and counted.
        assert!((4..=6).contains(&accepted), "{accepted}");
        assert_eq!(log.dropped(), 100 - accepted as u64);
        drop(release);
    }

    #[test]
    fn the_line_is_json_with_ids_and_no_bodies_by_default() {
        let v: serde_json::Value = serde_json::from_slice(&to_line(&record())).unwrap();
        assert_eq!(v["trace_id"], "t");
        assert_eq!(v["span_id"], "0202020202020202");
        assert_eq!(v["virtual_key"], "vk");
        assert!(v.get("request_body").is_none());
        assert!(v["cost_usd"].is_null());
    }
}
