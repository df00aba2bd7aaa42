//! The admin service on `admin_listen`: `/metrics`, `/healthz`, `/readyz` and `/config` (the
//! live config with every secret redacted). Read-only; nothing here changes state.

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use super::shutdown::Drain;
use crate::config::watch::Reloader;
use crate::config::Snapshot;
use crate::telemetry::Metrics;

pub struct Admin {
    pub live: Arc<ArcSwap<Snapshot>>,
    pub metrics: Arc<Metrics>,
    pub drain: Arc<Drain>,
    pub reloader: Option<Arc<Reloader>>,
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    let len = resp.body().len();
    resp.headers_mut()
        .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    resp
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Vec<u8>> {
    respond(status, "application/json", value.to_string().into_bytes())
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
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        if req.method != http::Method::GET && req.method != http::Method::HEAD {
            return json(
                StatusCode::METHOD_NOT_ALLOWED,
                serde_json::json!({"error": {"message": "the admin API is read-only", "type": "invalid_request_error", "code": "method_not_allowed"}}),
            );
        }
        match req.uri.path() {
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
            path => json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": {"message": format!("no admin route {path}: try /metrics, /healthz, /readyz, /config"), "type": "invalid_request_error", "code": "unknown_route"}}),
            ),
        }
    }
}
