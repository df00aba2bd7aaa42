//! Upstream connections like a browser's: HTTP/2 by ALPN where the provider offers it (many
//! requests and streams multiplexed on one connection, up to the provider's
//! `http2_max_streams`), HTTP/1.1 keep-alive otherwise, TLS sessions resumed on reconnect, and
//! connections opened ahead of need (`prewarm`).
//!
//! One pingora HTTP/2 connector (with its transport pool and TLS context) per trust set. Its
//! roots are handed over as a CA *file* ([`RootsFile`]), not per peer: pingora builds a fresh
//! TLS client config — root store, verifier and an empty session cache — for every connection
//! of a peer that carries its own CA list, so no session was ever resumed and every handshake
//! re-parsed ~150 roots.
//!
//! pingora opens a new connection for every request that finds none to reuse, so a burst at a
//! cold start would open one HTTP/2 connection per request. Here new HTTP/2-capable connections
//! to one peer are opened one at a time (a gate per pool key): the others wait for it and then
//! share it. A peer found to answer ALPN with HTTP/1.1 skips the gate from then on.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pingora::connectors::http::v2;
use pingora::connectors::http::v2::ConnectionRef;
use pingora::connectors::ConnectorOptions;
use pingora::protocols::http::client::HttpSession;
use pingora::protocols::http::v1::client::HttpSession as Http1Session;
use pingora::protocols::{Stream, ALPN};
use pingora::upstreams::peer::HttpPeer;
use pingora::ErrorType;

use super::conn::{ConnState, ConnTable, Protocol, StreamTicket, Trigger};
use super::tls::{RootsFile, TrustError, TrustRoots};
use crate::telemetry::metrics::ConnectionMetrics;

/// How long an idle pooled upstream connection is kept.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Pooled idle connections per trust set.
const POOL_SIZE: usize = 256;
/// Gates and learned HTTP/1.1-only peers kept before the unused ones are forgotten.
const PEER_MEMORY: usize = 1024;

/// One trust set's connector: its transport pool (HTTP/1.1 and TLS), its HTTP/2 pools.
pub struct Pool {
    h2: v2::Connector,
    /// The CA list to put on every peer when the connector could not take it as a file (then
    /// pingora builds a TLS config per connection and sessions are not resumed).
    peer_ca: Option<Arc<pingora::protocols::tls::CaType>>,
}

impl Pool {
    pub fn peer_ca(&self) -> Option<&Arc<pingora::protocols::tls::CaType>> {
        self.peer_ca.as_ref()
    }

    /// Gives a session back: to the pool when its response was read to the end (an HTTP/2
    /// stream always, reset first when unfinished — only that stream), else closed.
    pub async fn release(&self, session: HttpSession, peer: &HttpPeer, done: bool) {
        match session {
            HttpSession::H1(mut h1) => {
                if !done {
                    h1.shutdown().await;
                    return;
                }
                h1.respect_keepalive();
                if let Some(stream) = h1.reuse().await {
                    self.h2.transport().release_stream(
                        stream,
                        pingora::upstreams::peer::Peer::reuse_hash(peer),
                        Some(POOL_IDLE_TIMEOUT),
                    );
                }
            }
            HttpSession::H2(h2) => self.release_h2(h2, peer, done),
            HttpSession::Custom(_) => {}
        }
    }

    /// [`Pool::release`] for an HTTP/2 stream, which needs no waiting.
    pub fn release_h2(
        &self,
        mut h2: pingora::protocols::http::v2::client::Http2Session,
        peer: &HttpPeer,
        done: bool,
    ) {
        if !done {
            h2.shutdown();
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            self.h2
                .release_http_session(h2, peer, Some(POOL_IDLE_TIMEOUT));
        }
    }
}

/// A session for one request, whether it came from the pool, and its ticket on the connection.
pub struct Acquired {
    pub session: HttpSession,
    pub reused: bool,
    pub ticket: Option<StreamTicket>,
}

/// A connection just opened.
enum Opened {
    H1(Stream, Arc<ConnState>),
    H2(ConnectionRef, Arc<ConnState>),
}

/// Every trust set's pool, and what is known of each peer.
pub struct Pools {
    by_trust: Mutex<HashMap<Option<PathBuf>, Arc<Pool>>>,
    gates: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    h1_only: Mutex<HashSet<u64>>,
    conns: Arc<ConnTable>,
}

fn offers_h2(peer: &HttpPeer) -> bool {
    peer.options.alpn.get_max_http_version() == 2
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pools {
    pub fn new(metrics: Option<ConnectionMetrics>) -> Pools {
        Pools {
            by_trust: Mutex::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
            h1_only: Mutex::new(HashSet::new()),
            conns: ConnTable::new(metrics),
        }
    }

    /// The pool of a trust set (the bundled roots, plus `ca_file` when given), built on first use.
    pub fn pool(&self, ca_file: Option<&Path>) -> Result<Arc<Pool>, TrustError> {
        let key = ca_file.map(Path::to_path_buf);
        if let Some(pool) = lock(&self.by_trust).get(&key) {
            return Ok(pool.clone());
        }
        // Built without the lock held: it parses the roots.
        let pool = Arc::new(self.build(ca_file)?);
        Ok(lock(&self.by_trust).entry(key).or_insert(pool).clone())
    }

    fn build(&self, ca_file: Option<&Path>) -> Result<Pool, TrustError> {
        let roots = TrustRoots::load(ca_file)?;
        let mut options = ConnectorOptions::new(POOL_SIZE);
        match RootsFile::write(&roots.pem()) {
            Ok(file) => {
                options.ca_file = Some(file.path().to_string_lossy().into_owned());
                // pingora's connector panics on a CA file it cannot load; ours holds only
                // certificates rustls accepted, but a panic here must not take a worker down.
                let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    v2::Connector::new(Some(options.clone()))
                }));
                if let Ok(h2) = built {
                    return Ok(Pool { h2, peer_ca: None });
                }
                tracing::warn!(
                    "the TLS connector refused its CA list; TLS sessions will not be resumed"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot hand the CA list to the TLS connector; TLS sessions will not be resumed")
            }
        }
        options.ca_file = None;
        let h2 = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            v2::Connector::new(Some(options))
        }))
        .map_err(|_| TrustError::Connector("the platform's CA store cannot be loaded".into()))?;
        Ok(Pool {
            h2,
            peer_ca: Some(roots.ca_list()),
        })
    }

    /// A session to `peer`: a pooled HTTP/2 stream or HTTP/1.1 connection, else a new one.
    pub async fn acquire(
        &self,
        pool: &Pool,
        peer: &HttpPeer,
        provider: &str,
    ) -> pingora::Result<Acquired> {
        let h2 = offers_h2(peer);
        if let Some(found) = self.reuse(pool, peer, h2).await? {
            return Ok(found);
        }
        // Boxed: opening (TCP, TLS, HTTP/2 handshake) is a large future and the rare path;
        // inline it would size — and copy — every request's acquisition for it.
        Box::pin(self.acquire_new(pool, peer, provider, h2)).await
    }

    /// [`Pools::acquire`] when nothing pooled was free: a new connection, one at a time per
    /// HTTP/2-capable peer.
    async fn acquire_new(
        &self,
        pool: &Pool,
        peer: &HttpPeer,
        provider: &str,
        h2: bool,
    ) -> pingora::Result<Acquired> {
        let key = pingora::upstreams::peer::Peer::reuse_hash(peer);
        if !h2 || lock(&self.h1_only).contains(&key) {
            return self.open_for_request(pool, peer, provider).await;
        }
        let gate = self.gate(key);
        let _one_at_a_time = gate.lock().await;
        if let Some(found) = self.reuse(pool, peer, h2).await? {
            return Ok(found);
        }
        self.open_for_request(pool, peer, provider).await
    }

    /// Opens one connection to `peer` and pools it idle.
    pub async fn prewarm(
        &self,
        pool: &Pool,
        peer: &HttpPeer,
        provider: &str,
    ) -> pingora::Result<Protocol> {
        match self.open(pool, peer, provider, Trigger::Prewarm).await? {
            Opened::H1(stream, _) => {
                let key = pingora::upstreams::peer::Peer::reuse_hash(peer);
                pool.h2
                    .transport()
                    .release_stream(stream, key, Some(POOL_IDLE_TIMEOUT));
                Ok(Protocol::H1)
            }
            Opened::H2(conn, _) => {
                let stream = spawn_stream(&conn).await?;
                pool.h2
                    .release_http_session(stream, peer, Some(POOL_IDLE_TIMEOUT));
                Ok(Protocol::H2)
            }
        }
    }

    async fn reuse(
        &self,
        pool: &Pool,
        peer: &HttpPeer,
        h2: bool,
    ) -> pingora::Result<Option<Acquired>> {
        if h2 {
            if let Some(stream) = pool.h2.reused_http_session(peer).await? {
                let ticket = self.conns.ticket(stream.fd());
                return Ok(Some(Acquired {
                    session: HttpSession::H2(stream),
                    reused: true,
                    ticket,
                }));
            }
        }
        if let Some(stream) = pool.h2.transport().reused_stream(peer).await {
            let ticket = self.conns.ticket(stream.id());
            return Ok(Some(Acquired {
                session: HttpSession::H1(Http1Session::new_with_options(stream, peer)),
                reused: true,
                ticket,
            }));
        }
        Ok(None)
    }

    async fn open_for_request(
        &self,
        pool: &Pool,
        peer: &HttpPeer,
        provider: &str,
    ) -> pingora::Result<Acquired> {
        let (session, state) = match self.open(pool, peer, provider, Trigger::Request).await? {
            Opened::H1(stream, state) => (
                HttpSession::H1(Http1Session::new_with_options(stream, peer)),
                state,
            ),
            Opened::H2(conn, state) => {
                let stream = spawn_stream(&conn).await?;
                if conn.more_streams_allowed() {
                    let key = pingora::upstreams::peer::Peer::reuse_hash(peer);
                    pool.h2.in_use_pool().insert(key, conn);
                }
                (HttpSession::H2(stream), state)
            }
        };
        Ok(Acquired {
            session,
            reused: false,
            ticket: Some(StreamTicket::new(state)),
        })
    }

    /// TCP, TLS (the protocol by ALPN) and, for HTTP/2, the connection preface.
    async fn open(
        &self,
        pool: &Pool,
        peer: &HttpPeer,
        provider: &str,
        trigger: Trigger,
    ) -> pingora::Result<Opened> {
        let started = Instant::now();
        let stream = pool.h2.transport().new_stream(peer).await?;
        let protocol = match stream.selected_alpn_proto() {
            Some(ALPN::H2) => Protocol::H2,
            _ => Protocol::H1,
        };
        if protocol == Protocol::H1 && offers_h2(peer) {
            self.learn_h1_only(pingora::upstreams::peer::Peer::reuse_hash(peer));
        }
        let (stream, state) = self.conns.track(stream, provider, protocol);
        let opened = match protocol {
            Protocol::H1 => Opened::H1(stream, state),
            Protocol::H2 => {
                let mut settings = v2::H2HandshakeSettings::new();
                settings.max_streams = peer.options.max_h2_streams;
                settings.ping_interval = peer.options.h2_ping_interval;
                Opened::H2(v2::handshake(stream, settings).await?, state)
            }
        };
        self.conns
            .opened(provider, protocol, trigger, started.elapsed());
        Ok(opened)
    }

    fn gate(&self, key: u64) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = lock(&self.gates);
        if gates.len() >= PEER_MEMORY {
            gates.retain(|_, g| Arc::strong_count(g) > 1);
        }
        gates.entry(key).or_default().clone()
    }

    fn learn_h1_only(&self, key: u64) {
        let mut known = lock(&self.h1_only);
        if known.len() >= PEER_MEMORY {
            known.clear();
        }
        known.insert(key);
    }
}

async fn spawn_stream(
    conn: &ConnectionRef,
) -> pingora::Result<pingora::protocols::http::v2::client::Http2Session> {
    conn.spawn_stream().await?.ok_or_else(|| {
        pingora::Error::explain(
            ErrorType::H2Error,
            "a new HTTP/2 connection has no free stream (the provider may have sent GOAWAY)",
        )
    })
}
