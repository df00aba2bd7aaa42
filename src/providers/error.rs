//! Errors: what can go wrong translating ([`TranslateError`]), and provider errors in canonical
//! form ([`ProviderError`]) — decoded from any provider's error body, encoded in the client's
//! format as an HTTP error or as a terminal in-stream event.
//!
//! Status mapping for the client: the provider's status is kept when it agrees with the error's
//! kind, except that Anthropic's non-standard `529 overloaded_error` is a `503` for OpenAI
//! clients, and any "overloaded"/"unavailable" error is a `529 overloaded_error` for Anthropic
//! clients (their SDKs retry it). When the body says more than the status (Gemini answers a bad
//! API key with `400 INVALID_ARGUMENT` + reason `API_KEY_INVALID`), the kind's own status wins
//! (`401`).

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::json::{str_at, to_vec, write_sse};
use super::{ClientFormat, Format};

pub use super::translate_error::TranslateError;

/// What kind of failure, independent of any provider's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Authentication,
    PermissionDenied,
    NotFound,
    RequestTooLarge,
    RateLimit,
    /// The provider is overloaded or unavailable (Anthropic 529, 503, Gemini `UNAVAILABLE`).
    Overloaded,
    Timeout,
    /// Any other provider-side failure.
    Api,
}

impl ErrorKind {
    /// The kind an HTTP status implies.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            401 => ErrorKind::Authentication,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            408 | 504 => ErrorKind::Timeout,
            413 => ErrorKind::RequestTooLarge,
            429 => ErrorKind::RateLimit,
            503 | 529 => ErrorKind::Overloaded,
            400..=499 => ErrorKind::InvalidRequest,
            _ => ErrorKind::Api,
        }
    }

    /// The kind a provider's error type/status string names (OpenAI `type`/`code`, Anthropic
    /// `error.type`, Gemini `status`/reason), if it names one.
    pub fn from_type(name: &str) -> Option<ErrorKind> {
        Some(match name {
            "invalid_request_error"
            | "INVALID_ARGUMENT"
            | "FAILED_PRECONDITION"
            | "OUT_OF_RANGE"
            | "context_length_exceeded" => ErrorKind::InvalidRequest,
            "authentication_error" | "invalid_api_key" | "UNAUTHENTICATED" | "API_KEY_INVALID" => {
                ErrorKind::Authentication
            }
            "permission_error" | "PERMISSION_DENIED" | "billing_error" => {
                ErrorKind::PermissionDenied
            }
            "not_found_error" | "NOT_FOUND" | "model_not_found" => ErrorKind::NotFound,
            "request_too_large" => ErrorKind::RequestTooLarge,
            "rate_limit_error"
            | "rate_limit_exceeded"
            | "RESOURCE_EXHAUSTED"
            | "insufficient_quota" => ErrorKind::RateLimit,
            "overloaded_error" | "UNAVAILABLE" => ErrorKind::Overloaded,
            "timeout_error" | "DEADLINE_EXCEEDED" => ErrorKind::Timeout,
            "api_error" | "server_error" | "INTERNAL" | "UNKNOWN" => ErrorKind::Api,
            _ => return None,
        })
    }

    /// The status this kind has when nothing better is known.
    pub fn default_status(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::RequestTooLarge => 413,
            ErrorKind::RateLimit => 429,
            ErrorKind::Overloaded => 503,
            ErrorKind::Timeout => 504,
            ErrorKind::Api => 500,
        }
    }

    /// Google's `error.status` spelling (a `google.rpc.Code` name).
    pub fn gemini_status(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::RequestTooLarge => "INVALID_ARGUMENT",
            ErrorKind::Authentication => "UNAUTHENTICATED",
            ErrorKind::PermissionDenied => "PERMISSION_DENIED",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::RateLimit => "RESOURCE_EXHAUSTED",
            ErrorKind::Overloaded => "UNAVAILABLE",
            ErrorKind::Timeout => "DEADLINE_EXCEEDED",
            ErrorKind::Api => "INTERNAL",
        }
    }

    /// OpenAI's `error.type` spelling.
    pub fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::RequestTooLarge => {
                "invalid_request_error"
            }
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::Timeout => "timeout_error",
            ErrorKind::Overloaded | ErrorKind::Api => "server_error",
        }
    }

    /// Anthropic's `error.type` spelling.
    pub fn anthropic_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RequestTooLarge => "request_too_large",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::Overloaded => "overloaded_error",
            ErrorKind::Timeout => "timeout_error",
            ErrorKind::Api => "api_error",
        }
    }
}

/// A provider error in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// The HTTP status the provider answered (for in-stream errors, the kind's default).
    pub status: u16,
    pub kind: ErrorKind,
    pub message: String,
    /// The provider's own type/status string (`overloaded_error`, `RESOURCE_EXHAUSTED`, …).
    pub provider_type: Option<String>,
    /// OpenAI's `code` (`context_length_exceeded`, …), when the provider gave one.
    pub code: Option<String>,
    /// OpenAI's `param`, when the provider gave one.
    pub param: Option<String>,
}

/// Longest provider message carried over (bodies of unknown shape are quoted, not trusted).
const MAX_MESSAGE_CHARS: usize = 2000;

impl ProviderError {
    /// An error of `kind` with its default status (for errors the gateway itself reports in the
    /// client's format).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ProviderError {
        ProviderError {
            status: kind.default_status(),
            kind,
            message: message.into(),
            provider_type: None,
            code: None,
            param: None,
        }
    }

    /// The status to answer a client of `client` format with (see the module doc).
    pub fn client_status(&self, client: ClientFormat) -> u16 {
        if self.kind == ErrorKind::Overloaded {
            return match client {
                ClientFormat::Anthropic => 529,
                ClientFormat::OpenAi | ClientFormat::Responses | ClientFormat::Gemini => 503,
            };
        }
        let status = if (400..=599).contains(&self.status)
            && ErrorKind::from_status(self.status) == self.kind
        {
            self.status
        } else {
            self.kind.default_status()
        };
        if status == 529 {
            503
        } else {
            status
        }
    }

    /// Builds from the `error` object of an OpenAI body or stream chunk.
    pub(crate) fn from_openai_object(status: Option<u16>, err: &Value) -> ProviderError {
        let message = match err {
            Value::String(s) => s.clone(),
            _ => str_at(err, "message").unwrap_or("").to_string(),
        };
        let provider_type = str_at(err, "type").map(str::to_string);
        let code = match err.get("code") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let param = str_at(err, "param").map(str::to_string);
        let named = code
            .as_deref()
            .and_then(ErrorKind::from_type)
            .or_else(|| provider_type.as_deref().and_then(ErrorKind::from_type));
        build(status, named, message, provider_type, code, param)
    }

    /// Builds from the `error` object of an Anthropic body or `error` event.
    pub(crate) fn from_anthropic_object(status: Option<u16>, err: &Value) -> ProviderError {
        let message = str_at(err, "message").unwrap_or("").to_string();
        let provider_type = str_at(err, "type").map(str::to_string);
        let named = provider_type.as_deref().and_then(ErrorKind::from_type);
        build(status, named, message, provider_type, None, None)
    }

    /// Builds from the `error` object of a Gemini body (`{code, message, status, details}`).
    pub(crate) fn from_gemini_object(status: Option<u16>, err: &Value) -> ProviderError {
        let message = str_at(err, "message").unwrap_or("").to_string();
        let provider_type = str_at(err, "status").map(str::to_string);
        let status = status.or_else(|| {
            err.get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
        });
        // `details[].reason` is more precise than `status` (API_KEY_INVALID under
        // INVALID_ARGUMENT).
        let reason_kind = err
            .get("details")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| str_at(d, "reason"))
            .find_map(ErrorKind::from_type);
        let named = reason_kind.or_else(|| provider_type.as_deref().and_then(ErrorKind::from_type));
        build(status, named, message, provider_type, None, None)
    }
}

fn build(
    status: Option<u16>,
    named: Option<ErrorKind>,
    message: String,
    provider_type: Option<String>,
    code: Option<String>,
    param: Option<String>,
) -> ProviderError {
    let kind = named
        .or_else(|| status.map(ErrorKind::from_status))
        .unwrap_or(ErrorKind::Api);
    let status = status
        .filter(|s| (400..=599).contains(s))
        .unwrap_or_else(|| kind.default_status());
    let message = if message.is_empty() {
        format!("upstream error (status {status})")
    } else {
        truncate(&message)
    };
    ProviderError {
        status,
        kind,
        message,
        provider_type,
        code,
        param,
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_MESSAGE_CHARS {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX_MESSAGE_CHARS).collect();
        t.push('…');
        t
    }
}

/// Decodes a provider's error response (any body; never fails). A body that is not the
/// format's documented shape is quoted (shortened) as the message.
pub fn decode_error(format: Format, status: u16, body: &[u8]) -> ProviderError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    // Gemini's non-SSE stream endpoint wraps everything in an array.
    let value = match parsed {
        Some(Value::Array(mut items)) if !items.is_empty() => Some(items.swap_remove(0)),
        other => other,
    };
    if let Some(v) = &value {
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            return match format {
                Format::OpenAi | Format::Responses => {
                    ProviderError::from_openai_object(Some(status), err)
                }
                Format::Anthropic => ProviderError::from_anthropic_object(Some(status), err),
                Format::Gemini => {
                    if err.get("status").is_some() || err.get("code").is_some() {
                        ProviderError::from_gemini_object(Some(status), err)
                    } else {
                        ProviderError::from_openai_object(Some(status), err)
                    }
                }
            };
        }
        if let Some(msg) = str_at(v, "message") {
            return build(Some(status), None, msg.to_string(), None, None, None);
        }
    }
    let text = String::from_utf8_lossy(body);
    build(
        Some(status),
        None,
        text.trim().to_string(),
        None,
        None,
        None,
    )
}

/// The error body in the client's format.
fn error_value(client: ClientFormat, err: &ProviderError) -> Value {
    match client {
        ClientFormat::OpenAi | ClientFormat::Responses => {
            let code = err
                .code
                .clone()
                .or_else(|| err.provider_type.clone())
                .map_or(Value::Null, Value::String);
            json!({
                "error": {
                    "message": err.message,
                    "type": err.kind.openai_type(),
                    "param": err.param,
                    "code": code,
                }
            })
        }
        ClientFormat::Anthropic => json!({
            "type": "error",
            "error": {
                "type": err.kind.anthropic_type(),
                "message": err.message,
            }
        }),
        ClientFormat::Gemini => json!({
            "error": {
                "code": err.client_status(client),
                "message": err.message,
                "status": err.kind.gemini_status(),
            }
        }),
    }
}

/// A Responses API stream's `error` event, numbered `sequence_number`.
pub(crate) fn responses_error_event(err: &ProviderError, sequence_number: u64) -> Value {
    let code = err
        .code
        .clone()
        .or_else(|| err.provider_type.clone())
        .unwrap_or_else(|| err.kind.openai_type().to_string());
    json!({
        "type": "error",
        "code": code,
        "message": err.message,
        "param": err.param,
        "sequence_number": sequence_number,
    })
}

/// An HTTP error response in the client's format: `(status, JSON body)`.
pub fn encode_error(client: ClientFormat, err: &ProviderError) -> (u16, Bytes) {
    (
        err.client_status(client),
        Bytes::from(to_vec(&error_value(client, err))),
    )
}

/// A terminal in-stream error event in the client's format (OpenAI: `data: {"error":…}`;
/// Anthropic: `event: error` + `data: {"type":"error","error":…}`).
pub fn encode_stream_error(client: ClientFormat, err: &ProviderError, out: &mut Vec<u8>) {
    match client {
        ClientFormat::OpenAi => write_sse(out, None, &error_value(client, err)),
        ClientFormat::Anthropic => write_sse(out, Some("error"), &error_value(client, err)),
        // Sequence number 0: this caller does not know the stream's; the Responses encoder
        // and passthrough number theirs.
        ClientFormat::Responses => write_sse(out, Some("error"), &responses_error_event(err, 0)),
        // Server-sent events; a JSON-array stream's error is its encoder's (stream.rs).
        ClientFormat::Gemini => write_sse(out, None, &error_value(client, err)),
    }
}

/// A provider's error response as the client should see it: unchanged (status and bytes) when
/// the formats match, else decoded and re-encoded.
pub fn translate_error(
    upstream: Format,
    client: ClientFormat,
    status: u16,
    body: Bytes,
) -> (u16, Bytes) {
    if upstream == client.format() {
        return (status, body);
    }
    encode_error(client, &decode_error(upstream, status, &body))
}

/// An `error` object map, for tests and callers that need to inspect an encoded body.
pub fn error_body_object(client: ClientFormat, err: &ProviderError) -> Map<String, Value> {
    match error_value(client, err) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_overloaded_is_503_for_openai_clients() {
        let body =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let err = decode_error(Format::Anthropic, 529, body);
        assert_eq!(err.kind, ErrorKind::Overloaded);
        let (status, out) = encode_error(ClientFormat::OpenAi, &err);
        assert_eq!(status, 503);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["message"], "Overloaded");
        assert_eq!(v["error"]["type"], "server_error");
        assert_eq!(v["error"]["code"], "overloaded_error");
    }

    #[test]
    fn gemini_bad_key_is_401() {
        let body = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        let err = decode_error(Format::Gemini, 400, body);
        assert_eq!(err.kind, ErrorKind::Authentication);
        assert_eq!(err.client_status(ClientFormat::OpenAi), 401);
        let (status, out) = encode_error(ClientFormat::Anthropic, &err);
        assert_eq!(status, 401);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "authentication_error");
    }

    #[test]
    fn gemini_unavailable_is_529_for_anthropic_clients() {
        let body = br#"[{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}]"#;
        let err = decode_error(Format::Gemini, 503, body);
        assert_eq!(err.client_status(ClientFormat::Anthropic), 529);
        assert_eq!(err.client_status(ClientFormat::OpenAi), 503);
    }

    #[test]
    fn unknown_bodies_are_quoted() {
        let err = decode_error(Format::OpenAi, 502, b"<html>Bad Gateway</html>");
        assert_eq!(err.kind, ErrorKind::Api);
        assert_eq!(err.status, 502);
        assert_eq!(err.message, "<html>Bad Gateway</html>");
        let empty = decode_error(Format::OpenAi, 500, b"");
        assert_eq!(empty.message, "upstream error (status 500)");
        let long = decode_error(Format::OpenAi, 500, "x".repeat(5000).as_bytes());
        assert!(long.message.chars().count() <= MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn same_format_errors_pass_through() {
        let body = Bytes::from_static(br#"{"error":{"message":"m","type":"t"}}"#);
        let (s, b) = translate_error(Format::OpenAi, ClientFormat::OpenAi, 418, body.clone());
        assert_eq!((s, b), (418, body));
    }

    #[test]
    fn stream_errors_in_each_format() {
        let err = ProviderError::new(ErrorKind::RateLimit, "slow down");
        let mut out = Vec::new();
        encode_stream_error(ClientFormat::OpenAi, &err, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "data: {\"error\":{\"code\":null,\"message\":\"slow down\",\"param\":null,\"type\":\"rate_limit_error\"}}\n\n"
        );
        let mut out = Vec::new();
        encode_stream_error(ClientFormat::Anthropic, &err, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: error\ndata: {\"error\":{\"message\":\"slow down\",\"type\":\"rate_limit_error\"},\"type\":\"error\"}\n\n"
        );
    }
}
