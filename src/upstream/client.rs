//! One upstream attempt over pingora's pooled client, with a deadline for every phase:
//! connect, response headers, first chunk, idle gap between chunks, and the whole attempt.
//!
//! Each phase gets its own `tokio::time::timeout` so a slow provider is classified precisely
//! (a `ttft` timeout is not a `connect` timeout). Connections go back to the pool only when their
//! response was read to the end; anything else is shut down.
//!
//! An [`AttemptError`]'s `Display` is the full detail for the log (pingora's text carries the
//! resolved address, SNI and TLS library errors); what a client is told is
//! [`AttemptError::client_reason`], a fixed phrase per kind of failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::client::HttpSession;
use pingora::protocols::ALPN;
use pingora::upstreams::peer::HttpPeer;

use super::conn::{Protocol, StreamTicket};
use super::dns::DnsCache;
use super::pool::{Pool, Pools, POOL_IDLE_TIMEOUT};
use super::tls::TrustError;
use crate::config::Provider;
use crate::telemetry::metrics::ConnectionMetrics;

/// Default TCP (+TLS) connect budget when a target sets no `connect_ms`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default deadline for the response headers when no `request_timeout` applies: 10 minutes, the
/// OpenAI and Anthropic SDKs' own default, because a non-streamed answer of a reasoning model
/// sends its headers only when the whole answer is generated.
pub const DEFAULT_HEADERS_TIMEOUT: Duration = Duration::from_secs(600);
/// Default longest silence between two body reads (`idle_ms`): 5 minutes, room for a streaming
/// reasoning model that sends nothing while it thinks.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default bound on one whole attempt, body included (`total_ms`): 1 hour, above the longest
/// generation a provider streams today, yet a hung upstream never holds a slot forever.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(3600);

/// The phase of an attempt a deadline belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connect,
    /// Portkey's `request_timeout`: until the response headers.
    Headers,
    /// Until the first content event of a stream (`ttft_ms`).
    FirstChunk,
    /// Between two body reads (`idle_ms`).
    Idle,
    /// The whole attempt (`total_ms`).
    Total,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Headers => "request",
            Phase::FirstChunk => "ttft",
            Phase::Idle => "idle",
            Phase::Total => "total",
        }
    }
}

/// What kind of connection failure, for the client's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectKind {
    Refused,
    /// TLS handshake or certificate verification.
    Tls,
    /// Closed or reset before any response byte.
    Closed,
    Other,
}

/// A connection failure: its kind and the full detail (log only).
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct ConnectFailure {
    pub kind: ConnectKind,
    pub detail: String,
}

impl ConnectFailure {
    fn from_pingora(e: &pingora::Error) -> ConnectFailure {
        use pingora::ErrorType as T;
        let kind = match e.etype() {
            T::ConnectRefused => ConnectKind::Refused,
            T::TLSHandshakeFailure
            | T::TLSHandshakeTimedout
            | T::InvalidCert
            | T::HandshakeError => ConnectKind::Tls,
            T::ConnectionClosed => ConnectKind::Closed,
            _ => ConnectKind::Other,
        };
        ConnectFailure {
            kind,
            detail: e.to_string(),
        }
    }
}

/// Why an attempt failed before or while reading its response.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("connect failed: {0}")]
    Connect(ConnectFailure),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("{} timeout after {}ms", phase.as_str(), budget.as_millis())]
    Timeout { phase: Phase, budget: Duration },
    #[error("upstream connection failed: {0}")]
    Io(String),
    #[error("upstream response body exceeds {limit} bytes")]
    TooLarge { limit: usize },
}

impl AttemptError {
    /// The failure as a client may see it: no resolved address, host name, SNI, file path or
    /// library text (the [`Display`](std::fmt::Display) form, for the log, has those).
    pub fn client_reason(&self) -> String {
        match self {
            AttemptError::Resolve { .. } => "the provider's host name cannot be resolved".into(),
            AttemptError::Connect(c) => match c.kind {
                ConnectKind::Refused => "the connection was refused".into(),
                ConnectKind::Tls => "the TLS handshake failed (certificate not trusted, wrong name or protocol mismatch)".into(),
                ConnectKind::Closed => "the connection closed before the response head".into(),
                ConnectKind::Other => "the connection failed".into(),
            },
            AttemptError::Trust(_) => "the provider's ca_file cannot be used".into(),
            AttemptError::Timeout { .. } | AttemptError::TooLarge { .. } => self.to_string(),
            AttemptError::Io(_) => "the upstream connection failed while reading the response".into(),
        }
    }
}

/// Per-phase budgets of one attempt.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub connect: Duration,
    pub headers: Option<Duration>,
    pub first_chunk: Option<Duration>,
    pub idle: Option<Duration>,
    pub total: Option<Duration>,
}

/// A deadline together with the phase (and budget) it enforces.
#[derive(Debug, Clone, Copy)]
struct PhaseDeadline {
    at: Instant,
    phase: Phase,
    budget: Duration,
}

fn earliest(candidates: &[Option<PhaseDeadline>]) -> Option<PhaseDeadline> {
    candidates.iter().flatten().min_by_key(|d| d.at).copied()
}

/// Awaits `fut` until `deadline`, mapping expiry to `AttemptError::Timeout`.
async fn within<T>(
    deadline: Option<PhaseDeadline>,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, AttemptError> {
    match deadline {
        None => Ok(fut.await),
        // pingora's shared 10 ms timer wheel: arming one costs no syscall, where a tokio timer
        // earlier than the runtime's next wake-up makes it write its eventfd on every request.
        Some(d) => pingora_timeout::fast_timeout::fast_timeout(
            d.at.saturating_duration_since(Instant::now()),
            fut,
        )
        .await
        .map_err(|_| AttemptError::Timeout {
            phase: d.phase,
            budget: d.budget,
        }),
    }
}

/// The shared client: pooled connections (HTTP/2 and HTTP/1.1, per trust set), DNS cache.
/// Cloning shares it (the pipeline and the pre-warmer hold the same pools).
#[derive(Clone)]
pub struct UpstreamClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    pools: Pools,
    dns: DnsCache,
}

impl Default for UpstreamClient {
    fn default() -> Self {
        Self::new()
    }
}

impl UpstreamClient {
    /// A client that records no connection metrics.
    pub fn new() -> Self {
        Self::build(None)
    }

    /// A client that records `switchyard_upstream_connections` and `_connect_seconds`.
    pub fn with_metrics(metrics: ConnectionMetrics) -> Self {
        Self::build(Some(metrics))
    }

    fn build(metrics: Option<ConnectionMetrics>) -> Self {
        let pools = Pools::new(metrics);
        // The bundled roots' pool now, so the first request does not parse them.
        if let Err(e) = pools.pool(None) {
            tracing::warn!(error = %e, "upstream TLS connector");
        }
        UpstreamClient {
            inner: Arc::new(ClientInner {
                pools,
                dns: DnsCache::new(),
            }),
        }
    }

    /// The peer for `provider` and the pool its connections live in.
    async fn peer_for(
        &self,
        provider: &Provider,
        connect_budget: Duration,
        connect_deadline: Option<PhaseDeadline>,
    ) -> Result<(HttpPeer, Arc<Pool>), AttemptError> {
        let url = &provider.base_url;
        let addr = within(
            connect_deadline,
            self.inner.dns.resolve(&url.host, url.port),
        )
        .await?
        .map_err(|e| AttemptError::Resolve {
            host: url.host.clone(),
            reason: e.to_string(),
        })?;
        let pool = self.inner.pools.pool(provider.ca_file.as_deref())?;
        let mut peer = HttpPeer::new(addr, url.tls, url.host.clone());
        peer.options.connection_timeout = Some(connect_budget);
        peer.options.total_connection_timeout = Some(connect_budget);
        peer.options.idle_timeout = Some(POOL_IDLE_TIMEOUT);
        peer.options.max_h2_streams = provider.connections.h2_max_streams;
        peer.options.alpn = if url.tls && provider.connections.http2 {
            ALPN::H2H1
        } else {
            ALPN::H1
        };
        if url.tls {
            peer.options.ca = pool.peer_ca().cloned();
        }
        // Pool per provider, so two providers on one address never share a connection.
        peer.group_key = fnv1a(provider.name.as_bytes());
        Ok((peer, pool))
    }

    /// Opens one connection to `provider` ahead of need and pools it (`prewarm`).
    pub async fn prewarm(
        &self,
        provider: &Provider,
        connect_budget: Duration,
    ) -> Result<Protocol, AttemptError> {
        let deadline = Some(PhaseDeadline {
            at: Instant::now() + connect_budget,
            phase: Phase::Connect,
            budget: connect_budget,
        });
        let (peer, pool) = self.peer_for(provider, connect_budget, deadline).await?;
        within(
            deadline,
            self.inner.pools.prewarm(&pool, &peer, &provider.name),
        )
        .await?
        .map_err(|e| connect_error(&e, connect_budget))
    }

    /// Sends `header` + `body` to `provider` and waits for the response headers.
    pub async fn send(
        &self,
        provider: &Provider,
        header: RequestHeader,
        body: Bytes,
        deadlines: Deadlines,
    ) -> Result<UpstreamResponse, AttemptError> {
        let started = Instant::now();
        let total = deadlines.total.map(|budget| PhaseDeadline {
            at: started + budget,
            phase: Phase::Total,
            budget,
        });
        let connect = earliest(&[
            Some(PhaseDeadline {
                at: started + deadlines.connect,
                phase: Phase::Connect,
                budget: deadlines.connect,
            }),
            total,
        ]);
        let headers = earliest(&[
            deadlines.headers.map(|budget| PhaseDeadline {
                at: started + budget,
                phase: Phase::Headers,
                budget,
            }),
            total,
        ]);
        let (peer, pool) = self.peer_for(provider, deadlines.connect, connect).await?;
        let pools = &self.inner.pools;

        // A pooled connection may have been closed by the provider while idle; that shows up as
        // an error before any response byte. Try once more on a fresh connection then.
        let mut tries = 0;
        let (session, ticket, connected) = loop {
            tries += 1;
            let acquired = within(connect, pools.acquire(&pool, &peer, &provider.name))
                .await?
                .map_err(|e| connect_error(&e, deadlines.connect))?;
            let (mut session, reused, ticket) =
                (acquired.session, acquired.reused, acquired.ticket);
            session.set_read_timeout(None);
            let connected = started.elapsed();
            match within(headers, write_and_read_head(&mut session, &header, &body)).await? {
                Ok(()) => break (session, ticket, connected),
                Err(_) if reused && tries < 2 => {
                    pool.release(session, &peer, false).await;
                    continue;
                }
                // Refused, reset or closed before any response byte: a connection failure.
                Err(e) => {
                    pool.release(session, &peer, false).await;
                    let mut failure = ConnectFailure::from_pingora(&e);
                    failure.detail = format!("connection failed before the response head: {e}");
                    return Err(AttemptError::Connect(failure));
                }
            }
        };
        Ok(UpstreamResponse {
            conn: Some(Box::new(Conn {
                session,
                peer,
                _ticket: ticket,
            })),
            pool,
            started,
            connected,
            headers_after: started.elapsed(),
            total,
            idle: deadlines.idle,
            first_chunk: deadlines.first_chunk.map(|budget| PhaseDeadline {
                at: started + budget,
                phase: Phase::FirstChunk,
                budget,
            }),
        })
    }
}

/// FNV-1a: a provider's pool group from its name (a few bytes; SipHash costs ~1k instructions
/// a request for nothing here).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A failure to get a connection, as an attempt error.
fn connect_error(e: &pingora::Error, budget: Duration) -> AttemptError {
    match e.etype() {
        // pingora's own connect timer (same budget) may fire first.
        pingora::ErrorType::ConnectTimedout => AttemptError::Timeout {
            phase: Phase::Connect,
            budget,
        },
        _ => AttemptError::Connect(ConnectFailure::from_pingora(e)),
    }
}

async fn write_and_read_head(
    session: &mut HttpSession,
    header: &RequestHeader,
    body: &Bytes,
) -> pingora::Result<()> {
    session
        .write_request_header(Box::new(header.clone()))
        .await?;
    if !body.is_empty() {
        session.write_request_body(body.clone(), true).await?;
    }
    session.finish_request_body().await?;
    session.read_response_header().await
}

/// The connection (or HTTP/2 stream) an upstream response is read from.
struct Conn {
    session: HttpSession,
    peer: HttpPeer,
    /// Marks the connection active until this request is done with it.
    _ticket: Option<StreamTicket>,
}

impl Conn {
    /// Back to the pool if its response was read to the end, else closed (an HTTP/2 stream is
    /// reset, its connection kept).
    async fn release(self: Box<Self>, pool: &Pool) {
        let Conn {
            mut session, peer, ..
        } = *self;
        let done = session.response_done();
        pool.release(session, &peer, done).await;
    }
}

/// An upstream response whose headers arrived; the body is read chunk by chunk.
///
/// It owns its connection and finishes it exactly once: [`UpstreamResponse::finish`] where the
/// owner can wait for it, else when dropped — a connection read to the end goes back to the
/// pool from a task spawned on the drop, any other one is closed. No exit path has to remember.
pub struct UpstreamResponse {
    // Boxed: the response travels through every future of the request path by value, and
    // inline the session and peer are 1.1 KB copied at each await boundary (memmove was 7 % of
    // the gateway's CPU in the profile). `None` once finished.
    conn: Option<Box<Conn>>,
    pool: Arc<Pool>,
    started: Instant,
    /// Time to a connection (pooled or new), and to the response headers.
    connected: Duration,
    headers_after: Duration,
    total: Option<PhaseDeadline>,
    idle: Option<Duration>,
    first_chunk: Option<PhaseDeadline>,
}

impl Drop for UpstreamResponse {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let done = conn.session.response_done();
        if let HttpSession::H2(_) = conn.session {
            // Released now (no waiting): an unfinished stream is reset, its connection kept.
            let Conn { session, peer, .. } = *conn;
            if let HttpSession::H2(h2) = session {
                self.pool.release_h2(h2, &peer, done);
            }
            return;
        }
        if !done {
            // Not reusable: dropping the socket closes it.
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let pool = self.pool.clone();
            runtime.spawn(async move { conn.release(&pool).await });
        }
    }
}

impl UpstreamResponse {
    /// Returns the connection to the pool if the response was read to the end, else closes it.
    pub async fn finish(mut self) {
        if let Some(conn) = self.conn.take() {
            // Boxed: the release holds the session and peer by value (KBs); unboxed, every
            // future that awaits `finish` would be sized for them.
            Box::pin(conn.release(&self.pool)).await;
        }
    }

    pub fn header(&self) -> Option<&ResponseHeader> {
        self.conn.as_ref()?.session.response_header()
    }

    pub fn status(&self) -> u16 {
        self.header().map(|h| h.status.as_u16()).unwrap_or(0)
    }

    /// When the request was sent (the attempt's start).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Time from the start to a connection.
    pub fn connect_time(&self) -> Duration {
        self.connected
    }

    /// Time from the start to the response headers.
    pub fn headers_time(&self) -> Duration {
        self.headers_after
    }

    /// Whether the response is an SSE stream.
    pub fn is_event_stream(&self) -> bool {
        self.header()
            .and_then(|h| h.headers.get(http::header::CONTENT_TYPE))
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"))
    }

    /// The next body chunk (`None` at the end), bounded by the idle and total deadlines, and by
    /// the first-chunk deadline while `awaiting_first_content`.
    pub async fn next_chunk(
        &mut self,
        awaiting_first_content: bool,
    ) -> Result<Option<Bytes>, AttemptError> {
        let idle = self.idle.map(|budget| PhaseDeadline {
            at: Instant::now() + budget,
            phase: Phase::Idle,
            budget,
        });
        let first = if awaiting_first_content {
            self.first_chunk
        } else {
            None
        };
        let deadline = earliest(&[first, self.total, idle]);
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        within(deadline, conn.session.read_response_body())
            .await?
            .map_err(|e| AttemptError::Io(e.to_string()))
    }

    /// Reads the whole body, failing above `limit` bytes.
    pub async fn read_to_end(&mut self, limit: usize) -> Result<Bytes, AttemptError> {
        let mut body = BytesMut::new();
        while let Some(chunk) = self.next_chunk(false).await? {
            if body.len() + chunk.len() > limit {
                return Err(AttemptError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}
