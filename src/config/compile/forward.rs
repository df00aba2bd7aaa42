//! `forward:`: the forward proxy (CA, intercepted and allowed hosts, inferred providers).

use std::collections::HashMap;
use std::sync::Arc;

use sha2::Digest;

use super::compiler::*;
use crate::config::ca::CaError;
use crate::config::ca::LocalCa;
use crate::config::hosts::HostPattern;
use crate::config::schema::*;
use crate::config::secrets;
use crate::config::snapshot::*;

impl Compiler<'_> {
    /// `forward:`: the CA files loaded and checked, the host patterns parsed, and each
    /// intercepted host's provider inferred (see [`infer_forward_provider`]).
    pub(super) fn forward(
        &mut self,
        spec: &ForwardSpec,
        providers: &[Arc<Provider>],
        root_settings: &TargetSettings,
    ) -> Option<ForwardSettings> {
        let cert_path = secrets::resolve_path(&spec.ca_cert, self.base_dir);
        let key_path = secrets::resolve_path(&spec.ca_key, self.base_dir);
        let ca = match LocalCa::load(&cert_path, &key_path) {
            Ok((ca, bytes)) => {
                self.hasher.update(&bytes);
                self.source_files.push(cert_path);
                self.source_files.push(key_path);
                Some(Arc::new(ca))
            }
            Err(e) => {
                let field = match e {
                    CaError::BadKey { .. }
                    | CaError::KeyMismatch { .. }
                    | CaError::KeyPermissions { .. } => "forward.ca_key",
                    CaError::Read { ref path, .. } if *path == key_path => "forward.ca_key",
                    _ => "forward.ca_cert",
                };
                match e {
                    // Absent where the file is checked (the CA is a mounted secret).
                    CaError::Read { .. } => self.absent(field, e.to_string()),
                    _ => self.error(field, e.to_string()),
                }
                None
            }
        };
        let default_intercept = DEFAULT_INTERCEPT.map(String::from);
        let written = spec.intercept.as_deref().unwrap_or(&default_intercept);
        let mut routes: HashMap<String, Arc<RouteConfig>> = HashMap::new();
        let mut intercept = Vec::new();
        for (i, text) in written.iter().enumerate() {
            let path = format!("forward.intercept[{i}]");
            let pattern = match HostPattern::parse(text) {
                Ok(p) => p,
                Err(e) => {
                    self.error(path, e);
                    continue;
                }
            };
            let chosen = match spec.providers.as_ref().and_then(|m| m.get(text.trim())) {
                Some(name) => match providers.iter().find(|p| &p.name == name) {
                    Some(p) => Some(p.clone()),
                    None => {
                        self.error(
                            format!("forward.providers.{}", text.trim()),
                            format!("unknown provider {name:?}"),
                        );
                        None
                    }
                },
                None => match infer_forward_provider(&pattern, providers) {
                    Ok(p) => p,
                    Err(e) => {
                        self.error(path, e);
                        None
                    }
                },
            };
            let route = chosen.map(|provider| {
                routes
                    .entry(provider.name.clone())
                    .or_insert_with(|| forward_route(provider, root_settings))
                    .clone()
            });
            if ca.as_ref().is_some_and(|ca| !ca.permits(&pattern)) {
                self.error(
                    format!("forward.intercept[{i}]"),
                    format!("the CA's name constraints do not permit {pattern}: re-create it with `switchyard ca init --permit <domain>`"),
                );
            }
            intercept.push(InterceptRule { pattern, route });
        }
        for key in spec.providers.iter().flat_map(|m| m.keys()) {
            if !written.iter().any(|w| w.trim() == key) {
                self.error(
                    format!("forward.providers.{key}"),
                    "not an entry of forward.intercept",
                );
            }
        }
        let mut allow_hosts = Vec::new();
        for (i, text) in spec.allow_hosts.iter().flatten().enumerate() {
            match crate::config::hosts::AllowHost::parse(text) {
                Ok(p) => allow_hosts.push(p),
                Err(e) => self.error(format!("forward.allow_hosts[{i}]"), e),
            }
        }
        Some(ForwardSettings {
            ca: ca?,
            intercept,
            allow_hosts,
        })
    }
}

/// The hosts intercepted when `forward.intercept` is not given.
const DEFAULT_INTERCEPT: [&str; 4] = [
    "api.openai.com",
    "api.anthropic.com",
    "generativelanguage.googleapis.com",
    "*.openai.azure.com",
];

/// The provider an intercepted host's requests go to when they select nothing: the host's
/// provider kind (`api.openai.com` → openai, `api.anthropic.com` → anthropic,
/// `generativelanguage.googleapis.com` → gemini, `*.openai.azure.com` → azure-openai), then the
/// one configured provider of that kind; among several, the one whose `base_url` host is the
/// intercepted host. `Ok(None)`: the host has no known kind, or no provider of it is configured.
pub(super) fn infer_forward_provider(
    pattern: &HostPattern,
    providers: &[Arc<Provider>],
) -> Result<Option<Arc<Provider>>, String> {
    let kind = match pattern {
        HostPattern::Exact(h) if h == "api.openai.com" => ProviderKind::OpenAi,
        HostPattern::Exact(h) if h == "api.anthropic.com" => ProviderKind::Anthropic,
        HostPattern::Exact(h) if h == "generativelanguage.googleapis.com" => ProviderKind::Gemini,
        HostPattern::Exact(h) if h.ends_with(".openai.azure.com") => ProviderKind::AzureOpenAi,
        HostPattern::Subdomains(s) if s.ends_with(".openai.azure.com") => ProviderKind::AzureOpenAi,
        _ => return Ok(None),
    };
    let of_kind: Vec<&Arc<Provider>> = providers.iter().filter(|p| p.kind == kind).collect();
    if of_kind.len() <= 1 {
        return Ok(of_kind.first().map(|p| (*p).clone()));
    }
    let same_host: Vec<&&Arc<Provider>> = of_kind
        .iter()
        .filter(|p| pattern.matches(&p.base_url.host))
        .collect();
    match same_host.as_slice() {
        [one] => Ok(Some((**one).clone())),
        _ => Err(format!(
            "several {} providers ({}) could serve {pattern}: name one under forward.providers",
            kind.as_str(),
            of_kind
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// A one-target route to `provider` with its own credential, labelled `forward` in metrics.
pub(super) fn forward_route(
    provider: Arc<Provider>,
    settings: &TargetSettings,
) -> Arc<RouteConfig> {
    let key = Arc::new(VirtualKey {
        name: format!("forward:{}", provider.name),
        // Not a credential: the provider's name.
        label: format!("forward:{}", provider.name),
        config: None,
        models: None,
        disabled: false,
        limits: KeyLimits::default(),
        provider: provider.clone(),
    });
    let breaker_key = format!("forward/{}", provider.name);
    let root = Target::leaf(breaker_key, provider.name.clone(), key, settings);
    Arc::new(RouteConfig::new("forward".into(), root))
}
