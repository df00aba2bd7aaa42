//! Bounds on what one client connection to the proxy listener can hold: the time and bytes of
//! each request head, writes that make no progress (a client that stopped reading), and the
//! number of open connections.
//!
//! Pingora's HTTP/1 server only has a per-read timeout (a client dribbling one byte a minute
//! never times out) and a 1 MiB head cap, and it awaits writes without a deadline. Rather than
//! patch pingora, [`Guarded`] wraps the accepted stream (it is pingora's `IO` like the stream
//! it wraps), so every read and write of the HTTP session passes through it:
//! - **Head phase** (armed at accept, and re-armed by [`request_finished`] when a request on a
//!   keep-alive connection ends): reads must complete the head (a blank line) within
//!   `header_timeout` of arming and within `max_header_bytes`, else the wrapper itself writes a
//!   `408` / `431` with `Connection: close` (or, when not one byte of a head came, just closes),
//!   lingers briefly so the answer is not destroyed by a reset, and fails the read.
//! - **Write stall**: a write or flush that stays pending for `write_timeout` fails, and
//!   [`stalled`] tells the commit loop why (outcome `client_stalled`), so the upstream stream,
//!   the concurrency slot and the buffers are released.
//!
//! The request-body rate is checked where the body is read (`pipeline::body::read`), since the
//! wrapper cannot tell a body read from the idle probe that runs while a response streams.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::{Shutdown, Stream, ALPN};
use pingora::proxy::Session;
use prometheus::{IntCounter, IntGauge};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::config::RequestLimits;
use crate::error::GatewayError;
use crate::telemetry::metrics::{CloseReason, DownstreamMetrics};

/// How long, and how much, a rejected client is read (and discarded) after its error answer:
/// closing a socket with unread data sends a reset that can destroy the answer in flight.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 * 1024;
/// File descriptors kept out of the proxy listener's reach: the admin listener and its
/// probes, config and log files, DNS, Redis.
const RESERVED_FDS: u64 = 256;

/// The per-connection limits, copied from the snapshot at accept.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub header_timeout: Duration,
    pub keepalive_idle: Duration,
    pub max_header_bytes: usize,
    pub write_timeout: Duration,
}

impl From<&RequestLimits> for Settings {
    fn from(l: &RequestLimits) -> Self {
        Settings {
            header_timeout: l.header_timeout,
            keepalive_idle: l.keepalive_idle,
            max_header_bytes: l.max_header_bytes,
            write_timeout: l.write_timeout,
        }
    }
}

/// The proxy listener's connection accounting: the open count against the cap, and the
/// counters of connections cut.
pub struct Listener {
    open: Arc<AtomicUsize>,
    /// The most connections open at once since the trimmer last looked.
    peak: AtomicUsize,
    /// The most connections the file-descriptor limit leaves room for (see [`raise_fd_limit`]).
    fd_cap: usize,
    gauge: IntGauge,
    over_capacity: IntCounter,
    header_timeout: IntCounter,
    header_too_large: IntCounter,
    write_stalled: IntCounter,
}

impl Listener {
    pub fn new(metrics: &DownstreamMetrics, fd_cap: usize) -> Self {
        let c = |reason: CloseReason| metrics.closed_total.with(&reason);
        Listener {
            open: Arc::new(AtomicUsize::new(0)),
            peak: AtomicUsize::new(0),
            fd_cap,
            gauge: metrics.open.clone(),
            over_capacity: c(CloseReason::OverCapacity),
            header_timeout: c(CloseReason::HeaderTimeout),
            header_too_large: c(CloseReason::HeaderTooLarge),
            write_stalled: c(CloseReason::WriteStalled),
        }
    }

    /// A slot for a new connection, or `None` (counted) when `max_connections` or the
    /// file-descriptor room is reached: the caller closes the connection at once.
    pub fn admit(&self, max_connections: usize) -> Option<Slot> {
        let cap = max_connections.min(self.fd_cap);
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            });
        let Ok(before) = taken else {
            self.over_capacity.inc();
            return None;
        };
        self.peak.fetch_max(before + 1, Ordering::AcqRel);
        self.gauge.inc();
        Some(Slot {
            open: self.open.clone(),
            gauge: self.gauge.clone(),
        })
    }

    /// Wraps an admitted connection's stream; `head_started` is when it was accepted.
    pub fn guard(
        &self,
        inner: Stream,
        settings: Settings,
        head_started: Instant,
        slot: Slot,
    ) -> Stream {
        let flags = Flags::default();
        // HTTP/2 (an intercepted connection that chose it by ALPN) multiplexes requests: there
        // is no single head to time, and pingora's h2 server bounds its own frames.
        if inner.selected_alpn_proto() == Some(ALPN::H2) {
            flags.disarmed.store(true, Ordering::Release);
        }
        Box::new(Guarded {
            inner,
            settings,
            flags,
            head_deadline: head_started + settings.header_timeout,
            head_bytes: 0,
            newlines: 0,
            head_text: false,
            idle: false,
            read_timer: None,
            write_timer: None,
            write_waiting: false,
            reject: None,
            counters: Counters {
                header_timeout: self.header_timeout.clone(),
                header_too_large: self.header_too_large.clone(),
                write_stalled: self.write_stalled.clone(),
            },
            _slot: slot,
        })
    }
}

/// One admitted connection; frees its place when dropped.
pub struct Slot {
    open: Arc<AtomicUsize>,
    gauge: IntGauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.gauge.dec();
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns how many proxy connections
/// fit below it with [`RESERVED_FDS`] kept back, at two descriptors per connection (a client
/// connection can hold an upstream one).
pub fn raise_fd_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return usize::MAX;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        lim.rlim_cur
    };
    if soft == libc::RLIM_INFINITY {
        return usize::MAX;
    }
    let room = (soft as u64).saturating_sub(RESERVED_FDS) / 2;
    usize::try_from(room.max(1)).unwrap_or(usize::MAX)
}

/// State the request path reaches through `&Stream` (hence atomics).
#[derive(Default)]
struct Flags {
    /// A request ended: the next read starts a new head phase.
    rearm: AtomicBool,
    /// The head phase is over (the blank line was seen, or a request started).
    disarmed: AtomicBool,
    /// A write made no progress for `write_timeout`.
    stalled: AtomicBool,
}

struct Counters {
    header_timeout: IntCounter,
    header_too_large: IntCounter,
    write_stalled: IntCounter,
}

/// A client stream with the head deadline and size, and the write-stall deadline.
pub struct Guarded {
    inner: Stream,
    settings: Settings,
    flags: Flags,
    head_deadline: Instant,
    /// Bytes of the current head read so far.
    head_bytes: usize,
    /// Line breaks in a row (a `\r` does not break the run): two after some text end the head.
    newlines: u8,
    /// A byte other than a line break was read in this head (leading empty lines do not end it).
    head_text: bool,
    /// Waiting for the first byte of a keep-alive connection's next request.
    idle: bool,
    read_timer: Option<Pin<Box<Sleep>>>,
    write_timer: Option<Pin<Box<Sleep>>>,
    write_waiting: bool,
    reject: Option<Reject>,
    counters: Counters,
    _slot: Slot,
}

/// A rejection in progress: the answer being written, then the linger.
struct Reject {
    answer: Vec<u8>,
    written: usize,
    shut: bool,
    drained: usize,
    /// What the failed read finally reports.
    kind: io::ErrorKind,
}

impl fmt::Debug for Guarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guarded")
            .field("inner", &self.inner)
            .finish()
    }
}

/// The guarded stream under a session, if it has one.
fn guarded(session: &Session) -> Option<&Guarded> {
    let stream = session.as_downstream().stream()?;
    (**stream).as_any().downcast_ref::<Guarded>()
}

/// Marks the request head as received: called when a request starts, so body reads and the
/// idle probe of a pipelined request (whose head was read with the previous one) are not held
/// to the head deadline.
pub fn request_started(session: &Session) {
    if let Some(g) = guarded(session) {
        g.flags.disarmed.store(true, Ordering::Release);
    }
}

/// Starts the head deadline of the next request on this connection (keep-alive).
pub fn request_finished(session: &Session) {
    if let Some(g) = guarded(session) {
        g.flags.rearm.store(true, Ordering::Release);
    }
}

/// Whether a failed write to this client was a stall (it stopped reading), not a hang-up.
pub fn stalled(session: &Session) -> bool {
    guarded(session).is_some_and(|g| g.flags.stalled.load(Ordering::Acquire))
}

/// The raw `HTTP/1.1` error answer the wrapper writes itself (no session exists yet).
fn answer(error: &GatewayError) -> Vec<u8> {
    let status = error.status();
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let body = error.to_json();
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Polls a deadline timer, creating or moving it as needed.
fn poll_deadline(timer: &mut Option<Pin<Box<Sleep>>>, at: Instant, cx: &mut Context<'_>) -> bool {
    let sleep = match timer {
        Some(s) => {
            if s.deadline() != at {
                s.as_mut().reset(at);
            }
            s
        }
        None => timer.insert(Box::pin(tokio::time::sleep_until(at))),
    };
    sleep.as_mut().poll(cx).is_ready()
}

impl Guarded {
    fn armed(&mut self) -> bool {
        if self.flags.rearm.swap(false, Ordering::AcqRel) {
            self.flags.disarmed.store(false, Ordering::Release);
            // Until the next head's first byte, the connection is idle in the pool of the
            // client: it may wait `keepalive_idle`; from that byte on the head has
            // `header_timeout` (see `scan_head`).
            self.head_deadline = Instant::now() + self.settings.keepalive_idle;
            self.head_bytes = 0;
            self.idle = true;
            self.newlines = 0;
            self.head_text = false;
        }
        !self.flags.disarmed.load(Ordering::Acquire)
    }

    /// Accounts the head bytes just read; `true` when they are over the limit.
    fn scan_head(&mut self, bytes: &[u8]) -> bool {
        if self.idle && !bytes.is_empty() {
            self.idle = false;
            self.head_deadline = Instant::now() + self.settings.header_timeout;
        }
        if let Some(end) = head_end(&mut self.newlines, &mut self.head_text, bytes) {
            self.flags.disarmed.store(true, Ordering::Release);
            return self.head_bytes + end > self.settings.max_header_bytes;
        }
        self.head_bytes += bytes.len();
        self.head_bytes > self.settings.max_header_bytes
    }

    fn start_reject(&mut self, error: Option<GatewayError>) {
        let kind = match &error {
            Some(GatewayError::HeadersTooLarge { .. }) => {
                self.counters.header_too_large.inc();
                io::ErrorKind::InvalidData
            }
            _ => {
                self.counters.header_timeout.inc();
                io::ErrorKind::TimedOut
            }
        };
        self.reject = Some(Reject {
            answer: error.as_ref().map(answer).unwrap_or_default(),
            written: 0,
            shut: false,
            drained: 0,
            kind,
        });
        self.head_deadline = Instant::now() + LINGER;
    }

    /// Drives a rejection: write the answer, shut the write side, read and discard until the
    /// client closes or the linger ends; then the read fails.
    fn poll_reject(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(r) = self.reject.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let linger_over = poll_deadline(&mut self.read_timer, self.head_deadline, cx);
        let kind = r.kind;
        let fail = || Poll::Ready(Err(io::Error::new(kind, "request head refused")));
        while r.written < r.answer.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &r.answer[r.written..]) {
                Poll::Ready(Ok(n)) if n > 0 => r.written += n,
                Poll::Ready(_) => return fail(),
                Poll::Pending if linger_over => return fail(),
                Poll::Pending => return Poll::Pending,
            }
        }
        if !r.shut {
            match Pin::new(&mut self.inner).poll_shutdown(cx) {
                Poll::Ready(Ok(())) => r.shut = true,
                Poll::Ready(Err(_)) => return fail(),
                Poll::Pending if linger_over => return fail(),
                Poll::Pending => return Poll::Pending,
            }
        }
        let mut scratch = [0u8; 2048];
        while r.drained < LINGER_BYTES && !linger_over {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => r.drained += buf.filled().len(),
                Poll::Ready(_) => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        fail()
    }

    /// A write-side poll result through the stall deadline.
    fn stall_guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        res: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match res {
            Poll::Ready(r) => {
                self.write_waiting = false;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let at = match (self.write_waiting, self.write_timer.as_ref()) {
                    (true, Some(t)) => t.deadline(),
                    _ => Instant::now() + self.settings.write_timeout,
                };
                self.write_waiting = true;
                if poll_deadline(&mut self.write_timer, at, cx) {
                    self.flags.stalled.store(true, Ordering::Release);
                    self.counters.write_stalled.inc();
                    return Poll::Ready(Err(stall_error()));
                }
                Poll::Pending
            }
        }
    }

    fn is_stalled(&self) -> bool {
        self.flags.stalled.load(Ordering::Acquire)
    }
}

fn stall_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the client read nothing for the write timeout",
    )
}

/// Scans head bytes for the end of the head: two line breaks in a row (a `\r` does not break
/// the run) after some text. `newlines` and `head_text` carry the scan across reads. Returns
/// how many of `bytes` belong to the head when it ends in them.
///
/// Line by line with `memchr`, not byte by byte: this runs over every request head.
fn head_end(newlines: &mut u8, head_text: &mut bool, bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(pos) = memchr::memchr(b'\n', &bytes[at..]) {
        if bytes[at..at + pos].iter().any(|b| *b != b'\r') {
            *newlines = 0;
            *head_text = true;
        }
        *newlines = newlines.saturating_add(1);
        at += pos + 1;
        if *newlines >= 2 && *head_text {
            return Some(at);
        }
    }
    if bytes[at..].iter().any(|b| *b != b'\r') {
        *newlines = 0;
        *head_text = true;
    }
    None
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.reject.is_some() {
            return this.poll_reject(cx);
        }
        if !this.armed() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let (start, end) = (before, buf.filled().len());
                if this.scan_head(&buf.filled()[start..end]) {
                    buf.set_filled(before);
                    let limit = this.settings.max_header_bytes;
                    this.start_reject(Some(GatewayError::HeadersTooLarge { limit }));
                    return this.poll_reject(cx);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if !poll_deadline(&mut this.read_timer, this.head_deadline, cx) {
                    return Poll::Pending;
                }
                // Not one byte of a head: an idle connection, closed without an answer.
                let error = (this.head_bytes > 0).then(|| {
                    GatewayError::ClientTooSlow(format!(
                        "the request head did not arrive within {} ms",
                        this.settings.header_timeout.as_millis()
                    ))
                });
                this.start_reject(error);
                this.poll_reject(cx)
            }
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.is_stalled() {
            return Poll::Ready(Err(stall_error()));
        }
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.stall_guard(cx, res)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.is_stalled() {
            return Poll::Ready(Err(stall_error()));
        }
        let res = Pin::new(&mut this.inner).poll_flush(cx);
        this.stall_guard(cx, res)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.is_stalled() {
            // Whatever is buffered will never be read: do not wait to flush it.
            return Poll::Ready(Ok(()));
        }
        let res = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.stall_guard(cx, res)
    }
}

#[async_trait]
impl Shutdown for Guarded {
    async fn shutdown(&mut self) {
        if self.is_stalled() {
            return;
        }
        let write_timeout = self.settings.write_timeout;
        let _ = tokio::time::timeout(write_timeout, self.inner.shutdown()).await;
    }
}

crate::upstream::io::delegate_stream_digests!(Guarded);

/// How often the trimmer looks at the connection count.
const TRIM_EVERY: Duration = Duration::from_secs(5);
/// Connections that must have closed since the last look for a trim to be worth it.
const TRIM_AFTER_DROP: usize = 64;

impl Listener {
    /// Starts a thread that hands freed heap back to the OS after a connection flood.
    ///
    /// glibc keeps memory freed by many short-lived connections in its per-thread arenas (the
    /// top of a heap is only released when it is free, and the middle never), so RSS stayed at
    /// a flood's peak after every connection had closed. `malloc_trim` releases the free pages
    /// of every arena; it runs on its own thread and only when the open-connection count has
    /// fallen by [`TRIM_AFTER_DROP`] since the last look, never on a request path.
    pub fn spawn_trimmer(self: &Arc<Self>) {
        let listener = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("switchyard-trim".into())
            .spawn(move || loop {
                std::thread::sleep(TRIM_EVERY);
                let Some(l) = listener.upgrade() else { return };
                let open = l.open.load(Ordering::Acquire);
                let peak = l.peak.swap(open, Ordering::AcqRel);
                if peak >= open + TRIM_AFTER_DROP {
                    trim();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the memory trimmer");
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim has no preconditions; it only takes the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::head_end;

    /// The byte-by-byte scan `head_end` replaced.
    fn reference(newlines: &mut u8, head_text: &mut bool, bytes: &[u8]) -> Option<usize> {
        for (i, b) in bytes.iter().enumerate() {
            match b {
                b'\n' => {
                    *newlines = newlines.saturating_add(1);
                    if *newlines >= 2 && *head_text {
                        return Some(i + 1);
                    }
                }
                b'\r' => {}
                _ => {
                    *newlines = 0;
                    *head_text = true;
                }
            }
        }
        None
    }

    #[test]
    fn the_head_ends_where_the_byte_scan_said_whatever_the_reads() {
        let heads: [&[u8]; 6] = [
            b"GET / HTTP/1.1\r\nhost: a\r\n\r\nbody",
            b"\r\n\r\nGET / HTTP/1.1\nhost: a\n\nrest",
            b"GET / HTTP/1.1\r\nx: \r\r\n\r\r\n",
            b"\r\n\n\r\n",
            b"GET / HTTP/1.1\r\nhost: a\r\n",
            b"a\n\n\n",
        ];
        for head in heads {
            for split in 0..=head.len() {
                let (mut n1, mut t1, mut n2, mut t2) = (0u8, false, 0u8, false);
                let (a, b) = head.split_at(split);
                let ours = head_end(&mut n1, &mut t1, a)
                    .or_else(|| head_end(&mut n1, &mut t1, b).map(|e| e + a.len()));
                let theirs = reference(&mut n2, &mut t2, a)
                    .or_else(|| reference(&mut n2, &mut t2, b).map(|e| e + a.len()));
                assert_eq!(
                    ours,
                    theirs,
                    "{:?} split at {split}",
                    String::from_utf8_lossy(head)
                );
                if ours.is_none() {
                    assert_eq!((n1, t1), (n2, t2));
                }
            }
        }
    }
}
