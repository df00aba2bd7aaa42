//! The OpenAI wire format, for `openai` and `openai-compatible` providers: the upstream request
//! (path under the provider's base URL, credential, forwarded headers) and stream-event
//! classification for chat completions, completions and responses streams.

use http::Method;
use pingora::http::RequestHeader;

use super::EventClass;
use crate::config::Provider;
use crate::upstream::sse::SseEvent;

/// Client headers never forwarded upstream: credentials the app sent (the provider's own is
/// injected instead), our control headers, hop-by-hop headers, and what we recompute.
fn is_stripped(name: &str) -> bool {
    matches!(
        name,
        "authorization"
            | "proxy-authorization"
            | "x-api-key"
            | "api-key"
            | "x-goog-api-key"
            | "cookie"
            | "host"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-connection"
            | "expect"
            // We must read JSON and SSE as sent: ask for identity encoding.
            | "accept-encoding"
    ) || name.starts_with("x-portkey-")
        || name.starts_with("x-switchyard-")
}

/// The upstream path for a client path under `/v1`: the provider's base path + the rest.
/// `/v1/chat/completions?x=1` with base `/v1` → `/v1/chat/completions?x=1`.
pub fn upstream_path(provider: &Provider, client_path_and_query: &str) -> String {
    let rest = client_path_and_query
        .strip_prefix("/v1")
        .unwrap_or(client_path_and_query);
    let mut path = String::with_capacity(provider.base_url.path.len() + rest.len());
    path.push_str(&provider.base_url.path);
    path.push_str(rest);
    if path.is_empty() {
        path.push('/');
    }
    path
}

/// Builds the upstream request head for one attempt.
pub fn build_request(
    provider: &Provider,
    method: &Method,
    client_path_and_query: &str,
    client: &RequestHeader,
    body_len: usize,
) -> pingora::Result<RequestHeader> {
    let path = upstream_path(provider, client_path_and_query);
    let mut req = RequestHeader::build(
        method.clone(),
        path.as_bytes(),
        Some(client.headers.len() + 4),
    )?;
    req.insert_header(http::header::HOST, provider.base_url.host_header())?;
    for (name, value) in client.headers.iter() {
        if !is_stripped(name.as_str()) {
            req.append_header(name.clone(), value.clone())?;
        }
    }
    if method != Method::GET || body_len > 0 {
        req.insert_header(http::header::CONTENT_LENGTH, body_len.to_string())?;
    }
    if let Some(key) = &provider.api_key {
        if provider.auth_header == "authorization" {
            req.insert_header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", key.expose()),
            )?;
        } else {
            req.insert_header(provider.auth_header.clone(), key.expose())?;
        }
    }
    for (name, value) in &provider.headers {
        req.insert_header(name.clone(), value.as_str())?;
    }
    Ok(req)
}

/// Classifies one event of a chat-completions, completions or responses stream.
pub fn classify_event(event: &SseEvent) -> EventClass {
    if event.is_done() {
        return EventClass::Done;
    }
    if event.data.trim().is_empty() {
        return match event.event.as_deref() {
            Some("error") => EventClass::Error,
            _ => EventClass::Preamble,
        };
    }
    if event.event.as_deref() == Some("error") {
        return EventClass::Error;
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&event.data) else {
        // Not ours to judge: a provider's own format we pass through untouched.
        return EventClass::Content;
    };
    if value.get("error").is_some_and(|e| !e.is_null()) {
        return EventClass::Error;
    }
    // Responses API: typed events; only output deltas are content.
    if let Some(kind) = value.get("type").and_then(|t| t.as_str()) {
        if kind == "error" || kind == "response.failed" {
            return EventClass::Error;
        }
        if kind.starts_with("response.") {
            return if kind.ends_with(".delta") || kind == "response.completed" {
                EventClass::Content
            } else {
                EventClass::Preamble
            };
        }
    }
    let Some(choices) = value.get("choices").and_then(|c| c.as_array()) else {
        return EventClass::Preamble;
    };
    let has_content = choices.iter().any(|choice| {
        let text = choice.get("text").and_then(|t| t.as_str());
        let delta = choice.get("delta");
        let non_empty_str = |v: Option<&serde_json::Value>| {
            v.and_then(|v| v.as_str()).is_some_and(|s| !s.is_empty())
        };
        text.is_some_and(|t| !t.is_empty())
            || delta.is_some_and(|d| {
                non_empty_str(d.get("content"))
                    || non_empty_str(d.get("refusal"))
                    || d.get("tool_calls").is_some_and(|t| !t.is_null())
                    || d.get("function_call").is_some_and(|t| !t.is_null())
            })
    });
    if has_content {
        EventClass::Content
    } else {
        EventClass::Preamble
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BaseUrl, ProviderKind, Secret};
    use bytes::Bytes;

    fn provider(path: &str, auth: &str) -> Provider {
        Provider {
            name: "p".into(),
            kind: ProviderKind::OpenAi,
            base_url: BaseUrl {
                tls: false,
                host: "127.0.0.1".into(),
                port: 9000,
                path: path.into(),
            },
            api_key: Some(Secret::new("sk-real")),
            auth_header: auth.into(),
            ca_file: None,
            api_version: None,
            headers: vec![],
        }
    }

    fn ev(data: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: data.into(),
            id: None,
            raw: Bytes::new(),
        }
    }

    #[test]
    fn paths_map_under_the_base_path() {
        assert_eq!(
            upstream_path(
                &provider("/v1", "authorization"),
                "/v1/chat/completions?a=1"
            ),
            "/v1/chat/completions?a=1"
        );
        assert_eq!(
            upstream_path(&provider("/openai/v1", "authorization"), "/v1/models"),
            "/openai/v1/models"
        );
        assert_eq!(
            upstream_path(&provider("", "authorization"), "/v1/models"),
            "/models"
        );
    }

    #[test]
    fn credentials_are_swapped_and_control_headers_stripped() {
        let mut client = RequestHeader::build("POST", b"/v1/chat/completions", None).unwrap();
        client
            .insert_header("authorization", "Bearer vk-app")
            .unwrap();
        client.insert_header("x-portkey-config", "chat").unwrap();
        client
            .insert_header("x-switchyard-virtual-key", "vk-app")
            .unwrap();
        client.insert_header("accept-encoding", "gzip").unwrap();
        client.insert_header("user-agent", "OpenAI/Python").unwrap();
        let req = build_request(
            &provider("/v1", "authorization"),
            &Method::POST,
            "/v1/chat/completions",
            &client,
            12,
        )
        .unwrap();
        let h = |n: &str| req.headers.get(n).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(h("authorization").as_deref(), Some("Bearer sk-real"));
        assert_eq!(h("host").as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(h("content-length").as_deref(), Some("12"));
        assert_eq!(h("user-agent").as_deref(), Some("OpenAI/Python"));
        assert!(h("x-portkey-config").is_none());
        assert!(h("x-switchyard-virtual-key").is_none());
        assert!(h("accept-encoding").is_none());
        let azure = build_request(
            &provider("/v1", "api-key"),
            &Method::POST,
            "/v1/x",
            &client,
            0,
        )
        .unwrap();
        assert_eq!(azure.headers.get("api-key").unwrap(), "sk-real");
        assert!(azure.headers.get("authorization").is_none());
    }

    #[test]
    fn stream_events_are_classified() {
        let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        let text = r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
        let tool = r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0}]}}]}"#;
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":1}}"#;
        assert_eq!(classify_event(&ev(role)), EventClass::Preamble);
        assert_eq!(classify_event(&ev(text)), EventClass::Content);
        assert_eq!(classify_event(&ev(tool)), EventClass::Content);
        assert_eq!(classify_event(&ev(usage)), EventClass::Preamble);
        // A finish without any content before it is not content (an empty answer).
        let finish = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        assert_eq!(classify_event(&ev(finish)), EventClass::Preamble);
        assert_eq!(classify_event(&ev("[DONE]")), EventClass::Done);
        assert_eq!(
            classify_event(&ev(r#"{"error":{"message":"x"}}"#)),
            EventClass::Error
        );
        assert_eq!(
            classify_event(&ev(r#"{"type":"response.created"}"#)),
            EventClass::Preamble
        );
        assert_eq!(
            classify_event(&ev(r#"{"type":"response.output_text.delta","delta":"a"}"#)),
            EventClass::Content
        );
        assert_eq!(classify_event(&ev("")), EventClass::Preamble);
    }
}
