//! Which upstream connections are open, and whether each carries a request: a wrapper around
//! every connection's stream whose drop (however pingora's pools close it — idle timeout,
//! eviction, the provider hanging up) takes it off the books, and a ticket per request on it.
//! Feeds `switchyard_upstream_connections{provider,protocol,state}`.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::{Shutdown, Stream, UniqueIDType};
use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::telemetry::metrics::{ConnLabels, ConnectLabels, ConnectionMetrics};

/// The HTTP version a connection speaks, as the `protocol` label writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    H1,
    H2,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::H1 => "http/1.1",
            Protocol::H2 => "h2",
        }
    }
}

/// Why a connection was opened: a request waited for it, or pre-warming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Request,
    Prewarm,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Request => "request",
            Trigger::Prewarm => "prewarm",
        }
    }
}

/// The open connections, by stream id, so a pooled one found again gets its ticket.
pub(crate) struct ConnTable {
    live: Mutex<HashMap<UniqueIDType, Weak<ConnState>>>,
    metrics: Option<ConnectionMetrics>,
}

impl ConnTable {
    pub fn new(metrics: Option<ConnectionMetrics>) -> Arc<Self> {
        Arc::new(ConnTable {
            live: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    /// Records a new connection's opening time.
    pub fn opened(&self, provider: &str, protocol: Protocol, trigger: Trigger, took: Duration) {
        if let Some(m) = &self.metrics {
            m.connect_seconds
                .with(&ConnectLabels {
                    provider,
                    protocol: protocol.as_str(),
                    trigger: trigger.as_str(),
                })
                .observe(took.as_secs_f64());
        }
    }

    /// Wraps a new connection's stream so its closing is seen; it starts idle.
    pub fn track(
        self: &Arc<Self>,
        stream: Stream,
        provider: &str,
        protocol: Protocol,
    ) -> (Stream, Arc<ConnState>) {
        let gauge = |state| {
            self.metrics.as_ref().map(|m| {
                m.connections.with(&ConnLabels {
                    provider,
                    protocol: protocol.as_str(),
                    state,
                })
            })
        };
        let state = Arc::new(ConnState {
            books: Mutex::new(Books::default()),
            active: gauge("active"),
            idle: gauge("idle"),
        });
        if let Some(idle) = &state.idle {
            idle.inc();
        }
        let id = stream.id();
        if let Ok(mut live) = self.live.lock() {
            live.insert(id, Arc::downgrade(&state));
        }
        let tracked = Tracked {
            _guard: CloseGuard {
                table: self.clone(),
                state: state.clone(),
                id,
            },
            inner: stream,
        };
        (Box::new(tracked), state)
    }

    /// A ticket on the open connection with this stream id (a pooled one being reused).
    pub fn ticket(&self, id: UniqueIDType) -> Option<StreamTicket> {
        let state = self.live.lock().ok()?.get(&id)?.upgrade()?;
        Some(StreamTicket::new(state))
    }
}

#[derive(Default)]
struct Books {
    /// Requests on the connection now (0 or 1 for HTTP/1.1).
    streams: usize,
    closed: bool,
}

/// One open connection's accounting.
pub struct ConnState {
    books: Mutex<Books>,
    active: Option<IntGauge>,
    idle: Option<IntGauge>,
}

impl ConnState {
    fn shift(&self, from: &Option<IntGauge>, to: &Option<IntGauge>) {
        if let Some(g) = from {
            g.dec();
        }
        if let Some(g) = to {
            g.inc();
        }
    }
}

/// A request on a connection: active while any ticket is held, idle when the last is dropped.
pub struct StreamTicket(Arc<ConnState>);

impl StreamTicket {
    pub fn new(state: Arc<ConnState>) -> StreamTicket {
        if let Ok(mut books) = state.books.lock() {
            books.streams += 1;
            if books.streams == 1 && !books.closed {
                state.shift(&state.idle, &state.active);
            }
        }
        StreamTicket(state)
    }
}

impl Drop for StreamTicket {
    fn drop(&mut self) {
        let state = &self.0;
        if let Ok(mut books) = state.books.lock() {
            books.streams = books.streams.saturating_sub(1);
            if books.streams == 0 && !books.closed {
                state.shift(&state.active, &state.idle);
            }
        }
    }
}

/// Dropped with the connection's stream: the connection is closed.
struct CloseGuard {
    table: Arc<ConnTable>,
    state: Arc<ConnState>,
    id: UniqueIDType,
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        if let Ok(mut live) = self.table.live.lock() {
            // A newer connection may hold the id already (the descriptor reused): leave it.
            if live
                .get(&self.id)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.state)))
            {
                live.remove(&self.id);
            }
        }
        let state = &self.state;
        if let Ok(mut books) = state.books.lock() {
            books.closed = true;
            let gauge = if books.streams > 0 {
                &state.active
            } else {
                &state.idle
            };
            state.shift(gauge, &None);
        }
    }
}

impl std::fmt::Debug for CloseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloseGuard").field("id", &self.id).finish()
    }
}

/// A connection's stream as pingora sees it, plus the guard. The guard is declared first so it
/// drops (and forgets the id) before the descriptor closes and can be reused.
#[derive(Debug)]
struct Tracked {
    _guard: CloseGuard,
    inner: Stream,
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for Tracked {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

super::io::delegate_stream_digests!(Tracked);
