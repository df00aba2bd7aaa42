//! The upstream request head for one attempt: method, path and query, `Host`, the provider's
//! credential and version headers, and the client headers worth forwarding (never the client's
//! credentials or the account they select — `OpenAI-Organization`, `OpenAI-Project` belong to
//! the real credential: set them in the provider's `headers:` —, our control headers, hop-by-hop
//! headers (the fixed list and any named in `Connection`), the client-address headers
//! `Forwarded`, `X-Forwarded-*`, `X-Real-IP`, `Via`, `accept-encoding`, or headers of another
//! provider's API).
//!
//! Where a chat request goes, how the credential is sent and which headers are another
//! provider's are facts of each provider kind, owned by its module: `openai` (also
//! `azure-openai` and `openai-compatible`), `anthropic`, `gemini`, each of which documents its
//! paths. This module only dispatches on the kind. Anything that is not a chat request is
//! forwarded under the base path as the client sent it.

use http::Method;
use pingora::http::RequestHeader;

use super::{anthropic, gemini, openai};
use crate::config::Provider;
use crate::vocab::ProviderKind;

use super::endpoint::RequestHead;

/// Client headers never forwarded upstream: credentials the app sent (the provider's own is
/// injected instead) and the organisation/project they would select on the provider's account,
/// our control headers, hop-by-hop headers, what we recompute, and headers that describe the
/// client's network (the provider has no business with pod addresses, and a client could forge
/// them).
fn is_stripped(name: &str) -> bool {
    never_forwarded(name)
        || matches!(
            name,
            "authorization"
                | "x-api-key"
                | "api-key"
                | "x-goog-api-key"
                | "openai-organization"
                | "openai-project"
                | "cookie"
                | "forwarded"
                | "x-real-ip"
                | "x-client-ip"
                | "true-client-ip"
                | "via"
        )
        || name.starts_with("x-forwarded-")
}

/// `x-portkey-forward-headers`: client headers to forward although they are normally dropped
/// (a credential or account header for a custom host, `cookie`, another provider's headers).
pub const FORWARD_HEADERS: &str = "x-portkey-forward-headers";

/// Headers never forwarded, listed or not: framing and hop-by-hop headers (we recompute or
/// consume them), `accept-encoding` (we read bodies as sent), our control headers.
fn never_forwarded(name: &str) -> bool {
    matches!(
        name,
        "host"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-connection"
            | "proxy-authorization"
            | "expect"
            // We must read JSON and SSE as sent: ask for identity encoding.
            | "accept-encoding"
    ) || name.starts_with("x-portkey-")
        || name.starts_with("x-switchyard-")
}

/// Whether the client's `x-portkey-forward-headers` lists `name` (and it may be forwarded).
fn listed_to_forward(client: &RequestHeader, name: &str) -> bool {
    !never_forwarded(name)
        && client
            .headers
            .get_all(FORWARD_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|listed| listed.trim().eq_ignore_ascii_case(name))
}

/// Whether the client's `Connection` header lists `name` (RFC 9110 §7.6.1: such headers are
/// hop-by-hop and end at this proxy).
fn named_in_connection(client: &RequestHeader, name: &str) -> bool {
    client
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case(name))
}

/// Headers that belong to another provider's API (an Anthropic SDK's `anthropic-beta` means
/// nothing to OpenAI, and could be refused).
fn is_foreign(kind: ProviderKind, name: &str) -> bool {
    match kind {
        ProviderKind::OpenAi | ProviderKind::AzureOpenAi | ProviderKind::OpenAiCompatible => {
            openai::is_foreign_header(name)
        }
        ProviderKind::Anthropic => anthropic::is_foreign_header(name),
        ProviderKind::Gemini => gemini::is_foreign_header(name),
    }
}

/// The upstream path and query for one attempt: the provider kind's own mapping.
pub fn upstream_path(provider: &Provider, head: &RequestHead<'_>) -> String {
    match provider.kind {
        ProviderKind::OpenAi | ProviderKind::AzureOpenAi | ProviderKind::OpenAiCompatible => {
            openai::upstream_path(provider, head)
        }
        ProviderKind::Anthropic => anthropic::upstream_path(provider, head),
        ProviderKind::Gemini => gemini::upstream_path(provider, head),
    }
}

/// The provider's credential and version headers: the provider kind's own.
fn insert_auth(
    provider: &Provider,
    client: &RequestHeader,
    req: &mut RequestHeader,
) -> pingora::Result<()> {
    match provider.kind {
        ProviderKind::OpenAi | ProviderKind::AzureOpenAi | ProviderKind::OpenAiCompatible => {
            openai::auth_headers(provider, client, req)
        }
        ProviderKind::Anthropic => anthropic::auth_headers(provider, client, req),
        ProviderKind::Gemini => gemini::auth_headers(provider, client, req),
    }
}

/// Builds the upstream request head for one attempt.
pub fn build_request(
    provider: &Provider,
    client: &RequestHeader,
    head: &RequestHead<'_>,
) -> pingora::Result<RequestHeader> {
    let path = upstream_path(provider, head);
    // No case-preserving name map: names go out as pingora writes one it has no case for
    // (standard ones title-cased, others as they are) — what the map held for every name set
    // here — and the head is cheaper to build and to clone per attempt.
    let mut req = RequestHeader::build_no_case(
        head.method.clone(),
        path.as_bytes(),
        Some(client.headers.len() + 4),
    )?;
    req.insert_header(http::header::HOST, provider.base_url.host_header())?;
    let has_connection = client.headers.contains_key(http::header::CONNECTION);
    let has_forward_list = client.headers.contains_key(FORWARD_HEADERS);
    for (name, value) in client.headers.iter() {
        let n = name.as_str();
        let dropped = (is_stripped(n) || is_foreign(provider.kind, n))
            && !(has_forward_list && listed_to_forward(client, n))
            || (has_connection && named_in_connection(client, n));
        if !dropped {
            req.append_header(name.clone(), value.clone())?;
        }
    }
    if head.chat.is_some() {
        req.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    }
    if head.method != Method::GET || head.body_len > 0 {
        req.insert_header(http::header::CONTENT_LENGTH, head.body_len.to_string())?;
    }
    insert_auth(provider, client, &mut req)?;
    for (name, value) in &provider.headers {
        req.insert_header(name.clone(), value.as_str())?;
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BaseUrl, Secret};
    use crate::providers::ChatCall;
    use std::collections::HashMap;

    fn provider(kind: ProviderKind, path: &str, auth: &str) -> Provider {
        Provider {
            name: "p".into(),
            kind,
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
            deployments: HashMap::new(),
            caller_credential: false,
            connections: Default::default(),
        }
    }

    fn head<'a>(path: &'a str, chat: Option<ChatCall<'a>>) -> RequestHead<'a> {
        RequestHead {
            method: &Method::POST,
            client_path_and_query: path,
            chat,
            body_len: 12,
        }
    }

    fn chat(model: &str, stream: bool) -> Option<ChatCall<'_>> {
        Some(ChatCall {
            model,
            stream,
            format: crate::vocab::Format::OpenAi,
        })
    }

    #[test]
    fn chat_paths_per_kind() {
        let openai = provider(ProviderKind::OpenAi, "/v1", "authorization");
        assert_eq!(
            upstream_path(&openai, &head("/v1/chat/completions?x=1", chat("m", false))),
            "/v1/chat/completions?x=1"
        );
        assert_eq!(
            upstream_path(&openai, &head("/v1/messages?beta=true", chat("m", false))),
            "/v1/chat/completions"
        );

        let mut azure = provider(ProviderKind::AzureOpenAi, "", "api-key");
        assert_eq!(
            upstream_path(&azure, &head("/v1/chat/completions", chat("gpt-4o", true))),
            "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        );
        azure.api_version = Some("2025-01-01-preview".into());
        azure.deployments.insert("gpt-4o".into(), "prod-4o".into());
        assert_eq!(
            upstream_path(&azure, &head("/v1/messages", chat("gpt-4o", false))),
            "/openai/deployments/prod-4o/chat/completions?api-version=2025-01-01-preview"
        );
        // The Responses API: Azure's v1 API; `openai` under its base.
        let responses = Some(ChatCall {
            model: "gpt-4o",
            stream: true,
            format: crate::vocab::Format::Responses,
        });
        assert_eq!(
            upstream_path(&azure, &head("/v1/responses", responses)),
            "/openai/v1/responses"
        );
        let openai = provider(ProviderKind::OpenAi, "/v1", "authorization");
        assert_eq!(
            upstream_path(&openai, &head("/v1/responses?x=1", responses)),
            "/v1/responses?x=1"
        );
        let azure_v1 = provider(ProviderKind::AzureOpenAi, "/openai/v1", "api-key");
        assert_eq!(
            upstream_path(&azure_v1, &head("/v1/messages", chat("gpt-4o", false))),
            "/openai/v1/chat/completions"
        );

        for base in ["", "/v1"] {
            let anthropic = provider(ProviderKind::Anthropic, base, "x-api-key");
            assert_eq!(
                upstream_path(&anthropic, &head("/v1/chat/completions", chat("c", false))),
                "/v1/messages"
            );
            assert_eq!(
                upstream_path(&anthropic, &head("/v1/messages?beta=true", chat("c", true))),
                "/v1/messages?beta=true"
            );
            assert_eq!(
                upstream_path(&anthropic, &head("/v1/messages/count_tokens", None)),
                "/v1/messages/count_tokens"
            );
        }

        let gemini = provider(ProviderKind::Gemini, "", "x-goog-api-key");
        assert_eq!(
            upstream_path(
                &gemini,
                &head("/v1/chat/completions", chat("gemini-2.5-flash", false))
            ),
            "/v1beta/models/gemini-2.5-flash:generateContent"
        );
        let gemini_v1 = provider(ProviderKind::Gemini, "/v1", "x-goog-api-key");
        assert_eq!(
            upstream_path(
                &gemini_v1,
                &head("/v1/messages", chat("models/gemini-2.5-pro", true))
            ),
            "/v1/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
    }

    fn client_head() -> RequestHeader {
        let mut client = RequestHeader::build("POST", b"/v1/chat/completions", None).unwrap();
        for (k, v) in [
            ("authorization", "Bearer vk-app"),
            ("x-api-key", "vk-app"),
            ("x-portkey-config", "chat"),
            ("x-switchyard-virtual-key", "vk-app"),
            ("accept-encoding", "gzip"),
            ("user-agent", "OpenAI/Python"),
            ("anthropic-beta", "tools-2024"),
            ("openai-organization", "org-1"),
        ] {
            client.insert_header(k, v).unwrap();
        }
        client
    }

    #[test]
    fn credentials_are_swapped_and_control_headers_stripped() {
        let client = client_head();
        let req = build_request(
            &provider(ProviderKind::OpenAi, "/v1", "authorization"),
            &client,
            &head("/v1/chat/completions", None),
        )
        .unwrap();
        let h = |n: &str| req.headers.get(n).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(h("authorization").as_deref(), Some("Bearer sk-real"));
        assert_eq!(h("host").as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(h("content-length").as_deref(), Some("12"));
        assert_eq!(h("user-agent").as_deref(), Some("OpenAI/Python"));
        for gone in [
            "openai-organization",
            "x-api-key",
            "x-portkey-config",
            "x-switchyard-virtual-key",
            "accept-encoding",
            "anthropic-beta",
        ] {
            assert!(h(gone).is_none(), "{gone}");
        }
        let azure = build_request(
            &provider(ProviderKind::AzureOpenAi, "", "api-key"),
            &client,
            &head("/v1/x", None),
        )
        .unwrap();
        assert_eq!(azure.headers.get("api-key").unwrap(), "sk-real");
        assert!(azure.headers.get("authorization").is_none());
    }

    /// Issue 17 item 10: the client's organisation/project and address headers reached the
    /// provider.
    #[test]
    fn account_and_client_address_headers_never_reach_the_provider() {
        let mut client = RequestHeader::build("POST", b"/v1/chat/completions", None).unwrap();
        for (k, v) in [
            ("OpenAI-Organization", "org-attacker"),
            ("OpenAI-Project", "proj-attacker"),
            ("X-Forwarded-For", "10.0.0.1"),
            ("X-Forwarded-Host", "internal.example"),
            ("X-Forwarded-Proto", "http"),
            ("Forwarded", "for=10.0.0.1"),
            ("X-Real-IP", "10.0.0.1"),
            ("Via", "1.1 app"),
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Upgrade", "h2c"),
            ("X-Kept", "yes"),
        ] {
            client.append_header(k, v).unwrap();
        }
        let mut p = provider(ProviderKind::OpenAi, "/v1", "authorization");
        p.headers = vec![("openai-organization".into(), "org-real".into())];
        let req = build_request(&p, &client, &head("/v1/chat/completions", None)).unwrap();
        for gone in [
            "openai-project",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "forwarded",
            "x-real-ip",
            "via",
            "connection",
            "x-hop",
            "keep-alive",
            "te",
            "upgrade",
        ] {
            assert!(req.headers.get(gone).is_none(), "{gone}");
        }
        // The provider's own organisation is what goes upstream.
        assert_eq!(req.headers.get_all("openai-organization").iter().count(), 1);
        assert_eq!(req.headers.get("openai-organization").unwrap(), "org-real");
        assert_eq!(req.headers.get("x-kept").unwrap(), "yes");
    }

    #[test]
    fn anthropic_and_gemini_heads() {
        let client = client_head();
        let mut anthropic = provider(ProviderKind::Anthropic, "", "x-api-key");
        let req = build_request(
            &anthropic,
            &client,
            &head("/v1/chat/completions", chat("c", false)),
        )
        .unwrap();
        assert_eq!(req.uri.path(), "/v1/messages");
        assert_eq!(req.headers.get("x-api-key").unwrap(), "sk-real");
        assert_eq!(req.headers.get("anthropic-version").unwrap(), "2023-06-01");
        assert_eq!(req.headers.get("anthropic-beta").unwrap(), "tools-2024");
        assert_eq!(req.headers.get("content-type").unwrap(), "application/json");
        assert!(req.headers.get("authorization").is_none());
        assert!(req.headers.get("openai-organization").is_none());

        // The client's own version is kept unless the provider config pins one.
        let mut with_version = client_head();
        with_version
            .insert_header("anthropic-version", "2024-01-01")
            .unwrap();
        let req = build_request(
            &anthropic,
            &with_version,
            &head("/v1/messages", chat("c", false)),
        )
        .unwrap();
        assert_eq!(req.headers.get("anthropic-version").unwrap(), "2024-01-01");
        anthropic.api_version = Some("2023-06-01".into());
        let req = build_request(
            &anthropic,
            &with_version,
            &head("/v1/messages", chat("c", false)),
        )
        .unwrap();
        assert_eq!(req.headers.get("anthropic-version").unwrap(), "2023-06-01");

        let gemini = provider(ProviderKind::Gemini, "", "x-goog-api-key");
        let req = build_request(
            &gemini,
            &client,
            &head("/v1/messages", chat("gemini-2.5-flash", true)),
        )
        .unwrap();
        assert_eq!(
            req.uri.to_string(),
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(req.headers.get("x-goog-api-key").unwrap(), "sk-real");
        assert!(req.headers.get("anthropic-beta").is_none());

        let mut keyless = provider(ProviderKind::OpenAiCompatible, "/v1", "authorization");
        keyless.api_key = None;
        let req = build_request(&keyless, &client, &head("/v1/chat/completions", None)).unwrap();
        assert!(req.headers.get("authorization").is_none());
    }
}
