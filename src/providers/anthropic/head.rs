//! Where an `anthropic` provider's requests go and how they authenticate: a chat request goes
//! to `{base}/v1/messages` (a base already ending in a version segment such as `/v1` is not
//! doubled; an Anthropic client's query, e.g. `?beta=true`, is kept), anything else to
//! `{base}/v1` + the client path without its leading `/v1`. The credential goes in
//! `x-api-key` (unless the config names another header), with `anthropic-version`. The
//! default base URL and auth header are in [`crate::vocab::ProviderKind`], where the config
//! compiler reads them.

use pingora::http::RequestHeader;

use crate::config::Provider;
use crate::providers::endpoint::{
    insert_credential, join, query_of, strip_v1, versioned, RequestHead,
};
use crate::vocab::ClientFormat;

/// The `anthropic-version` header value when the provider config sets no `api_version`.
pub const DEFAULT_VERSION: &str = "2023-06-01";

/// The upstream path and query for one attempt to an `anthropic` provider.
pub(crate) fn upstream_path(provider: &Provider, head: &RequestHead<'_>) -> String {
    let base = versioned(&provider.base_url.path, "/v1");
    let client = head.client_path_and_query;
    if head.chat.is_none() {
        return join(&base, strip_v1(client));
    }
    let mut path = format!("{base}/messages");
    if ClientFormat::from_path(client) == Some(ClientFormat::Anthropic) {
        if let Some(q) = query_of(client) {
            path.push('?');
            path.push_str(q);
        }
    }
    path
}

/// The credential and `anthropic-version`: the provider's `api_version` when set, else the
/// client's own header, else [`DEFAULT_VERSION`].
pub(crate) fn auth_headers(
    provider: &Provider,
    client: &RequestHeader,
    req: &mut RequestHeader,
) -> pingora::Result<()> {
    insert_credential(provider, client, req)?;
    match &provider.api_version {
        Some(v) => req.insert_header("anthropic-version", v.as_str())?,
        None if !req.headers.contains_key("anthropic-version") => {
            req.insert_header("anthropic-version", DEFAULT_VERSION)?
        }
        None => {}
    }
    Ok(())
}

/// Headers of another provider's API, not forwarded to an Anthropic provider.
pub(crate) fn is_foreign_header(name: &str) -> bool {
    name.starts_with("openai-")
}
