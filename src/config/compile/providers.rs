//! `providers:` and top-level `timeouts:`: each provider's kind, base URL, credential and
//! headers.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::Digest;

use super::compiler::*;
use crate::config::schema::*;
use crate::config::secrets;
use crate::config::snapshot::*;

impl Compiler<'_> {
    /// `providers:`, in file order, and by name.
    pub(super) fn providers(
        &mut self,
        specs: &BTreeMap<String, ProviderSpec>,
    ) -> (Vec<Arc<Provider>>, HashMap<String, Arc<Provider>>) {
        let mut providers = Vec::new();
        let mut provider_by_name = HashMap::new();
        for (name, spec) in specs {
            if let Some(p) = self.provider(name, spec) {
                let p = Arc::new(p);
                provider_by_name.insert(name.clone(), p.clone());
                providers.push(p);
            }
        }
        (providers, provider_by_name)
    }

    pub(super) fn provider(&mut self, name: &str, spec: &ProviderSpec) -> Option<Provider> {
        let path = format!("providers.{name}");
        let kind = match spec.kind {
            ProviderKindSpec::Openai => ProviderKind::OpenAi,
            ProviderKindSpec::AzureOpenai => ProviderKind::AzureOpenAi,
            ProviderKindSpec::Anthropic => ProviderKind::Anthropic,
            ProviderKindSpec::Gemini => ProviderKind::Gemini,
            ProviderKindSpec::OpenaiCompatible => ProviderKind::OpenAiCompatible,
        };
        let base_url = match spec.base_url.as_deref().or(kind.default_base_url()) {
            Some(url) => match parse_base_url(url) {
                Ok(u) => Some(u),
                Err(e) => {
                    self.error(format!("{path}.base_url"), e);
                    None
                }
            },
            None => {
                self.error(
                    format!("{path}.base_url"),
                    format!("required for kind {}", kind.as_str()),
                );
                None
            }
        };
        let api_key = self.api_key(&path, spec, kind);
        let auth_header = spec
            .auth_header
            .clone()
            .map(|h| h.to_ascii_lowercase())
            .unwrap_or_else(|| kind.default_auth_header().to_string());
        if http::HeaderName::from_bytes(auth_header.as_bytes()).is_err() {
            self.error(format!("{path}.auth_header"), "not a valid header name");
        }
        let headers = self.provider_headers(&path, spec);
        let ca_file = spec.ca_file.as_ref().map(|f| {
            let p = secrets::resolve_path(f, self.base_dir);
            if let Err(e) = std::fs::metadata(&p) {
                self.absent(
                    format!("{path}.ca_file"),
                    format!("cannot read {}: {e}", p.display()),
                );
            }
            p
        });
        let mut deployments = HashMap::new();
        if let Some(map) = &spec.deployments {
            if kind != ProviderKind::AzureOpenAi {
                self.error(
                    format!("{path}.deployments"),
                    format!(
                        "only kind azure-openai has deployments, not {}",
                        kind.as_str()
                    ),
                );
            }
            for (model, deployment) in map {
                if deployment.trim().is_empty() {
                    self.error(format!("{path}.deployments.{model}"), "is empty");
                } else {
                    deployments.insert(model.clone(), deployment.trim().to_string());
                }
            }
        }
        let connections = self.connection_settings(&path, spec);
        Some(Provider {
            name: name.to_string(),
            kind,
            base_url: base_url?,
            api_key,
            auth_header,
            ca_file,
            api_version: spec.api_version.clone(),
            headers,
            deployments,
            caller_credential: false,
            connections,
        })
    }

    /// `http2`, `http2_max_streams`, `prewarm`.
    fn connection_settings(&mut self, path: &str, spec: &ProviderSpec) -> ConnectionSettings {
        let mut settings = ConnectionSettings {
            http2: spec.http2 != Some(Http2Spec::Off),
            ..ConnectionSettings::default()
        };
        if let Some(n) = spec.http2_max_streams {
            let n = n as usize;
            if n == 0 || n > ConnectionSettings::MAX_H2_STREAMS {
                self.error(
                    format!("{path}.http2_max_streams"),
                    format!("must be 1 to {}", ConnectionSettings::MAX_H2_STREAMS),
                );
            } else {
                settings.h2_max_streams = n;
            }
        }
        if let Some(n) = spec.prewarm {
            let n = n as usize;
            if n > ConnectionSettings::MAX_PREWARM {
                self.error(
                    format!("{path}.prewarm"),
                    format!("must be 0 to {}", ConnectionSettings::MAX_PREWARM),
                );
            } else {
                settings.prewarm = n;
            }
        }
        settings
    }

    /// `api_key` or `api_key_file` (read, hashed into the config hash and watched).
    fn api_key(&mut self, path: &str, spec: &ProviderSpec, kind: ProviderKind) -> Option<Secret> {
        match (&spec.api_key, &spec.api_key_file) {
            (Some(_), Some(_)) => {
                self.error(
                    format!("{path}.api_key_file"),
                    "set either api_key or api_key_file, not both",
                );
                None
            }
            (Some(key), None) => {
                if key.trim().is_empty() {
                    self.error(format!("{path}.api_key"), "is empty");
                }
                Some(Secret::new(key.trim().to_string()))
            }
            (None, Some(file)) => {
                let resolved = secrets::resolve_path(file, self.base_dir);
                match secrets::read_secret_file(&resolved) {
                    Ok((key, bytes)) => {
                        self.hasher.update(&bytes);
                        self.source_files.push(resolved);
                        Some(Secret::new(key))
                    }
                    Err(e) => {
                        self.absent(format!("{path}.api_key_file"), e);
                        None
                    }
                }
            }
            (None, None) => {
                if kind != ProviderKind::OpenAiCompatible {
                    self.error(
                        format!("{path}.api_key"),
                        format!("kind {} needs api_key or api_key_file", kind.as_str()),
                    );
                }
                None
            }
        }
    }

    /// A provider's static `headers:`, names lower-cased; each invalid one an error.
    fn provider_headers(&mut self, path: &str, spec: &ProviderSpec) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        for (k, v) in spec.headers.iter().flatten() {
            let ok = http::HeaderName::from_bytes(k.as_bytes()).is_ok()
                && http::HeaderValue::from_str(v).is_ok();
            if ok {
                headers.push((k.to_ascii_lowercase(), v.clone()));
            } else {
                self.error(
                    format!("{path}.headers.{k}"),
                    "not a valid header name or value",
                );
            }
        }
        headers
    }
}

/// The root of every target's deadlines: top-level `timeouts:` over the built-in defaults
/// (`crate::upstream::client::DEFAULT_*`), so no upstream attempt is ever unbounded. The
/// effective values replace `timeouts` in the `/config` view (milliseconds).
pub(super) fn default_timeouts(
    spec: Option<&crate::config::schema::DefaultTimeoutsSpec>,
    view: &mut Value,
) -> PhaseTimeouts {
    use crate::upstream::client as d;
    let spec = spec.cloned().unwrap_or_default();
    let t = PhaseTimeouts {
        connect: Some(spec.connect_ms.map_or(d::DEFAULT_CONNECT_TIMEOUT, |t| t.0)),
        headers: Some(spec.headers_ms.map_or(d::DEFAULT_HEADERS_TIMEOUT, |t| t.0)),
        ttft: spec.ttft_ms.map(|t| t.0),
        idle: Some(spec.idle_ms.map_or(d::DEFAULT_IDLE_TIMEOUT, |t| t.0)),
        total: Some(spec.total_ms.map_or(d::DEFAULT_TOTAL_TIMEOUT, |t| t.0)),
    };
    let ms = |d: Option<Duration>| d.map(|d| d.as_millis() as u64);
    if let Some(root) = view.as_object_mut() {
        root.insert(
            "timeouts".into(),
            serde_json::json!({
                "connect_ms": ms(t.connect),
                "headers_ms": ms(t.headers),
                "ttft_ms": ms(t.ttft),
                "idle_ms": ms(t.idle),
                "total_ms": ms(t.total),
            }),
        );
    }
    t
}

/// Splits a base URL once so the request path never parses one.
pub fn parse_base_url(url: &str) -> Result<BaseUrl, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("{url:?} must start with http:// or https://"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err("credentials in base_url are not allowed: use api_key".into());
    }
    if path.contains('?') || path.contains('#') {
        return Err(format!("{url:?} must not have a query or fragment"));
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']').ok_or_else(|| format!("{url:?}: unclosed ["))?;
        let host = &v6[..end];
        let port = match &v6[end + 1..] {
            "" => default_port,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("{url:?}: invalid port"))?,
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse()
                    .map_err(|_| format!("{url:?}: invalid port {p:?}"))?,
            ),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok(BaseUrl {
        tls,
        host,
        port,
        path: path.trim_end_matches('/').to_string(),
    })
}
