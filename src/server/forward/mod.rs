//! Forward-proxy mode (`HTTPS_PROXY` / `HTTP_PROXY`): apps that cannot change their base URL
//! still get every gateway feature.
//!
//! [`ForwardApp`] is the proxy listener's pingora `ServerApp`. It peeks at the first bytes of a
//! connection: anything but `CONNECT` goes to the HTTP proxy app unchanged. A `CONNECT` head is
//! parsed strictly ([`connect`]) and decided against the snapshot's `forward:` block:
//! - an `intercept` host: `200`, TLS terminated with a certificate minted for that host from the
//!   local CA ([`ca`], [`intercept`]), and the decrypted stream handed to the same HTTP app, so
//!   the requests run the ingress → router → providers path (HTTP/1.1, or HTTP/2 by ALPN);
//! - an `allow_hosts` host and port (a bare host admits port 443): `200` and a byte-for-byte
//!   tunnel once the upstream connected;
//! - anything else, or no `forward:` block: `403`. The sidecar is never an open proxy.
//!
//! A tunnel or forwarded request whose resolved address is the gateway itself (one of its own
//! listening ports on a loopback, unspecified or local address) is refused with `403` whatever
//! `allow_hosts` says: names are resolved first and the check runs on the addresses actually
//! connected to, so a DNS name pointing at 127.0.0.1 cannot reach the admin port.
//!
//! Plain-HTTP absolute-form requests (`GET http://host/…`) reach the HTTP app, which asks
//! [`route_request`]: intercepted hosts run the gateway path, allowed hosts are forwarded by
//! pingora's own proxy pipeline ([`PlainForward`]), others get `403`.

pub mod connect;
pub mod intercept;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::prelude::HttpPeer;
use pingora::protocols::http::ServerSession;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::Stream;
use pingora::proxy::{HttpProxy, ProxyHttp};
use pingora::server::ShutdownWatch;
use prometheus::IntCounter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::downstream::{self, Slot};
/// The CA material and host patterns are config vocabulary (the snapshot holds them); they are
/// re-exported at their old paths, `server::forward::{ca, hosts}`.
pub use crate::config::{ca, hosts};
use crate::config::{ForwardSettings, RouteConfig, Snapshot};
use crate::error::GatewayError;
use crate::telemetry::metrics::ForwardMode;
use crate::telemetry::Metrics;
use crate::upstream::dns::DnsCache;
use connect::{Authority, ConnectError};
pub use intercept::{intercepted_host, Intercepted};

/// How long a `CONNECT` head may take to arrive whole.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshake with the app on an intercepted connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Name resolution for a tunnel or a forwarded plain-HTTP request.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// TCP connect for a tunnel or a forwarded plain-HTTP request.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// State shared by the listener app and the HTTP app: name resolution, minted-certificate
/// acceptors (both outlive reloads) and the connection counters.
pub struct Forwarder {
    pub dns: DnsCache,
    /// The gateway's own listening addresses (proxy and admin): never a tunnel's destination.
    own: Vec<SocketAddr>,
    pub acceptors: intercept::Acceptors,
    intercepted: IntCounter,
    tunnelled: IntCounter,
    refused: IntCounter,
}

/// `switchyard_forward_connections_total{mode}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Intercept,
    Tunnel,
    Refused,
}

/// Why a tunnel or forwarded request was not connected: the status to answer and the client's
/// error. Details with resolved addresses go to the log only.
pub type ConnectFailure = (u16, GatewayError);

/// The refusal of a destination that is the gateway itself.
fn self_loop(target: &str) -> ConnectFailure {
    (
        403,
        GatewayError::Forbidden(format!(
            "proxying to {target} refused: it is the gateway's own listener"
        )),
    )
}

fn unreachable(target: &str, reason: &str) -> GatewayError {
    GatewayError::UpstreamUnreachable {
        target: target.to_string(),
        reason: reason.to_string(),
    }
}

/// Whether `addr` is one of `own` listening addresses: the same port, and an address that
/// reaches this host (loopback, unspecified, the listener's own address, or any local one).
pub fn reaches_own(own: &[SocketAddr], addr: SocketAddr) -> bool {
    let ip = addr.ip().to_canonical();
    own.iter().any(|o| {
        o.port() == addr.port()
            && (ip.is_loopback()
                || ip.is_unspecified()
                || ip == o.ip().to_canonical()
                || is_local(ip))
    })
}

/// Whether `ip` is an address of this host: binding to it succeeds only then. Runs only for a
/// destination on one of our own ports.
fn is_local(ip: std::net::IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

impl Forwarder {
    /// `own`: the gateway's listening addresses (`listen`, `admin_listen`).
    pub fn new(metrics: &Metrics, own: &[SocketAddr]) -> Self {
        let c = &metrics.forward_connections_total;
        Forwarder {
            dns: DnsCache::new(),
            own: own.to_vec(),
            acceptors: intercept::Acceptors::new(),
            intercepted: c.with(&ForwardMode::Intercept),
            tunnelled: c.with(&ForwardMode::Tunnel),
            refused: c.with(&ForwardMode::Refused),
        }
    }

    pub fn count(&self, mode: Mode) {
        match mode {
            Mode::Intercept => self.intercepted.inc(),
            Mode::Tunnel => self.tunnelled.inc(),
            Mode::Refused => self.refused.inc(),
        }
    }

    /// `host:port` resolved asynchronously within [`RESOLVE_TIMEOUT`], for a forwarded
    /// plain-HTTP request; the gateway's own address is refused (403).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, ConnectFailure> {
        let target = Authority {
            host: host.to_string(),
            port,
        }
        .to_string();
        let addr = match tokio::time::timeout(RESOLVE_TIMEOUT, self.dns.resolve(host, port)).await {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => {
                tracing::info!(%target, error = %e, "forward: cannot resolve");
                return Err((
                    502,
                    unreachable(&target, "the host name cannot be resolved"),
                ));
            }
            Err(_) => return Err((504, unreachable(&target, "name resolution timed out"))),
        };
        if reaches_own(&self.own, addr) {
            tracing::warn!(%target, %addr, "forward: refused a request to the gateway itself");
            return Err(self_loop(&target));
        }
        Ok(addr)
    }

    /// A TCP connection for a tunnel: every address of `host` tried in turn, within
    /// [`RESOLVE_TIMEOUT`] to resolve and [`CONNECT_TIMEOUT`] to connect in all. Refused (403)
    /// when any address is the gateway's own listener. Returns the status to answer with and the
    /// error, on failure.
    pub async fn connect(&self, target: &Authority) -> Result<TcpStream, ConnectFailure> {
        let (host, port) = (target.host.as_str(), target.port);
        let shown = target.to_string();
        let addrs: Vec<SocketAddr> = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => {
                match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
                    .await
                {
                    Ok(Ok(a)) => a.take(8).collect(),
                    Ok(Err(e)) => {
                        tracing::info!(target = %shown, error = %e, "tunnel: cannot resolve");
                        let e = unreachable(&shown, "the host name cannot be resolved");
                        return Err((502, e));
                    }
                    Err(_) => return Err((504, unreachable(&shown, "name resolution timed out"))),
                }
            }
        };
        if let Some(addr) = addrs.iter().find(|a| reaches_own(&self.own, **a)) {
            tracing::warn!(target = %shown, %addr, "tunnel: refused a CONNECT into the gateway itself");
            return Err(self_loop(&shown));
        }
        let attempts = async {
            let mut last = "the host name resolved to no address";
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(s) => return Ok(s),
                    Err(e) => {
                        // The resolved address stays in the log: the client named the host.
                        tracing::info!(target = %shown, %addr, error = %e, "tunnel: cannot connect");
                        last = match e.kind() {
                            std::io::ErrorKind::ConnectionRefused => "the connection was refused",
                            _ => "the connection failed",
                        };
                    }
                }
            }
            Err((502, unreachable(&shown, last)))
        };
        tokio::time::timeout(CONNECT_TIMEOUT, attempts)
            .await
            .unwrap_or_else(|_| {
                let why = format!(
                    "connecting took longer than {} s",
                    CONNECT_TIMEOUT.as_secs()
                );
                Err((504, unreachable(&shown, &why)))
            })
    }
}

/// What forward-proxy mode does with one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Intercept,
    Tunnel,
    Refuse,
}

/// `intercept` first (any port: the gateway path serves it), then `allow_hosts` (host and port;
/// a bare entry admits `default_port`), else refuse; no `forward:` block refuses everything.
pub fn decide(
    forward: Option<&ForwardSettings>,
    host: &str,
    port: u16,
    default_port: u16,
) -> Decision {
    let Some(f) = forward else {
        return Decision::Refuse;
    };
    if f.intercept_rule(host).is_some() {
        Decision::Intercept
    } else if f
        .allow_hosts
        .iter()
        .any(|p| p.admits(host, port, default_port))
    {
        Decision::Tunnel
    } else {
        Decision::Refuse
    }
}

fn refusal(forward: Option<&ForwardSettings>, target: &str) -> String {
    if forward.is_none() {
        format!("proxying to {target} refused: forward-proxy mode is not configured (no forward: block)")
    } else {
        format!("proxying to {target} refused: the host and port are in neither forward.intercept nor forward.allow_hosts")
    }
}

/// How the HTTP app serves one request, as far as forward-proxy mode is concerned.
pub enum RequestRoute<'a> {
    /// Base-URL mode: an origin-form request that did not arrive through interception.
    Gateway,
    /// The gateway path for an intercepted host; the route is the host's provider, run when the
    /// request selects no virtual key or config and there is no `default_config`.
    Intercepted(Option<&'a Arc<RouteConfig>>),
    /// A plain-HTTP request to an allowed host: forwarded unchanged.
    Forward { host: String, port: u16 },
    /// Refused with this error (403, or 400 for an unusable target).
    Refused(GatewayError),
}

/// Decides a request from its connection (intercepted or not) and its target (absolute-form or
/// not). Counts plain-HTTP proxy requests in `switchyard_forward_connections_total`.
pub fn route_request<'a>(
    snapshot: &'a Snapshot,
    session: &ServerSession,
    forwarder: &Forwarder,
) -> RequestRoute<'a> {
    let forward = snapshot.forward.as_ref();
    if let Some(host) = intercepted_host(session) {
        return RequestRoute::Intercepted(forward.and_then(|f| f.route_for(host)));
    }
    // pingora keeps only the path on the parsed Uri (and has checked that `Host` matches the
    // target's authority); the raw target still holds an absolute form.
    let raw = session.req_header().raw_path();
    let is_absolute = |scheme: &[u8]| {
        raw.len() > scheme.len() && raw[..scheme.len()].eq_ignore_ascii_case(scheme)
    };
    if !is_absolute(b"http://") && !is_absolute(b"https://") {
        return RequestRoute::Gateway;
    }
    let uri = http::Uri::try_from(raw).ok();
    let Some(authority) = uri.as_ref().and_then(|u| u.authority()) else {
        forwarder.count(Mode::Refused);
        return RequestRoute::Refused(GatewayError::InvalidRequest(
            "the absolute-form request target cannot be parsed".into(),
        ));
    };
    let port = authority.port_u16().unwrap_or(80);
    let Some(host) = hosts::normalize(authority.host()) else {
        forwarder.count(Mode::Refused);
        return RequestRoute::Refused(GatewayError::InvalidRequest(
            "the request target's host is not a host name or address".into(),
        ));
    };
    // `http://127.0.0.1:8080/v1/…` sent to us as a proxy is a base-URL request.
    if is_self(&host, port, snapshot.listen) {
        return RequestRoute::Gateway;
    }
    if !is_absolute(b"http://") {
        forwarder.count(Mode::Refused);
        return RequestRoute::Refused(GatewayError::InvalidRequest(
            "only http:// targets can be proxied without CONNECT".into(),
        ));
    }
    match decide(forward, &host, port, hosts::DEFAULT_HTTP_PORT) {
        Decision::Intercept => {
            forwarder.count(Mode::Intercept);
            RequestRoute::Intercepted(forward.and_then(|f| f.route_for(&host)))
        }
        Decision::Tunnel => {
            forwarder.count(Mode::Tunnel);
            RequestRoute::Forward { host, port }
        }
        Decision::Refuse => {
            forwarder.count(Mode::Refused);
            let target = Authority { host, port }.to_string();
            RequestRoute::Refused(GatewayError::Forbidden(refusal(forward, &target)))
        }
    }
}

fn is_self(host: &str, port: u16, listen: SocketAddr) -> bool {
    if port != listen.port() {
        return false;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip == listen.ip() || (ip.is_loopback() && listen.ip().is_loopback()),
        Err(_) => host == "localhost" && listen.ip().is_loopback(),
    }
}

/// The HTTP app's per-request context: set when a plain-HTTP request to an allowed host is
/// handed to pingora's proxy pipeline.
#[derive(Default)]
pub struct PlainForward {
    pub peer: Option<Box<HttpPeer>>,
}

impl PlainForward {
    /// The peer for `addr`, plain HTTP, with bounded connect and idle times.
    pub fn to(addr: SocketAddr) -> Self {
        let mut peer = HttpPeer::new(addr, false, String::new());
        peer.options.connection_timeout = Some(CONNECT_TIMEOUT);
        peer.options.total_connection_timeout = Some(CONNECT_TIMEOUT);
        peer.options.read_timeout = Some(Duration::from_secs(300));
        peer.options.write_timeout = Some(Duration::from_secs(300));
        PlainForward {
            peer: Some(Box::new(peer)),
        }
    }

    /// The upstream head of a forwarded request: origin-form target (pingora would otherwise
    /// send the raw absolute form it received), no proxy headers. `Host` is the client's,
    /// which pingora checked against the target's authority.
    pub fn rewrite(head: &mut pingora::http::RequestHeader) {
        let origin = head
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse::<http::Uri>();
        if let Ok(origin) = origin {
            head.set_uri(origin);
        }
        head.remove_header("proxy-connection");
        head.remove_header("proxy-authorization");
    }
}

/// The proxy listener's app: `CONNECT` handling in front of the HTTP proxy app.
pub struct ForwardApp<SV: ProxyHttp> {
    pub proxy: Arc<HttpProxy<SV>>,
    pub live: Arc<ArcSwap<Snapshot>>,
    pub forwarder: Arc<Forwarder>,
    /// Connection cap and per-connection bounds (`limits:`).
    pub downstream: Arc<downstream::Listener>,
}

#[async_trait]
impl<SV> ServerApp for ForwardApp<SV>
where
    SV: ProxyHttp + Send + Sync + 'static,
    <SV as ProxyHttp>::CTX: Send + Sync,
{
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let accepted = tokio::time::Instant::now();
        let (settings, max_connections) = {
            let snapshot = self.live.load();
            let limits = &snapshot.limits;
            (downstream::Settings::from(limits), limits.max_connections)
        };
        // Over the cap: dropping the stream closes it at once, before it costs any memory.
        let slot = self.downstream.admit(max_connections)?;
        // Only a plain TCP connection can carry a CONNECT (and be rewound after peeking).
        if stream.as_any().is::<L4Stream>() {
            let mut first = [0u8; 8];
            let peek = stream.try_peek(&mut first);
            match tokio::time::timeout(settings.header_timeout, peek).await {
                Ok(Ok(true)) if &first == b"CONNECT " => {
                    // Checked above; the `Any` box must not live across an await (not `Send`).
                    let l4 = stream.into_any().downcast::<L4Stream>().ok()?;
                    // Boxed: the CONNECT path (TLS, then a whole HTTP session inside) is large,
                    // and inline it would size every plain connection's future too.
                    Box::pin(self.connect(*l4, shutdown, slot, settings)).await;
                    return None;
                }
                Ok(Ok(_)) => {}
                // Closed, failed or silent before sending 8 bytes: nothing to serve.
                _ => return None,
            }
        }
        let stream = self.downstream.guard(stream, settings, accepted, slot);
        ServerApp::process_new(&self.proxy, stream, shutdown).await
    }

    async fn cleanup(&self) {
        ServerApp::cleanup(self.proxy.as_ref()).await;
    }
}

impl<SV> ForwardApp<SV>
where
    SV: ProxyHttp + Send + Sync + 'static,
    <SV as ProxyHttp>::CTX: Send + Sync,
{
    /// One `CONNECT` connection, from its head to the end of the tunnel or intercepted session.
    async fn connect(
        self: &Arc<Self>,
        mut client: L4Stream,
        shutdown: &ShutdownWatch,
        slot: Slot,
        settings: downstream::Settings,
    ) {
        let (target, rest) = match read_head(&mut client).await {
            Ok(parsed) => parsed,
            Err(e) => {
                self.forwarder.count(Mode::Refused);
                tracing::debug!(error = %e, "CONNECT refused");
                let status = if matches!(e, HeadError::Timeout) {
                    408
                } else {
                    400
                };
                let error = GatewayError::InvalidRequest(e.to_string());
                respond(&mut client, status, Some(&error)).await;
                return;
            }
        };
        // One snapshot load per connection; dropped before the long-lived part.
        let snapshot = self.live.load_full();
        let forward = snapshot.forward.as_ref();
        match decide(
            forward,
            &target.host,
            target.port,
            hosts::DEFAULT_CONNECT_PORT,
        ) {
            Decision::Refuse => {
                self.forwarder.count(Mode::Refused);
                tracing::info!(target = %target, "CONNECT refused: host not intercepted or allowed");
                let error = GatewayError::Forbidden(refusal(forward, &target.to_string()));
                respond(&mut client, 403, Some(&error)).await;
            }
            Decision::Tunnel => {
                drop(snapshot);
                self.tunnel(client, &target, &rest).await;
            }
            Decision::Intercept => {
                let Some(ca) = forward.map(|f| f.ca.clone()) else {
                    return;
                };
                drop(snapshot);
                self.forwarder.count(Mode::Intercept);
                let guard = (slot, settings);
                self.intercept(client, &target, &rest, &ca, shutdown, guard)
                    .await;
            }
        }
    }

    async fn intercept(
        self: &Arc<Self>,
        mut client: L4Stream,
        target: &Authority,
        rest: &[u8],
        ca: &ca::LocalCa,
        shutdown: &ShutdownWatch,
        (slot, settings): (Slot, downstream::Settings),
    ) {
        let acceptor = match self.forwarder.acceptors.get(ca, &target.host) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(target = %target, error = %e, "cannot mint a certificate");
                let error = GatewayError::Internal("cannot mint a certificate".into());
                respond(&mut client, 500, Some(&error)).await;
                return;
            }
        };
        if !respond(&mut client, 200, None).await {
            return;
        }
        if !rest.is_empty() {
            // The ClientHello, sent before our 200 arrived.
            client.rewind(rest);
        }
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.tls_handshake(client))
            .await
        {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                // A client that does not trust the CA, or asked for another name.
                tracing::info!(target = %target, error = %e, "intercepted TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::info!(target = %target, "intercepted TLS handshake timed out");
                return;
            }
        };
        // The head deadline runs from the end of the handshake: the CONNECT had its own.
        let started = tokio::time::Instant::now();
        let tls = self
            .downstream
            .guard(Box::new(tls), settings, started, slot);
        ServerApp::process_new(&self.proxy, tls, shutdown).await;
    }

    async fn tunnel(&self, mut client: L4Stream, target: &Authority, rest: &[u8]) {
        let connected = self.forwarder.connect(target).await;
        // A CONNECT into the gateway itself counts as refused; anything else as a tunnel.
        let refused = matches!(connected, Err((403, _)));
        self.forwarder
            .count(if refused { Mode::Refused } else { Mode::Tunnel });
        let mut upstream = match connected {
            Ok(s) => s,
            Err((status, error)) => {
                respond(&mut client, status, Some(&error)).await;
                return;
            }
        };
        let _ = upstream.set_nodelay(true);
        if !respond(&mut client, 200, None).await {
            return;
        }
        if !rest.is_empty() && upstream.write_all(rest).await.is_err() {
            return;
        }
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => {
                tracing::debug!(target = %target, up, down, "tunnel closed")
            }
            Err(e) => tracing::debug!(target = %target, error = %e, "tunnel ended"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum HeadError {
    #[error(transparent)]
    Parse(#[from] ConnectError),
    #[error("the connection closed before the CONNECT head ended")]
    Closed,
    #[error("the CONNECT head did not arrive within {} s", HEAD_TIMEOUT.as_secs())]
    Timeout,
}

/// Reads the `CONNECT` head within [`HEAD_TIMEOUT`]; returns the target and the bytes that came
/// after the head.
async fn read_head(client: &mut L4Stream) -> Result<(Authority, Vec<u8>), HeadError> {
    tokio::time::timeout(HEAD_TIMEOUT, read_head_untimed(client))
        .await
        .unwrap_or(Err(HeadError::Timeout))
}

async fn read_head_untimed(client: &mut L4Stream) -> Result<(Authority, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 2048];
    loop {
        let n = client
            .read(&mut chunk)
            .await
            .map_err(|_| HeadError::Closed)?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some((target, len)) = connect::parse_head(&buf)? {
            return Ok((target, buf.split_off(len)));
        }
    }
}

/// Writes a response head (and an OpenAI-style error body) to a `CONNECT` client; every status
/// but 200 closes the connection. Returns whether the write succeeded.
async fn respond(client: &mut L4Stream, status: u16, error: Option<&GatewayError>) -> bool {
    let reason = match status {
        200 => "Connection Established",
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        502 => "Bad Gateway",
        504 => "Gateway Timeout",
        _ => "Internal Server Error",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n").into_bytes();
    if let Some(e) = error {
        let body = e.to_json();
        out.extend_from_slice(
            format!(
                "content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&body);
    } else {
        out.extend_from_slice(b"\r\n");
    }
    let ok = client.write_all(&out).await.is_ok() && client.flush().await.is_ok();
    if status != 200 {
        let _ = client.shutdown().await;
        linger(client).await;
    }
    ok
}

/// Reads and discards what the client is still sending (bounded in bytes and time) before the
/// connection is dropped: closing a socket with unread data sends a reset, which can destroy
/// the error response before the client reads it.
async fn linger(client: &mut L4Stream) {
    let drain = async {
        let mut scratch = [0u8; 4096];
        let mut total = 0usize;
        while total < 256 * 1024 {
            match client.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateways_own_listeners_are_recognised_however_addressed() {
        let own: Vec<SocketAddr> = vec![
            "127.0.0.1:8080".parse().unwrap(),
            "0.0.0.0:9090".parse().unwrap(),
        ];
        for addr in [
            "127.0.0.1:8080",
            "127.9.9.9:8080",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:9090",
            "0.0.0.0:9090",
            "[::]:9090",
        ] {
            assert!(reaches_own(&own, addr.parse().unwrap()), "{addr}");
        }
        for addr in ["127.0.0.1:8081", "192.0.2.1:9090", "[2001:db8::1]:8080"] {
            assert!(!reaches_own(&own, addr.parse().unwrap()), "{addr}");
        }
    }

    #[test]
    fn self_addresses_are_base_url_requests() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(is_self("127.0.0.1", 8080, listen));
        assert!(is_self("localhost", 8080, listen));
        assert!(is_self("::1", 8080, listen));
        assert!(!is_self("127.0.0.1", 80, listen));
        assert!(!is_self("api.openai.com", 8080, listen));
    }
}
