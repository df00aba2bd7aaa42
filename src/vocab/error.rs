//! The gateway's own errors ([`GatewayError`]: status, OpenAI-style body and code) and why a
//! request path is refused ([`PathError`]). Rendering in another provider's error shape is in
//! `crate::error`, next to the adapters it uses.

use bytes::Bytes;

use super::LimitKind;

/// Longest request path accepted (bytes, as received).
pub const MAX_PATH_BYTES: usize = 2048;
/// Longest query string accepted (bytes, as received, without the `?`).
pub const MAX_QUERY_BYTES: usize = 8192;

/// Why a request path is refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request path must start with \"/\"")]
    NotAbsolute,
    #[error("the request path exceeds {MAX_PATH_BYTES} bytes")]
    PathTooLong,
    #[error("the query string exceeds {MAX_QUERY_BYTES} bytes")]
    QueryTooLong,
    #[error("the request path has an invalid percent-escape at byte {at}")]
    InvalidEscape { at: usize },
    #[error(
        "the request path escapes a byte that may not be escaped there (%{byte:02X} at byte {at})"
    )]
    EscapedByte { byte: u8, at: usize },
    #[error("the request path has a character that is not allowed in a path (byte 0x{byte:02X} at byte {at})")]
    BadCharacter { byte: u8, at: usize },
    #[error("the request path climbs above the root with \"..\"")]
    AboveRoot,
    #[error("the request target is not valid UTF-8")]
    NotUtf8,
    #[error("the canonical request target cannot be parsed as a URI")]
    Unparseable,
}

/// An error produced by Switchyard itself (not relayed from a provider).
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("request body exceeds the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// Not a route in `ingress::path::ROUTES` (404). `method` and `path` are client values:
    /// bounded with `ingress::path::bounded` before they get here.
    #[error(
        "unknown route {method} {path}: Switchyard serves the OpenAI and Anthropic inference routes under /v1/ (chat/completions, messages, completions, embeddings, responses, models, …)"
    )]
    UnknownRoute { method: String, path: String },
    /// A served route naming something that does not exist (a feedback id; 404).
    #[error("{0}")]
    NotFound(String),
    /// A request path that is not canonical and cannot be made so safely (400).
    #[error("invalid request path: {0}")]
    InvalidPath(#[from] PathError),
    #[error("{0}")]
    Unauthorized(String),
    /// A 401 for a request that selected no route at all (no virtual key, config, provider
    /// or default): unlike [`GatewayError::Unauthorized`], its model may still choose one
    /// (Portkey's `@<slug>/<model>`).
    #[error("{0}")]
    NoRoute(String),
    #[error("model \"{model}\" is not allowed for virtual key \"{virtual_key}\"")]
    ModelNotAllowed { model: String, virtual_key: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("upstream {target} is unreachable: {reason}")]
    UpstreamUnreachable { target: String, reason: String },
    #[error("upstream {target} sent an invalid response: {reason}")]
    UpstreamInvalid { target: String, reason: String },
    #[error("Request exceeded the {phase} timeout of {ms}ms on {target}")]
    Timeout {
        target: String,
        phase: &'static str,
        ms: u128,
    },
    #[error("{0}")]
    Internal(String),
    /// A virtual key's `rpm`, `tpm` or `concurrent` limit (429).
    #[error("Rate limit reached for {} on virtual key \"{virtual_key}\": limit {limit_value}. Please try again in {retry_in}.", limit.describe())]
    RateLimited {
        virtual_key: String,
        limit: LimitKind,
        limit_value: String,
        retry_in: String,
    },
    /// A virtual key's `usd_per_day` or `usd_per_month` cap (429 until the period rolls over).
    #[error("Budget exceeded on virtual key \"{virtual_key}\": {} is {limit_value}, spent or reserved by requests in flight. It resets in {resets_in}.", limit.describe())]
    BudgetExceeded {
        virtual_key: String,
        limit: LimitKind,
        limit_value: String,
        resets_in: String,
    },
    /// Limits could not be checked (shared state unreachable, `on_state_error: deny`).
    #[error("{0}")]
    StateUnavailable(String),
    /// The client sent its request head or body too slowly (408, connection closed).
    #[error("{0}")]
    ClientTooSlow(String),
    /// The request head (request line and headers) is over `limits.max_header_bytes` (431).
    #[error("request headers exceed the limit of {limit} bytes")]
    HeadersTooLarge { limit: usize },
    /// A query parameter of the analytics API (400, `param` names it).
    #[error("{param}: {message}")]
    InvalidParameter { param: String, message: String },
    /// The request store is off, unreachable or too slow to answer (503).
    #[error("{message}")]
    StoreUnavailable { code: &'static str, message: String },
}

impl GatewayError {
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::InvalidRequest(_) | GatewayError::InvalidJson(_) => 400,
            GatewayError::BodyTooLarge { .. } => 413,
            GatewayError::UnknownRoute { .. } | GatewayError::NotFound(_) => 404,
            GatewayError::InvalidPath(_) => 400,
            GatewayError::Unauthorized(_) | GatewayError::NoRoute(_) => 401,
            GatewayError::ModelNotAllowed { .. } | GatewayError::Forbidden(_) => 403,
            GatewayError::UpstreamUnreachable { .. } | GatewayError::UpstreamInvalid { .. } => 502,
            GatewayError::Timeout { .. } => 408,
            GatewayError::Internal(_) => 500,
            GatewayError::RateLimited { .. } | GatewayError::BudgetExceeded { .. } => 429,
            GatewayError::StateUnavailable(_) => 503,
            GatewayError::ClientTooSlow(_) => 408,
            GatewayError::HeadersTooLarge { .. } => 431,
            GatewayError::InvalidParameter { .. } => 400,
            GatewayError::StoreUnavailable { .. } => 503,
        }
    }

    /// OpenAI's `error.type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            GatewayError::InvalidRequest(_)
            | GatewayError::InvalidJson(_)
            | GatewayError::BodyTooLarge { .. }
            | GatewayError::UnknownRoute { .. }
            | GatewayError::NotFound(_)
            | GatewayError::InvalidPath(_)
            | GatewayError::ClientTooSlow(_)
            | GatewayError::HeadersTooLarge { .. }
            | GatewayError::InvalidParameter { .. } => "invalid_request_error",
            GatewayError::Unauthorized(_) | GatewayError::NoRoute(_) => "authentication_error",
            GatewayError::ModelNotAllowed { .. } | GatewayError::Forbidden(_) => "permission_error",
            GatewayError::UpstreamUnreachable { .. } | GatewayError::UpstreamInvalid { .. } => {
                "upstream_error"
            }
            GatewayError::Timeout { .. } => "timeout_error",
            GatewayError::Internal(_) => "api_error",
            GatewayError::RateLimited { .. } => "rate_limit_exceeded",
            GatewayError::BudgetExceeded { .. } => "budget_exceeded",
            GatewayError::StateUnavailable(_) | GatewayError::StoreUnavailable { .. } => {
                "service_unavailable"
            }
        }
    }

    /// A stable machine-readable `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::InvalidRequest(_) => "invalid_request",
            GatewayError::InvalidJson(_) => "invalid_json",
            GatewayError::BodyTooLarge { .. } => "request_too_large",
            GatewayError::UnknownRoute { .. } => "unknown_route",
            GatewayError::NotFound(_) => "not_found",
            GatewayError::InvalidPath(_) => "invalid_path",
            GatewayError::Unauthorized(_) | GatewayError::NoRoute(_) => "invalid_api_key",
            GatewayError::ModelNotAllowed { .. } => "model_not_allowed",
            GatewayError::Forbidden(_) => "forbidden",
            GatewayError::UpstreamUnreachable { .. } => "upstream_unreachable",
            GatewayError::UpstreamInvalid { .. } => "upstream_invalid_response",
            GatewayError::Timeout { .. } => "timeout",
            GatewayError::Internal(_) => "internal_error",
            GatewayError::RateLimited { limit, .. }
            | GatewayError::BudgetExceeded { limit, .. } => match limit {
                LimitKind::Rpm => "rpm_limit_exceeded",
                LimitKind::Tpm => "tpm_limit_exceeded",
                LimitKind::Concurrent => "concurrency_limit_exceeded",
                LimitKind::UsdPerDay => "usd_per_day_exceeded",
                LimitKind::UsdPerMonth => "usd_per_month_exceeded",
            },
            GatewayError::StateUnavailable(_) => "state_unavailable",
            GatewayError::ClientTooSlow(_) => "request_timeout",
            GatewayError::HeadersTooLarge { .. } => "request_headers_too_large",
            GatewayError::InvalidParameter { .. } => "invalid_parameter",
            GatewayError::StoreUnavailable { code, .. } => code,
        }
    }

    /// The JSON body, `{"error":{...}}`.
    pub fn to_json(&self) -> Bytes {
        let body = serde_json::json!({
            "error": {
                "message": self.to_string(),
                "type": self.error_type(),
                "code": self.code(),
                "param": match self {
                    GatewayError::InvalidParameter { param, .. } => Some(param.as_str()),
                    _ => None,
                },
            }
        });
        Bytes::from(body.to_string())
    }

    /// The same error as one SSE event, to end a stream that already committed.
    pub fn to_sse_event(&self) -> Bytes {
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&self.to_json());
        out.extend_from_slice(b"\n\n");
        Bytes::from(out)
    }
}
