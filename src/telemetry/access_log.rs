//! The access log: one JSON line per request. The request path writes its line straight into
//! a bounded buffer shared with a writer thread, which wakes once per batch and hands the whole
//! batch to the output in one write. When the buffer is full the line is dropped and counted —
//! logging never waits.
//!
//! The line is written by hand (no serde tree, no per-field allocation), on the request path:
//! formatting it on the writer thread made that thread's wake-ups bursts of work that delayed
//! requests sharing its CPU (+200 µs at p99, concurrency 1), and freed each request's record on
//! another thread than the one that allocated it.
//!
//! A line carries ids, names, timings, tokens, cost, cache status and metadata; prompt and
//! completion text only when the record has them (`log_bodies`, and not `x-switchyard-log:
//! off`). Records never hold a credential, so there is nothing here to redact.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use super::record::{AttemptRecord, RequestRecord};
pub use crate::config::LogTarget;
use crate::providers::Usage;

/// The sending side, shared by every request.
pub struct AccessLog {
    shared: Option<Arc<Shared>>,
    dropped: Arc<AtomicU64>,
}

/// The lines waiting for the writer.
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Most lines waiting at once.
    cap: usize,
}

#[derive(Default)]
struct Pending {
    /// Whole lines, each ending in `\n`.
    buf: Vec<u8>,
    lines: usize,
    /// The writer waits for a first line (the next one wakes it).
    parked: bool,
    /// The log was dropped: write what is left and stop.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // Nothing panics while holding it; a poisoned lock still holds whole lines.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl AccessLog {
    /// Starts the writer thread (none for `Off`). A file that cannot be opened falls back to
    /// stderr with a warning: losing the log is worse than writing it elsewhere.
    pub fn start(target: LogTarget, buffer_lines: usize) -> AccessLog {
        if target == LogTarget::Off {
            return AccessLog {
                shared: None,
                dropped: Arc::default(),
            };
        }
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
        Self::with_writer(out, buffer_lines)
    }

    fn with_writer(out: Box<dyn Write + Send>, buffer_lines: usize) -> AccessLog {
        let shared = Arc::new(Shared {
            pending: Mutex::default(),
            wake: Condvar::new(),
            cap: buffer_lines.max(1),
        });
        let writer = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("switchyard-access-log".into())
            .spawn(move || write_lines(&writer, out));
        let shared = match spawned {
            Ok(_) => Some(shared),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the access log writer; access log off");
                None
            }
        };
        AccessLog {
            shared,
            dropped: Arc::default(),
        }
    }

    /// Writes the record's line into the buffer; never blocks on the output. Returns `false`
    /// if it was dropped (the buffer is full).
    pub fn log(&self, record: &RequestRecord) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        let mut pending = shared.lock();
        if pending.lines >= shared.cap || pending.closed {
            drop(pending);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        write_line(&mut pending.buf, record);
        pending.buf.push(b'\n');
        pending.lines += 1;
        let wake = std::mem::take(&mut pending.parked);
        drop(pending);
        if wake {
            shared.wake.notify_one();
        }
        true
    }

    /// Lines dropped because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.lock().closed = true;
            shared.wake.notify_one();
        }
    }
}

/// How long the writer lets lines gather after the first one wakes it: one wake-up and one
/// write per batch, not per line.
const BATCH_WINDOW: Duration = Duration::from_millis(20);

/// A batch buffer bigger than this (a burst, or a stuck output) is not kept for the next one.
const KEPT_CAPACITY: usize = 1 << 20;

fn write_lines(shared: &Shared, mut out: Box<dyn Write + Send>) {
    let mut batch = Vec::new();
    loop {
        let closed = {
            let mut pending = shared.lock();
            while pending.lines == 0 && !pending.closed {
                pending.parked = true;
                pending = shared.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
            }
            pending.parked = false;
            pending.closed
        };
        if !closed {
            std::thread::sleep(BATCH_WINDOW);
        }
        let closed = {
            let mut pending = shared.lock();
            std::mem::swap(&mut pending.buf, &mut batch);
            pending.lines = 0;
            pending.closed
        };
        let _ = out.write_all(&batch);
        let _ = out.flush();
        batch.clear();
        if batch.capacity() > KEPT_CAPACITY {
            batch = Vec::new();
        }
        if closed {
            return;
        }
    }
}

/// The JSON line of a record (without the newline).
pub fn to_line(r: &RequestRecord) -> Vec<u8> {
    let mut buf = Vec::with_capacity(512);
    write_line(&mut buf, r);
    buf
}

/// Appends the JSON line of a record (without the newline) to `buf`.
fn write_line(buf: &mut Vec<u8>, r: &RequestRecord) {
    let ts_ms = r
        .start
        .duration_since(UNIX_EPOCH)
        .map(|d| (d.as_secs_f64() * 1e3).round() as u64)
        .unwrap_or(0);
    buf.extend_from_slice(b"{\"ts\":");
    thousandths(buf, ts_ms);
    buf.extend_from_slice(b",\"trace_id\":");
    string(buf, &r.trace.display_id);
    buf.extend_from_slice(b",\"span_id\":");
    hex(buf, &r.trace.span_id);
    buf.extend_from_slice(b",\"method\":");
    string(buf, &r.method);
    buf.extend_from_slice(b",\"path\":");
    string(buf, &r.path);
    buf.extend_from_slice(b",\"operation\":");
    string(buf, r.operation);
    buf.extend_from_slice(b",\"config\":");
    string(buf, &r.config);
    buf.extend_from_slice(b",\"virtual_key\":");
    opt_string(buf, r.virtual_key.as_deref());
    buf.extend_from_slice(b",\"model\":");
    opt_string(buf, r.request_model.as_deref());
    buf.extend_from_slice(b",\"response_model\":");
    opt_string(buf, r.response_model.as_deref());
    buf.extend_from_slice(if r.stream {
        b",\"stream\":true,\"status\":"
    } else {
        b",\"stream\":false,\"status\":"
    });
    integer(buf, u64::from(r.status));
    buf.extend_from_slice(b",\"outcome\":");
    string(buf, r.outcome);
    buf.extend_from_slice(b",\"duration_ms\":");
    millis(buf, r.duration);
    buf.extend_from_slice(b",\"attempts\":[");
    for (i, a) in r.attempts.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        attempt(buf, a);
    }
    buf.extend_from_slice(b"],\"tokens\":");
    tokens(buf, r.usage.as_ref());
    buf.extend_from_slice(b",\"cost_usd\":");
    match r.cost_usd {
        Some(c) => serde(buf, &c),
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b",\"cache\":");
    string(buf, r.cache);
    buf.extend_from_slice(b",\"metadata\":");
    match &r.metadata {
        Some(m) => serde(buf, m),
        None => buf.extend_from_slice(b"null"),
    }
    if let Some(span) = &r.client_span {
        buf.extend_from_slice(b",\"client_span\":");
        serde(buf, span);
    }
    if let Some(bodies) = &r.bodies {
        buf.extend_from_slice(b",\"request_body\":");
        string(buf, &bodies.request);
        buf.extend_from_slice(b",\"response_body\":");
        string(buf, &bodies.response);
    }
    buf.push(b'}');
}

/// One attempt of the line.
fn attempt(buf: &mut Vec<u8>, a: &AttemptRecord) {
    buf.extend_from_slice(b"{\"target\":");
    string(buf, &a.target);
    buf.extend_from_slice(b",\"provider\":");
    string(buf, &a.provider);
    buf.extend_from_slice(b",\"model\":");
    opt_string(buf, a.request_model.as_deref());
    if let Some(m) = &a.response_model {
        buf.extend_from_slice(b",\"response_model\":");
        string(buf, m);
    }
    buf.extend_from_slice(b",\"status\":");
    match a.status {
        Some(s) => integer(buf, u64::from(s)),
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b",\"result\":");
    string(buf, a.result.as_str());
    buf.extend_from_slice(b",\"span_id\":");
    hex(buf, &a.span_id);
    for (name, d) in [
        (&b",\"connect_ms\":"[..], a.connect),
        (b",\"headers_ms\":", a.headers),
        (b",\"first_token_ms\":", a.first_token),
    ] {
        buf.extend_from_slice(name);
        match d {
            Some(d) => millis(buf, d),
            None => buf.extend_from_slice(b"null"),
        }
    }
    buf.extend_from_slice(b",\"total_ms\":");
    millis(buf, a.total);
    if let Some(u) = &a.usage {
        buf.extend_from_slice(b",\"tokens\":");
        tokens(buf, Some(u));
    }
    buf.push(b'}');
}

fn tokens(buf: &mut Vec<u8>, usage: Option<&Usage>) {
    let Some(u) = usage else {
        buf.extend_from_slice(b"null");
        return;
    };
    buf.extend_from_slice(b"{\"input\":");
    integer(buf, u.input_tokens);
    buf.extend_from_slice(b",\"output\":");
    integer(buf, u.output_tokens);
    buf.extend_from_slice(b",\"cached\":");
    integer(buf, u.cached_tokens);
    buf.extend_from_slice(b",\"reasoning\":");
    integer(buf, u.reasoning_tokens);
    buf.push(b'}');
}

/// A JSON string: copied as it is when nothing in it needs escaping (the common case), else
/// escaped by serde_json.
fn string(buf: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.reserve(s.len() + 2);
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        serde(buf, s);
    }
}

fn opt_string(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(buf, s),
        None => buf.extend_from_slice(b"null"),
    }
}

/// A value serde_json writes (floats, metadata, the client span). Writing to a `Vec` fails
/// only for a map with non-string keys, which none of these has; a failed value is `null`.
fn serde<T: serde::Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) {
    let at = buf.len();
    if serde_json::to_writer(&mut *buf, value).is_err() {
        buf.truncate(at);
        buf.extend_from_slice(b"null");
    }
}

/// Bytes as a quoted lowercase hex string.
fn hex(buf: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    buf.push(b'"');
    for b in bytes {
        buf.push(DIGITS[usize::from(b >> 4)]);
        buf.push(DIGITS[usize::from(b & 0xf)]);
    }
    buf.push(b'"');
}

fn integer(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[at..]);
}

/// `n / 1000` as a JSON number the way serde_json prints that float: `3.0`, `3.25`, `3.125`.
fn thousandths(buf: &mut Vec<u8>, n: u64) {
    integer(buf, n / 1000);
    let frac = n % 1000;
    buf.push(b'.');
    match frac {
        0 => buf.push(b'0'),
        f if f % 100 == 0 => integer(buf, f / 100),
        f if f % 10 == 0 => {
            buf.push(b'0' + (f / 100) as u8);
            buf.push(b'0' + (f / 10 % 10) as u8);
        }
        f => {
            buf.push(b'0' + (f / 100) as u8);
            buf.push(b'0' + (f / 10 % 10) as u8);
            buf.push(b'0' + (f % 10) as u8);
        }
    }
}

/// A duration in milliseconds, to the microsecond.
fn millis(buf: &mut Vec<u8>, d: Duration) {
    thousandths(buf, (d.as_secs_f64() * 1e6).round() as u64);
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
        let log = AccessLog::with_writer(Box::new(Stuck(std::sync::Mutex::new(stuck))), 4);
        let started = Instant::now();
        let accepted = (0..100).filter(|_| log.log(&record())).count();
        assert!(started.elapsed() < Duration::from_secs(1));
        // Four lines wait in the buffer (the writer, asleep gathering its batch, has taken
        // none yet, or a batch it is stuck writing); the rest are dropped and counted.
        assert!((4..=8).contains(&accepted), "{accepted}");
        assert_eq!(log.dropped(), 100 - accepted as u64);
        drop(release);
    }

    /// Collects what the writer wrote.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_reach_the_output_in_batches_and_on_drop() {
        let sink = Sink::default();
        let log = AccessLog::with_writer(Box::new(sink.clone()), 100);
        assert!(log.log(&record()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while sink.0.lock().unwrap().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sink.0.lock().unwrap().split(|b| *b == b'\n').count(), 2);
        for _ in 0..3 {
            assert!(log.log(&record()));
        }
        drop(log);
        while sink.0.lock().unwrap().len() < 4 * 100 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let written = sink.0.lock().unwrap().clone();
        let lines: Vec<&[u8]> = written.split(|b| *b == b'\n').collect();
        assert_eq!(lines.len(), 5, "four lines, each ending in a newline");
        for line in &lines[..4] {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            assert_eq!(v["trace_id"], "t");
        }
    }

    #[test]
    fn thousandths_print_as_serde_json_prints_the_float() {
        for n in (0..20_000u64).chain([1_796_452_624_157, 1_796_452_624_100, 123_456_789]) {
            let mut ours = Vec::new();
            thousandths(&mut ours, n);
            let theirs = serde_json::to_vec(&(n as f64 / 1e3)).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }

    #[test]
    fn every_field_is_written_and_strings_are_escaped() {
        let mut r = (*record()).clone();
        r.path = "/v1/\"odd\"\\path\n\u{1}é".into();
        r.request_model = Some("gpt-4o".into());
        r.stream = true;
        r.usage = Some(Usage {
            input_tokens: 10,
            output_tokens: 20,
            cached_tokens: 3,
            cache_creation_tokens: 1,
            reasoning_tokens: 4,
        });
        r.cost_usd = Some(0.000123);
        let mut meta = serde_json::Map::new();
        meta.insert("user".into(), serde_json::json!("u\"1"));
        r.metadata = Some(meta);
        r.client_span = Some(crate::telemetry::record::ClientSpan {
            span_id: Some("s1".into()),
            parent_span_id: None,
            span_name: Some("step".into()),
        });
        r.bodies = Some(crate::telemetry::Bodies {
            request: "{\"a\":1}".into(),
            response: "line\nbreak".into(),
        });
        r.attempts = vec![AttemptRecord {
            span_id: [0xab; 8],
            target: "config.targets[0]".into(),
            provider: "mock".into(),
            provider_kind: "openai",
            request_model: None,
            response_model: Some("gpt-4o-2024".into()),
            status: Some(200),
            result: crate::telemetry::AttemptResult::Ok,
            start: r.start,
            connect: Some(Duration::from_micros(1500)),
            headers: None,
            first_token: Some(Duration::from_micros(2)),
            total: Duration::from_millis(7),
            usage: None,
        }];
        let v: serde_json::Value = serde_json::from_slice(&to_line(&r)).unwrap();
        let ts = r.start.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        assert!((v["ts"].as_f64().unwrap() - ts).abs() < 0.001);
        let expected = serde_json::json!({
            "ts": v["ts"], "trace_id": "t", "span_id": "0202020202020202", "method": "POST",
            "path": r.path, "operation": "chat", "config": "c", "virtual_key": "vk",
            "model": "gpt-4o", "response_model": null, "stream": true, "status": 200,
            "outcome": "ok", "duration_ms": 3.0,
            "attempts": [{"target": "config.targets[0]", "provider": "mock", "model": null,
                "response_model": "gpt-4o-2024", "status": 200, "result": "ok",
                "span_id": "abababababababab", "connect_ms": 1.5, "headers_ms": null,
                "first_token_ms": 0.002, "total_ms": 7.0}],
            "tokens": {"input": 10, "output": 20, "cached": 3, "reasoning": 4},
            "cost_usd": 0.000123, "cache": "DISABLED", "metadata": {"user": "u\"1"},
            "client_span": {"span_id": "s1", "span_name": "step"},
            "request_body": "{\"a\":1}", "response_body": "line\nbreak",
        });
        assert_eq!(v, expected);
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
