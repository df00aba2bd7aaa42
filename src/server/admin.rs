//! The admin service on `admin_listen`: `/metrics`, `/healthz`, `/readyz`, `/config` (the
//! live config with every secret redacted), and the console (`/` and its files, the `/events`
//! stream, `/api/console`, `/api/requests/{id}`; see [`crate::console`]). Read-only: every route
//! is GET (or HEAD); anything else is 405, and nothing here changes state.

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

/// Keep-alive for admin connections (scrapes, probes, the console's own requests).
const KEEPALIVE_SECS: u64 = 60;
/// A viewer that cannot take a frame within this long is dropped.
const EVENT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Admin {
    pub live: Arc<ArcSwap<Snapshot>>,
    pub metrics: Arc<Metrics>,
    pub drain: Arc<Drain>,
    pub reloader: Option<Arc<Reloader>>,
    pub console: Arc<Console>,
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

impl Admin {
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

    /// Every route but `/events`.
    pub fn response(&self, req: &pingora::http::RequestHeader) -> Response<Vec<u8>> {
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
            return resp;
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
                    format!("no admin route {}: try /, /metrics, /healthz, /readyz, /config, /events, /api/console", path.chars().take(128).collect::<String>()),
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
        let events = req.method == http::Method::GET && req.uri.path() == "/events";
        if !read_only {
            // Refused without reading its body: the connection cannot be reused.
            http.set_keepalive(None);
        }
        if events {
            self.events(http, shutdown).await;
            return None;
        }
        let resp = self.response(http.req_header());
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
