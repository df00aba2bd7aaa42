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
use crate::vocab::kinds::{
    portkey_provider, portkey_provider_ids, PortkeyProvider, PORTKEY_PROVIDERS,
};

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
        let default_provider = spec.and_then(|s| s.default_provider.clone());
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
        };
        for &PortkeyProvider { id, kind, base_url } in &PORTKEY_PROVIDERS {
            let standard = base_url;
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
            let breaker_key = format!("{CONFIG_LABEL}/{id}");
            let root = Target::leaf(breaker_key, id.to_string(), key, root_settings);
            let route = RouteConfig::new(CONFIG_LABEL.into(), root);
            table.routes.insert(id.to_string(), Arc::new(route));
        }
        if let Some(d) = &table.default_provider {
            match portkey_provider(d) {
                None => self.error(
                    "passthrough.default_provider",
                    format!(
                        "unknown provider id {d:?}: one of {}",
                        portkey_provider_ids()
                    ),
                ),
                Some(_) if table.route(d).is_none() => self.error(
                    "passthrough.default_provider",
                    format!("{d} has no standard base URL: set {}", base_url_env(d)),
                ),
                Some(_) => {}
            }
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
        let Some(kind) = portkey_provider(id).map(|p| p.kind) else {
            self.error(
                format!("{path}.provider"),
                format!(
                    "unknown provider id {id:?}: one of {}",
                    portkey_provider_ids()
                ),
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
        connections: Default::default(),
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
