//! Where an OpenAI-format provider's requests go and how they authenticate.
//!
//! | kind | chat request goes to | auth (default) |
//! |---|---|---|
//! | `openai`, `openai-compatible` | `{base}/chat/completions` (a `/v1/chat/completions` client path keeps its rest and query) | `authorization: Bearer` (or none) |
//! | `azure-openai` | `{base}/openai/deployments/{deployment}/chat/completions?api-version=…`; a base ending in `/openai/v1` is the v1 API: like `openai`. A Responses API request goes to `{base}/openai/v1/responses` | `api-key` |
//!
//! Anything else goes to `{base}` + the client path without its leading `/v1`. The default
//! base URL and auth header of each kind are in [`crate::vocab::ProviderKind`], where the
//! config compiler reads them.

use pingora::http::RequestHeader;

use crate::config::Provider;
use crate::providers::endpoint::{base_plus_rest, insert_credential, join, RequestHead};
use crate::providers::segment::encode_segment;
use crate::vocab::{ClientFormat, ProviderKind};

/// The Azure OpenAI `api-version` when the provider config sets none (the latest GA
/// data-plane inference version).
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

/// The upstream path and query for one attempt to an `openai`, `openai-compatible` or
/// `azure-openai` provider.
pub(crate) fn upstream_path(provider: &Provider, head: &RequestHead<'_>) -> String {
    let client = head.client_path_and_query;
    let Some(chat) = head.chat else {
        return base_plus_rest(provider, client);
    };
    let base = provider.base_url.path.as_str();
    if provider.kind == ProviderKind::AzureOpenAi && !base.ends_with("/openai/v1") {
        if chat.format == crate::vocab::Format::Responses {
            // Azure's Responses API is only in its v1 API (the model is the deployment).
            let root = base.strip_suffix("/openai").unwrap_or(base);
            return format!("{root}/openai/v1/responses");
        }
        return azure_deployment_path(provider, base, chat.model);
    }
    // The Responses API and Chat Completions: the client's own path (rest and query) when it
    // asked for that endpoint, else the endpoint under the base.
    let (endpoint, own) = match chat.format {
        crate::vocab::Format::Responses => ("/responses", ClientFormat::Responses),
        _ => ("/chat/completions", ClientFormat::OpenAi),
    };
    if ClientFormat::from_path(client) == Some(own) {
        base_plus_rest(provider, client)
    } else {
        join(base, endpoint)
    }
}

/// Azure's classic data-plane path: the model's deployment (the model itself unless
/// `deployments:` maps it) and the `api-version`.
fn azure_deployment_path(provider: &Provider, base: &str, model: &str) -> String {
    let root = base.strip_suffix("/openai").unwrap_or(base);
    let deployment = provider
        .deployments
        .get(model)
        .map_or(model, String::as_str);
    let version = provider
        .api_version
        .as_deref()
        .unwrap_or(AZURE_DEFAULT_API_VERSION);
    format!(
        "{root}/openai/deployments/{}/chat/completions?api-version={}",
        encode_segment(deployment),
        encode_segment(version)
    )
}

/// The credential (`authorization: Bearer` for `openai` and `openai-compatible`, `api-key` for
/// Azure, unless the config names another header).
pub(crate) fn auth_headers(
    provider: &Provider,
    client: &RequestHeader,
    req: &mut RequestHeader,
) -> pingora::Result<()> {
    insert_credential(provider, client, req)
}

/// Headers of another provider's API, not forwarded to an OpenAI-format provider.
pub(crate) fn is_foreign_header(name: &str) -> bool {
    name.starts_with("anthropic-")
}
