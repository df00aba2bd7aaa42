//! `passthrough:` and passthrough targets (`provider:` in a config node): the app's own
//! provider key, sent to a provider named by Portkey's provider id at its standard base URL.
//!
//! A passthrough target is a leaf like any other: a synthetic virtual key (no limits, no
//! allowlist, labelled `passthrough`) over a provider whose credential is the caller's
//! ([`Provider::caller_credential`]) or the target's own `api_key`. So the router, timeouts,
//! breakers, metrics, access log and cache treat it as they treat a configured key.

use std::collections::HashMap;
use std::sync::Arc;

use super::compiler::*;
use super::providers::parse_base_url;
use crate::config::schema::*;
use crate::config::snapshot::*;

/// Portkey's provider ids passthrough serves, their kind and standard base URL (`None`: only
/// with a custom host). `SWITCHYARD_<ID>_BASE_URL` (id upper-cased, `-` as `_`) replaces the
/// standard URL: a regional or corporate proxy endpoint, or a mock in tests.
const PROVIDERS: [(&str, ProviderKind, Option<&str>); 13] = [
    (
        "openai",
        ProviderKind::OpenAi,
        Some("https://api.openai.com/v1"),
    ),
    (
        "anthropic",
        ProviderKind::Anthropic,
        Some("https://api.anthropic.com"),
    ),
    (
        "google",
        ProviderKind::Gemini,
        Some("https://generativelanguage.googleapis.com"),
    ),
    (
        "groq",
        ProviderKind::OpenAiCompatible,
        Some("https://api.groq.com/openai/v1"),
    ),
    (
        "mistral-ai",
        ProviderKind::OpenAiCompatible,
        Some("https://api.mistral.ai/v1"),
    ),
    (
        "together-ai",
        ProviderKind::OpenAiCompatible,
        Some("https://api.together.xyz/v1"),
    ),
    (
        "deepseek",
        ProviderKind::OpenAiCompatible,
        Some("https://api.deepseek.com/v1"),
    ),
    (
        "fireworks-ai",
        ProviderKind::OpenAiCompatible,
        Some("https://api.fireworks.ai/inference/v1"),
    ),
    (
        "openrouter",
        ProviderKind::OpenAiCompatible,
        Some("https://openrouter.ai/api/v1"),
    ),
    (
        "perplexity-ai",
        ProviderKind::OpenAiCompatible,
        Some("https://api.perplexity.ai"),
    ),
    (
        "x-ai",
        ProviderKind::OpenAiCompatible,
        Some("https://api.x.ai/v1"),
    ),
    ("azure-openai", ProviderKind::AzureOpenAi, None),
    ("openai-compatible", ProviderKind::OpenAiCompatible, None),
];

/// Provider id `id` as a static string, if passthrough knows it (the `x-portkey-provider`
/// response header names the id a passthrough target was reached by).
pub fn static_id(id: &str) -> Option<&'static str> {
    PROVIDERS.iter().map(|(i, _, _)| *i).find(|i| *i == id)
}

/// The environment variable that replaces provider `id`'s standard base URL.
pub fn base_url_env(id: &str) -> String {
    format!(
        "SWITCHYARD_{}_BASE_URL",
        id.to_ascii_uppercase().replace('-', "_")
    )
}

/// The config label and metric `config` value of header-selected passthrough.
pub const CONFIG_LABEL: &str = "passthrough";

/// What a passthrough leaf needs from the file: the table and whether the node is inline.
pub(super) struct PassthroughScope<'s> {
    pub(super) table: &'s Passthrough,
    /// The node comes from a request header: `passthrough.enabled` is required, and never a
    /// custom host outside `passthrough.custom_hosts`.
    pub(super) inline: bool,
}

impl Compiler<'_> {
    /// `passthrough:`: enabled (default: only when the file defines no virtual keys), the
    /// default provider and custom hosts, and one route per provider with a standard URL.
    pub(super) fn passthrough(
        &mut self,
        file: &FileConfig,
        root_settings: &TargetSettings,
    ) -> Passthrough {
        let spec = file.passthrough.as_ref();
        let enabled = spec
            .and_then(|s| s.enabled)
            .unwrap_or(file.virtual_keys.is_empty());
        if enabled && spec.and_then(|s| s.enabled).is_none() && !file.providers.is_empty() {
            self.warn(
                "passthrough.enabled",
                "on by default because the file defines no virtual keys: a request with its own provider key goes to that provider's standard URL (set passthrough.enabled: false to refuse it)",
            );
        }
        let kinds: HashMap<String, ProviderKind> = PROVIDERS
            .iter()
            .map(|(id, kind, _)| (id.to_string(), *kind))
            .collect();
        let default_provider = spec.and_then(|s| s.default_provider.clone());
        if let Some(d) = &default_provider {
            if !kinds.contains_key(d) {
                self.error(
                    "passthrough.default_provider",
                    format!("unknown provider id {d:?}: one of {}", ids()),
                );
            }
        }
        let mut custom_hosts = Vec::new();
        for (i, h) in spec.iter().flat_map(|s| s.custom_hosts.iter()).enumerate() {
            match host_entry(h) {
                Ok(h) => custom_hosts.push(h),
                Err(e) => self.error(format!("passthrough.custom_hosts[{i}]"), e),
            }
        }
        let mut table = Passthrough {
            enabled,
            default_provider,
            custom_hosts,
            routes: HashMap::new(),
            kinds,
        };
        for (id, kind, standard) in PROVIDERS {
            let env = base_url_env(id);
            let url = std::env::var(&env).ok().filter(|v| !v.trim().is_empty());
            let Some(url) = url.as_deref().or(standard) else {
                continue;
            };
            let base_url = match parse_base_url(url.trim()) {
                Ok(u) => u,
                Err(e) => {
                    self.error(format!("passthrough ({env})"), e);
                    continue;
                }
            };
            let key = leaf_key(id, kind, base_url, None);
            let root = leaf_target(format!("{CONFIG_LABEL}/{id}"), id, key, root_settings);
            table.routes.insert(
                id.to_string(),
                Arc::new(RouteConfig {
                    name: CONFIG_LABEL.into(),
                    needs_body: root.needs_body(),
                    governed_keys: Vec::new(),
                    root,
                }),
            );
        }
        table
    }

    /// The leaf of a node with `provider:`: its provider at the standard URL or `custom_host`,
    /// with the node's `api_key` or else the caller's credential.
    pub(super) fn provider_leaf(
        &mut self,
        spec: &NodeSpec,
        path: &str,
        scope: &PassthroughScope<'_>,
    ) -> Option<Arc<VirtualKey>> {
        let id = spec.provider.as_deref()?;
        let table = scope.table;
        if scope.inline && !table.enabled {
            self.error(
                format!("{path}.provider"),
                "provider passthrough is off here (passthrough.enabled: false): name a virtual_key",
            );
            return None;
        }
        let Some(kind) = table.kinds.get(id).copied() else {
            self.error(
                format!("{path}.provider"),
                format!("unknown provider id {id:?}: one of {}", ids()),
            );
            return None;
        };
        let base_url = match &spec.custom_host {
            Some(host) => self.custom_host(&format!("{path}.custom_host"), host, table)?,
            None => match table.routes.get(id) {
                Some(route) => leaf_provider(&route.root)?.base_url.clone(),
                None => {
                    self.error(
                        format!("{path}.custom_host"),
                        format!("provider {id} has no standard base URL: set custom_host"),
                    );
                    return None;
                }
            },
        };
        let api_key = match spec.api_key.as_deref().map(str::trim) {
            Some("") => {
                self.error(format!("{path}.api_key"), "is empty");
                return None;
            }
            other => other.map(Secret::new),
        };
        Some(leaf_key(id, kind, base_url, api_key))
    }

    /// A custom host checked against `passthrough.custom_hosts`.
    pub(super) fn custom_host(
        &mut self,
        path: &str,
        host: &str,
        table: &Passthrough,
    ) -> Option<BaseUrl> {
        let url = match parse_base_url(host.trim()) {
            Ok(u) => u,
            Err(e) => {
                self.error(path, e);
                return None;
            }
        };
        if !table.allows_host(&url) {
            self.error(
                path,
                "this host is not listed in passthrough.custom_hosts (no host is, loopback included, unless listed)",
            );
            return None;
        }
        Some(url)
    }
}

fn ids() -> String {
    PROVIDERS
        .iter()
        .map(|(id, _, _)| *id)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `custom_hosts` entry as stored: `host` or `host:port`, lowercase (a URL is reduced to its
/// authority).
fn host_entry(entry: &str) -> Result<String, String> {
    let e = entry.trim();
    if e.contains("://") {
        let url = parse_base_url(e)?;
        return Ok(format!("{}:{}", url.host.to_ascii_lowercase(), url.port));
    }
    if e.is_empty() || e.contains(['/', '?', '#', '@', ' ']) {
        return Err("expected a host, host:port or URL".into());
    }
    Ok(e.trim_start_matches('[')
        .replace("]:", ":")
        .trim_end_matches(']')
        .to_ascii_lowercase())
}

/// The provider of a single-leaf target.
fn leaf_provider(t: &Target) -> Option<&Arc<Provider>> {
    match &t.kind {
        TargetKind::Leaf { virtual_key } => Some(&virtual_key.provider),
        TargetKind::Group { .. } => None,
    }
}

/// The synthetic virtual key of a passthrough leaf: no limits, no allowlist.
fn leaf_key(
    id: &str,
    kind: ProviderKind,
    base_url: BaseUrl,
    key: Option<Secret>,
) -> Arc<VirtualKey> {
    let provider = Provider {
        name: id.to_string(),
        kind,
        base_url,
        caller_credential: key.is_none(),
        api_key: key,
        auth_header: kind.default_auth_header().to_string(),
        ca_file: None,
        api_version: None,
        headers: Vec::new(),
        deployments: HashMap::new(),
    };
    Arc::new(VirtualKey {
        name: format!("{CONFIG_LABEL}:{id}"),
        label: CONFIG_LABEL.into(),
        provider: Arc::new(provider),
        models: None,
        config: None,
        disabled: false,
        limits: KeyLimits::default(),
    })
}

/// A one-leaf route's root: the provider id is its name and `target` label.
pub(super) fn leaf_target(
    breaker_key: String,
    id: &str,
    virtual_key: Arc<VirtualKey>,
    settings: &TargetSettings,
) -> Target {
    Target {
        path: "config".into(),
        name: Some(id.to_string()),
        breaker_key,
        weight: 1.0,
        kind: TargetKind::Leaf { virtual_key },
        settings: settings.clone(),
    }
}
