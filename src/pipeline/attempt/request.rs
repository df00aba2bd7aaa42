//! What the client asked for, parsed once from the head and the body: the body (raw, and
//! parsed when the config reads it), model, stream flag, metadata, request timeout, and the
//! client's chat format — decoded into the canonical model only when a target needs it.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use pingora::http::RequestHeader;

use crate::config::TargetSettings;
use crate::error::GatewayError;
use crate::ingress::{self, path};
use crate::providers::request::PathCall;
use crate::providers::{ClientFormat, DecodedRequest, TranslateContext, TranslateError};
use crate::vocab::{gemini_route, GeminiMethod};

/// Largest `x-portkey-metadata` header accepted.
const MAX_METADATA_BYTES: usize = 4096;

/// What the client asked for, parsed once.
pub struct ClientRequest {
    pub method: http::Method,
    pub path_and_query: String,
    pub body: Bytes,
    /// The parsed body, for JSON routes whose config needs it (`RouteConfig::needs_body`).
    pub json: Option<serde_json::Map<String, serde_json::Value>>,
    /// The body's `model`, for JSON routes.
    pub model: Option<String>,
    /// `x-portkey-request-timeout` / `x-switchyard-request-timeout` (ms), if sent.
    pub request_timeout: Option<Duration>,
    /// `x-portkey-metadata`, for conditional routing.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// The chat format of the route (`/v1/chat/completions`, `/v1/messages`); `None` for the
    /// other routes, which are forwarded as they are to OpenAI-format providers.
    pub format: Option<ClientFormat>,
    /// The body's `stream` flag, for chat routes.
    pub stream: bool,
    /// The chat body decoded into the canonical model, the first time a target needs it
    /// (another format, `override_params`, or a stream whose usage we must ask for).
    decoded: OnceLock<Result<(DecodedRequest, TranslateContext), TranslateError>>,
}

/// A request made by the gateway itself (the semantic cache's embeddings call).
pub struct Internal {
    pub path: &'static str,
    pub body: Bytes,
    pub json: serde_json::Map<String, serde_json::Value>,
    pub model: String,
}

impl ClientRequest {
    /// Parses what the client sent; JSON routes ([`path::ROUTES`]) need a JSON object.
    pub fn parse(
        head: &RequestHeader,
        path_and_query: String,
        body: Bytes,
        needs_body: bool,
    ) -> Result<ClientRequest, GatewayError> {
        let method = head.method.clone();
        let request_timeout = request_timeout(head)?;
        let path = path_and_query.split('?').next().unwrap_or("");
        // Every route whose body carries a `model` (ingress::path::ROUTES) is parsed here.
        let is_json_route = path::is_json_route(&method, path);
        let (json, model, stream) = match (is_json_route, needs_body) {
            (false, _) => (None, None, false),
            // The config reads the body: validate and parse it whole, in one pass.
            (true, true) => {
                let map = ingress::body::parse(&body)?;
                let model = map.get("model").and_then(|m| m.as_str()).map(String::from);
                let stream = map.get("stream").and_then(|s| s.as_bool()) == Some(true);
                (Some(map), model, stream)
            }
            // It does not: validate and take `model` without building a tree; the body is
            // forwarded as received.
            (true, false) => {
                let peek = ingress::body::peek(&body)?;
                (
                    None,
                    peek.model.map(|m| m.into_owned()),
                    peek.stream == Some(true),
                )
            }
        };
        let format = match is_json_route {
            true => ClientFormat::from_path(path),
            false => None,
        };
        // Gemini names the model (and whether to stream) in the path, not the body.
        let (model, stream) = match gemini_route(path) {
            Some(r) => (
                Some(r.model.to_string()),
                r.method == GeminiMethod::StreamGenerateContent,
            ),
            None => (model, stream),
        };
        Ok(ClientRequest {
            method,
            path_and_query,
            body,
            json,
            model,
            request_timeout,
            metadata: metadata(head)?,
            format,
            stream,
            decoded: OnceLock::new(),
        })
    }

    /// A request of the gateway's own: a JSON `POST` of no client format.
    pub fn internal(call: Internal) -> ClientRequest {
        ClientRequest {
            method: http::Method::POST,
            path_and_query: call.path.to_string(),
            body: call.body,
            json: Some(call.json),
            model: Some(call.model),
            request_timeout: None,
            metadata: None,
            format: None,
            stream: false,
            decoded: OnceLock::new(),
        }
    }

    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The GenAI operation name of the route (`gen_ai.operation.name`).
    pub fn operation(&self) -> &'static str {
        path::operation_of(self.path())
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.path_and_query.split('?').next().unwrap_or("")
    }

    /// The canonical request and its translation context, decoded once.
    pub(super) fn decoded(
        &self,
        format: ClientFormat,
    ) -> Result<&(DecodedRequest, TranslateContext), TranslateError> {
        self.decoded
            .get_or_init(|| {
                let path = self.path_call(format);
                let decoded = match &self.json {
                    Some(map) => {
                        DecodedRequest::from_route(format, self.body.clone(), map.clone(), path)
                    }
                    None => DecodedRequest::decode_route(format, self.body.clone(), path),
                }?;
                let mut ctx = TranslateContext::new(decoded.request());
                if format == ClientFormat::Gemini {
                    let query = self.path_and_query.split_once('?').map(|(_, q)| q);
                    ctx.gemini_framing = crate::providers::gemini::client::Framing::of_query(query);
                }
                Ok((decoded, ctx))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// What the path says of a chat call (Gemini: its model and stream flag).
    fn path_call(&self, format: ClientFormat) -> Option<PathCall> {
        (format == ClientFormat::Gemini).then(|| PathCall {
            model: self.model.clone().unwrap_or_default(),
            stream: self.stream,
        })
    }

    /// The body for one target: the original bytes unless `override_params` change them.
    pub(super) fn body_for(&self, settings: &TargetSettings) -> Result<Bytes, GatewayError> {
        match &self.json {
            Some(json) if !settings.override_params.is_empty() => {
                let mut merged = json.clone();
                for (k, v) in &settings.override_params {
                    merged.insert(k.clone(), v.clone());
                }
                serde_json::to_vec(&merged)
                    .map(Bytes::from)
                    .map_err(|e| GatewayError::Internal(format!("cannot encode body: {e}")))
            }
            _ => Ok(self.body.clone()),
        }
    }

    /// A copy carrying another body (a target's input guardrails redacted its text).
    /// This request for `model` instead, its body re-serialized with it (Portkey's
    /// `@<slug>/<model>` spelling, once the slug has chosen the route).
    pub fn with_model(&self, model: &str) -> Result<ClientRequest, GatewayError> {
        if gemini_route(self.path()).is_some() {
            // The path names a Gemini model: the body has none to rewrite.
            let json = match &self.json {
                Some(json) => json.clone(),
                None => ingress::body::parse(&self.body)?,
            };
            let mut request = self.with_body(self.body.clone(), json);
            request.model = Some(model.to_string());
            return Ok(request);
        }
        let mut json = match &self.json {
            Some(json) => json.clone(),
            None => ingress::body::parse(&self.body)?,
        };
        json.insert("model".into(), serde_json::Value::String(model.to_string()));
        let body = serde_json::to_vec(&json)
            .map_err(|e| GatewayError::Internal(format!("re-encode the request: {e}")))?;
        let mut request = self.with_body(Bytes::from(body), json);
        request.model = Some(model.to_string());
        Ok(request)
    }

    pub(super) fn with_body(
        &self,
        body: Bytes,
        json: serde_json::Map<String, serde_json::Value>,
    ) -> ClientRequest {
        ClientRequest {
            method: self.method.clone(),
            path_and_query: self.path_and_query.clone(),
            body,
            json: Some(json),
            model: self.model.clone(),
            request_timeout: self.request_timeout,
            metadata: self.metadata.clone(),
            format: self.format,
            stream: self.stream,
            decoded: OnceLock::new(),
        }
    }

    pub(super) fn model_for<'a>(&'a self, settings: &'a TargetSettings) -> Option<&'a str> {
        settings
            .override_params
            .get("model")
            .and_then(|m| m.as_str())
            .or_else(|| self.model())
    }
}

/// `x-switchyard-request-timeout` / `x-portkey-request-timeout`: a positive number of ms.
fn request_timeout(head: &RequestHeader) -> Result<Option<Duration>, GatewayError> {
    static NAMES: [http::HeaderName; 2] = [
        http::HeaderName::from_static("x-switchyard-request-timeout"),
        http::HeaderName::from_static("x-portkey-request-timeout"),
    ];
    let Some(v) = NAMES.iter().find_map(|h| head.headers.get(h)) else {
        return Ok(None);
    };
    match v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms))),
        _ => Err(GatewayError::InvalidRequest(
            "x-portkey-request-timeout must be a positive number of milliseconds".into(),
        )),
    }
}

/// `x-switchyard-metadata` / `x-portkey-metadata`: a bounded JSON object.
fn metadata(
    head: &RequestHeader,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, GatewayError> {
    static NAMES: [http::HeaderName; 2] = [
        http::HeaderName::from_static("x-switchyard-metadata"),
        http::HeaderName::from_static("x-portkey-metadata"),
    ];
    let Some(v) = NAMES.iter().find_map(|h| head.headers.get(h)) else {
        return Ok(None);
    };
    if v.len() > MAX_METADATA_BYTES {
        return Err(GatewayError::InvalidRequest(format!(
            "x-portkey-metadata exceeds {MAX_METADATA_BYTES} bytes"
        )));
    }
    match serde_json::from_slice::<serde_json::Value>(v.as_bytes()) {
        Ok(serde_json::Value::Object(map)) => Ok(Some(map)),
        _ => Err(GatewayError::InvalidRequest(
            "x-portkey-metadata must be a JSON object".into(),
        )),
    }
}
