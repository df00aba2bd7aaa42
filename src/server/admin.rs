//! The admin service on `admin_listen`: `/metrics`, `/healthz`, `/readyz`, `/config` (the
//! live config with every secret redacted), and the console (`/` and its files, the `/events`
//! stream, `/api/console`, `/api/requests/{id}`; see [`crate::console`]). Read-only: every route
//! is GET (or HEAD); anything else is 405, and nothing here changes state.
//!
//! Closed by default (see `docs/security.md`): it listens on loopback unless configured;
//! a `Host` that is not an IP literal, `localhost` or an `admin.allowed_hosts` name is answered
//! 421 (a DNS-rebinding page in a browser sends its own host name); with `admin.token_file`,
//! everything but the probes and `/metrics` needs the token (`Authorization: Bearer`, or the
//! cookie the console gets from `/?token=…` once).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use http::{Response, StatusCode};
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;

use super::shutdown::Drain;
use crate::config::watch::Reloader;
use crate::config::Snapshot;
use crate::console::{assets, Console};
use crate::telemetry::Metrics;

/// The cookie the console carries after `?token=`: a digest of the token, not the token.
const COOKIE: &str = "switchyard_admin";
/// Routes that never need the token: kubelet probes and the Prometheus scrape.
const OPEN_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Keep-alive for admin connections (scrapes, probes, the console's own requests).
const KEEPALIVE_SECS: u64 = 60;
/// How long `/readyz` waits for the proxy listener to accept a probe connection.
const PROXY_PROBE_TIMEOUT: Duration = Duration::from_millis(250);
/// A viewer that cannot take a frame within this long is dropped.
const EVENT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Admin {
    pub live: Arc<ArcSwap<Snapshot>>,
    pub metrics: Arc<Metrics>,
    pub drain: Arc<Drain>,
    /// Start-up pre-warming holds `/readyz` back (for a bounded time).
    pub prewarm: Arc<crate::upstream::Prewarmer>,
    /// Set once the proxy listener was seen accepting: the services start side by side, and
    /// this port may answer before the proxy's is bound (or while pingora retries a bind).
    pub proxy_up: std::sync::atomic::AtomicBool,
    pub reloader: Option<Arc<Reloader>>,
    pub console: Arc<Console>,
    /// The request store, for the analytics API (`/v1/analytics/*`).
    pub store: Option<Arc<crate::store::Store>>,
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    let len = resp.body().len();
    let headers = resp.headers_mut();
    headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    resp
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Vec<u8>> {
    respond(status, "application/json", value.to_string().into_bytes())
}

fn error(status: StatusCode, code: &str, message: String) -> Response<Vec<u8>> {
    json(
        status,
        serde_json::json!({"error": {"message": message, "type": "invalid_request_error", "code": code}}),
    )
}

/// An embedded console file, with the page's security headers.
fn asset(content_type: &str, body: &str) -> Response<Vec<u8>> {
    let mut resp = respond(StatusCode::OK, content_type, body.as_bytes().to_vec());
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(assets::CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        http::header::REFERRER_POLICY,
        http::HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        http::header::X_FRAME_OPTIONS,
        http::HeaderValue::from_static("DENY"),
    );
    resp
}

/// Whether a `Host` header names this server in a way no DNS-rebinding page can: an IP
/// literal (v4, or bracketed v6) or `localhost`, with any port, or a configured name.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, port)) = rest.split_once(']') else {
            return false;
        };
        let port_ok = port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        return port_ok && v6.parse::<std::net::Ipv6Addr>().is_ok();
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                name
            }
            Some(_) => return false,
            None => host,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// SHA-256 of `parts`, so comparisons run over fixed-length digests.
fn digest(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Compares two digests without an early exit (the time does not depend on where they differ).
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the console cookie holds for `token`: a digest, so the cookie is not the token.
fn cookie_value(token: &str) -> String {
    hex::encode(digest(&[b"switchyard-admin-cookie\0", token.as_bytes()]))
}

/// How a request presented the admin token.
enum Presented<'a> {
    None,
    Bearer(&'a str),
    Cookie(&'a str),
    Query(&'a str),
}

fn presented(req: &pingora::http::RequestHeader) -> Presented<'_> {
    let header = |name| {
        req.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
    };
    if let Some(t) = header(http::header::AUTHORIZATION).find_map(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    }) {
        return Presented::Bearer(t.trim());
    }
    if let Some(t) = req
        .uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")))
    {
        return Presented::Query(t);
    }
    if let Some(c) = header(http::header::COOKIE)
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
    {
        return Presented::Cookie(c);
    }
    Presented::None
}

impl Admin {
    /// The Host check and the token check, before any route: `Some` is the answer to send
    /// instead (421, 401, or the redirect that turns `?token=` into the console cookie).
    fn gate(&self, req: &pingora::http::RequestHeader) -> Option<Response<Vec<u8>>> {
        let snapshot = self.live.load();
        let admin = &snapshot.admin;
        // A request without Host (HTTP/1.0 tools) cannot come from a browser page.
        let host = req.headers.get(http::header::HOST).map(|h| h.to_str());
        if let Some(host) = host {
            if !host.is_ok_and(|h| host_allowed(h, &admin.allowed_hosts)) {
                return Some(error(
                    StatusCode::MISDIRECTED_REQUEST,
                    "misdirected_request",
                    "the admin port answers only to an IP address, localhost or a name in admin.allowed_hosts".into(),
                ));
            }
        }
        let token = admin.token.as_ref()?;
        if OPEN_ROUTES.contains(&req.uri.path()) {
            return None;
        }
        match presented(req) {
            Presented::Bearer(t) if admin.token_matches(t) => None,
            Presented::Cookie(c)
                if same(
                    &digest(&[c.as_bytes()]),
                    &digest(&[cookie_value(token.expose()).as_bytes()]),
                ) =>
            {
                None
            }
            Presented::Query(t) if admin.token_matches(t) => {
                // Once: the token leaves the address bar and history; the page and its
                // requests (fetch, EventSource) carry the cookie from here on.
                let mut resp = respond(StatusCode::SEE_OTHER, "text/plain", Vec::new());
                let cookie = format!(
                    "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
                    cookie_value(token.expose())
                );
                let location = req.uri.path().to_string();
                for (name, value) in [
                    (http::header::SET_COOKIE, cookie),
                    (http::header::LOCATION, location),
                ] {
                    if let Ok(v) = http::HeaderValue::from_str(&value) {
                        resp.headers_mut().insert(name, v);
                    }
                }
                Some(resp)
            }
            _ => {
                let mut resp = error(
                    StatusCode::UNAUTHORIZED,
                    "admin_token_required",
                    "this admin route needs the admin token: send Authorization: Bearer <token>, or open /?token=<token> once in a browser".into(),
                );
                resp.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer realm=\"switchyard-admin\""),
                );
                Some(resp)
            }
        }
    }

    fn config_view(&self) -> serde_json::Value {
        let snapshot = self.live.load();
        let mut view = serde_json::json!({
            "hash": snapshot.hash,
            "config": snapshot.redacted,
        });
        if let Some(status) = self.reloader.as_ref().map(|r| r.status()) {
            view["last_reload_unix_ms"] = serde_json::json!(status.last_reload_unix_ms);
            view["last_reload_error"] = serde_json::json!(status.last_error);
        }
        view
    }

    /// The Host and token gate, then the read-only check: `Some` is the refusal to send.
    fn precheck(&self, req: &pingora::http::RequestHeader) -> Option<Response<Vec<u8>>> {
        if let Some(refused) = self.gate(req) {
            return Some(refused);
        }
        if req.method != http::Method::GET && req.method != http::Method::HEAD {
            let mut resp = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "the admin API is read-only".into(),
            );
            resp.headers_mut().insert(
                http::header::ALLOW,
                http::HeaderValue::from_static("GET, HEAD"),
            );
            return Some(resp);
        }
        None
    }

    /// Until the proxy listener has been seen accepting, connects to it once per `/readyz`.
    async fn probe_proxy(&self) {
        use std::sync::atomic::Ordering;
        if self.proxy_up.load(Ordering::Acquire) {
            return;
        }
        let mut addr = self.live.load().listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let connect = tokio::net::TcpStream::connect(addr);
        if let Ok(Ok(_)) = tokio::time::timeout(PROXY_PROBE_TIMEOUT, connect).await {
            self.proxy_up.store(true, Ordering::Release);
        }
    }

    /// The analytics API (`crate::store::api`), behind the same gate as the console.
    async fn analytics(&self, req: &pingora::http::RequestHeader) -> Response<Vec<u8>> {
        if let Some(refused) = self.precheck(req) {
            return refused;
        }
        let answer =
            crate::store::api::answer(self.store.as_deref(), req.uri.path(), req.uri.query()).await;
        match answer {
            Ok(v) => json(StatusCode::OK, v),
            Err(e) => respond(
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "application/json",
                e.to_json().to_vec(),
            ),
        }
    }

    /// Every route but `/events` and the analytics API.
    pub fn response(&self, req: &pingora::http::RequestHeader) -> Response<Vec<u8>> {
        if let Some(refused) = self.precheck(req) {
            return refused;
        }
        let path = req.uri.path();
        if let Some((content_type, body)) = assets::lookup(path) {
            return asset(content_type, body);
        }
        match path {
            "/healthz" => respond(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            "/readyz" if self.drain.is_draining() => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                b"draining\n".to_vec(),
            ),
            "/readyz" if !self.proxy_up.load(std::sync::atomic::Ordering::Acquire) => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                b"the proxy listener is not accepting yet\n".to_vec(),
            ),
            "/readyz" if self.prewarm.is_warming() => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                b"warming up upstream connections\n".to_vec(),
            ),
            "/readyz" => respond(StatusCode::OK, "text/plain", b"ready\n".to_vec()),
            "/metrics" => respond(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(),
            ),
            "/config" => json(StatusCode::OK, self.config_view()),
            "/api/console" => respond(StatusCode::OK, "application/json", self.console.poll()),
            _ => match path.strip_prefix("/api/requests/") {
                Some(id) => match id.parse::<u64>().ok().and_then(|id| self.console.requests.json_one(id)) {
                    Some(body) => respond(StatusCode::OK, "application/json", body),
                    None => error(
                        StatusCode::NOT_FOUND,
                        "unknown_request",
                        format!("no request {:?} is kept (the console keeps the last {})", id.chars().take(32).collect::<String>(), crate::console::ring::CAPACITY),
                    ),
                },
                None => error(
                    StatusCode::NOT_FOUND,
                    "unknown_route",
                    format!("no admin route {}: try /, /metrics, /healthz, /readyz, /config, /events, /api/console, /v1/analytics/requests", path.chars().take(128).collect::<String>()),
                ),
            },
        }
    }

    /// `/events`: the console's frames as server-sent events until the viewer leaves (or the
    /// server shuts down). The first frame holds every kept request, later ones only the new.
    async fn events(&self, mut http: ServerSession, shutdown: &ShutdownWatch) {
        let Some((viewer, mut frames)) = self.console.join() else {
            let resp = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_viewers",
                format!(
                    "the console has {} viewers already",
                    crate::console::MAX_VIEWERS
                ),
            );
            let _ = write_whole(&mut http, resp).await;
            return;
        };
        let mut head = ResponseHeader::build(200, Some(6)).ok();
        if let Some(h) = head.as_mut() {
            for (k, v) in [
                ("content-type", "text/event-stream"),
                ("cache-control", "no-store"),
                ("x-content-type-options", "nosniff"),
                ("x-accel-buffering", "no"),
                ("transfer-encoding", "chunked"),
            ] {
                let _ = h.insert_header(k, v);
            }
        }
        let Some(head) = head else { return };
        http.set_keepalive(None);
        if http.write_response_header(Box::new(head)).await.is_err() {
            return;
        }
        // Tell the browser how soon to reconnect, and flush the head.
        if http
            .write_response_body(Bytes::from_static(b"retry: 2000\n\n"), false)
            .await
            .is_err()
        {
            return;
        }
        let mut shutdown = shutdown.clone();
        let mut last_seq: Option<u64> = None;
        // A frame may already be out (other viewers): start from it.
        let mut pending = frames.borrow_and_update().clone();
        loop {
            if let Some(tick) = pending.take() {
                let event = match last_seq {
                    Some(seq) if tick.seq == seq + 1 => tick.delta_event.clone(),
                    _ => self.console.full_event(&tick),
                };
                last_seq = Some(tick.seq);
                match tokio::time::timeout(
                    EVENT_WRITE_TIMEOUT,
                    http.write_response_body(event, false),
                )
                .await
                {
                    Ok(Ok(())) => {}
                    _ => break,
                }
            }
            let next_frame = tokio::select! {
                changed = frames.changed() => changed.is_ok(),
                // The viewer closed the page (or sent something it should not).
                _ = http.read_body_or_idle(true) => false,
                _ = shutdown.changed() => false,
            };
            if !next_frame {
                break;
            }
            pending = frames.borrow_and_update().clone();
        }
        drop(viewer);
    }
}

/// Writes a whole response; returns the session when it can be reused.
async fn write_whole(http: &mut ServerSession, resp: Response<Vec<u8>>) -> bool {
    let (parts, body) = resp.into_parts();
    let head: ResponseHeader = parts.into();
    if http.write_response_header(Box::new(head)).await.is_err() {
        return false;
    }
    if !body.is_empty() && http.write_response_body(body.into(), true).await.is_err() {
        return false;
    }
    true
}

#[async_trait]
impl HttpServerApp for Admin {
    async fn process_new_http(
        self: &Arc<Self>,
        mut http: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        match http.read_request().await {
            Ok(true) => {}
            _ => return None,
        }
        http.set_keepalive(if *shutdown.borrow() {
            None
        } else {
            Some(KEEPALIVE_SECS)
        });
        let req = http.req_header();
        let read_only = req.method == http::Method::GET || req.method == http::Method::HEAD;
        let events = req.method == http::Method::GET
            && req.uri.path() == "/events"
            && self.gate(req).is_none();
        if !read_only {
            // Refused without reading its body: the connection cannot be reused.
            http.set_keepalive(None);
        }
        if events {
            self.events(http, shutdown).await;
            return None;
        }
        if http.req_header().uri.path() == "/readyz" {
            self.probe_proxy().await;
        }
        let resp = if crate::store::api::is_analytics(http.req_header().uri.path()) {
            self.analytics(http.req_header()).await
        } else {
            self.response(http.req_header())
        };
        if !write_whole(&mut http, resp).await {
            return None;
        }
        let persistent = HttpPersistentSettings::for_session(&http);
        match http.finish().await {
            Ok(Some(stream)) => Some(ReusedHttpStream::from_reusable_stream(stream, persistent)),
            _ => None,
        }
    }
}
