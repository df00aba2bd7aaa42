//! What every provider kind's module builds an attempt's upstream request head from: the
//! attempt's facts ([`RequestHead`], [`ChatCall`]), the path helpers their path mappings share,
//! and the credential header. Each kind's module (`openai` — also Azure and OpenAI-compatible
//! —, `anthropic`, `gemini`) owns its own path mapping and auth headers with these;
//! [`super::head`] dispatches on the kind.

use http::Method;
use pingora::http::RequestHeader;

use crate::config::Provider;
use crate::vocab::headers::{caller_credential, PORTKEY_PLACEHOLDER};

/// What one attempt sends, as far as the head is concerned.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a Method,
    /// The client's path and query, e.g. `/v1/chat/completions` or `/v1/messages?beta=true`.
    pub client_path_and_query: &'a str,
    /// `Some` for a chat request encoded for this provider's format: the provider's chat
    /// endpoint is used. `None`: the client path is forwarded under the base path.
    pub chat: Option<ChatCall<'a>>,
    /// Length of the body that will be sent.
    pub body_len: usize,
}

/// The facts about a chat request the head depends on.
#[derive(Debug, Clone, Copy)]
pub struct ChatCall<'a> {
    /// The model asked of the provider (after overrides): Gemini's path, Azure's deployment.
    pub model: &'a str,
    pub stream: bool,
    /// The format the body is in (an `openai` provider serves Chat Completions and the
    /// Responses API at different paths).
    pub format: crate::vocab::Format,
}

/// `base path + client path without its leading /v1`: `/v1/chat/completions?x=1` under base
/// `/v1` → `/v1/chat/completions?x=1`.
pub(super) fn base_plus_rest(provider: &Provider, client_path_and_query: &str) -> String {
    join(&provider.base_url.path, strip_v1(client_path_and_query))
}

/// `path` without a leading `/v1` segment (kept when it is a longer one, e.g. `/v1beta`).
pub(super) fn strip_v1(path: &str) -> &str {
    match path.strip_prefix("/v1") {
        Some(rest) if rest.is_empty() || rest.starts_with(['/', '?']) => rest,
        _ => path,
    }
}

/// `base + rest`, made absolute (`/`) when it would be empty or start with the query.
pub(super) fn join(base: &str, rest: &str) -> String {
    let mut path = String::with_capacity(base.len() + rest.len() + 1);
    path.push_str(base);
    path.push_str(rest);
    if path.is_empty() || path.starts_with('?') {
        path.insert(0, '/');
    }
    path
}

/// The base path with an API version segment: kept when it already ends in one (`/v1`,
/// `/v1beta`), else `default` appended.
pub(super) fn versioned(base: &str, default: &str) -> String {
    let last = base.rsplit('/').next().unwrap_or("");
    let is_version = last
        .strip_prefix('v')
        .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()));
    if is_version {
        base.to_string()
    } else {
        format!("{base}{default}")
    }
}

/// The query of a path and query, without its `?`.
pub(super) fn query_of(path_and_query: &str) -> Option<&str> {
    path_and_query.split_once('?').map(|(_, q)| q)
}

/// The provider's credential in its `auth_header` (the kind's default unless the config names
/// another): `authorization` carries it as `Bearer`, any other header as it is. No key, no
/// header.
pub(super) fn insert_credential(
    provider: &Provider,
    client: &RequestHeader,
    req: &mut RequestHeader,
) -> pingora::Result<()> {
    let key = match &provider.api_key {
        Some(key) => Some(key.expose()),
        // Passthrough: the caller's own key, in the header this provider reads it from.
        None if provider.caller_credential => caller_credential(&client.headers)
            .map(|(_, v)| v)
            .filter(|v| *v != PORTKEY_PLACEHOLDER),
        None => None,
    };
    if let Some(key) = key {
        if provider.auth_header == "authorization" {
            req.insert_header(http::header::AUTHORIZATION, format!("Bearer {key}"))?;
        } else {
            req.insert_header(provider.auth_header.clone(), key)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BaseUrl;
    use crate::vocab::ProviderKind;
    use std::collections::HashMap;

    fn provider(path: &str) -> Provider {
        Provider {
            name: "p".into(),
            kind: ProviderKind::OpenAi,
            base_url: BaseUrl {
                tls: false,
                host: "127.0.0.1".into(),
                port: 9000,
                path: path.into(),
            },
            api_key: None,
            auth_header: "authorization".into(),
            ca_file: None,
            api_version: None,
            headers: vec![],
            deployments: HashMap::new(),
            caller_credential: false,
            connections: Default::default(),
        }
    }

    #[test]
    fn passthrough_paths_map_under_the_base_path() {
        let p = provider;
        assert_eq!(
            base_plus_rest(&p("/v1"), "/v1/chat/completions?a=1"),
            "/v1/chat/completions?a=1"
        );
        assert_eq!(
            base_plus_rest(&p("/openai/v1"), "/v1/models"),
            "/openai/v1/models"
        );
        assert_eq!(base_plus_rest(&p(""), "/v1/models"), "/models");
        assert_eq!(base_plus_rest(&p(""), "/v1"), "/");
        assert_eq!(base_plus_rest(&p("/v1"), "/v1beta/x"), "/v1/v1beta/x");
    }
}
