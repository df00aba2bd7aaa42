//! Ingress: which virtual key a request carries and which config runs it (DESIGN.md §3), read
//! from the request headers against one snapshot.

pub mod body;
pub mod path;

use std::sync::Arc;

use http::HeaderMap;

use crate::config::{RouteConfig, Snapshot, VirtualKey};
use crate::error::GatewayError;
use crate::vocab::kinds::{portkey_provider, portkey_provider_ids};

/// Headers that name a virtual key, first match wins.
const VIRTUAL_KEY_HEADERS: [&str; 2] = crate::vocab::headers::VIRTUAL_KEY;
/// Headers that name a config, first match wins.
const CONFIG_HEADERS: [&str; 2] = crate::vocab::headers::CONFIG;

/// The outcome of ingress for one request.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The config that runs: a named one, or the virtual key's own `direct` route.
    pub route: Arc<RouteConfig>,
    /// The virtual key the client presented, if any.
    pub virtual_key: Option<Arc<VirtualKey>>,
}

impl Resolved {
    /// The bounded `config` metric label: the config's name, or `direct`.
    pub fn config_label(&self) -> &str {
        &self.route.name
    }
}

/// The header names read on every request, parsed once (at compile time): a lookup by `&str`
/// parses the name first.
static VIRTUAL_KEY_NAMES: [http::HeaderName; 2] = [
    http::HeaderName::from_static(VIRTUAL_KEY_HEADERS[0]),
    http::HeaderName::from_static(VIRTUAL_KEY_HEADERS[1]),
];
static CONFIG_NAMES: [http::HeaderName; 2] = [
    http::HeaderName::from_static(CONFIG_HEADERS[0]),
    http::HeaderName::from_static(CONFIG_HEADERS[1]),
];
static PROVIDER_NAME: http::HeaderName = http::HeaderName::from_static(PROVIDER_HEADER);

fn header(headers: &HeaderMap, name: impl http::header::AsHeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

pub use crate::vocab::headers::PORTKEY_PLACEHOLDER;

/// A credential the client sent that may be a virtual key's name or (passthrough) the
/// provider key to send: the header that carried it and its value (the token of
/// `Authorization: Bearer <token>`, or `x-api-key`). The portkey-ai SDK's placeholder is none.
fn credential(headers: &HeaderMap) -> Option<(&'static str, &str)> {
    let found = caller_credential(headers)?;
    (found.1 != PORTKEY_PLACEHOLDER).then_some(found)
}

pub use crate::vocab::headers::caller_credential;

fn usable(key: &Arc<VirtualKey>) -> Result<Arc<VirtualKey>, GatewayError> {
    if key.disabled {
        return Err(GatewayError::Unauthorized(format!(
            "virtual key \"{}\" is disabled",
            key.name
        )));
    }
    Ok(key.clone())
}

/// Where a request comes from, as far as resolution cares.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    /// Forward-proxy mode: the intercepted host's provider, run when the request selects
    /// nothing and there is no `default_config` (instead of a 401).
    pub inferred: Option<&'a Arc<RouteConfig>>,
    /// The request came through forward-proxy interception, where the app's own provider key
    /// is expected (and never sent upstream): a credential that is not a virtual key is
    /// ignored rather than refused.
    pub intercepted: bool,
    /// The request is for the Anthropic Messages API (`/v1/messages…`): passthrough without a
    /// named provider goes to `anthropic`, else to `openai`.
    pub anthropic_api: bool,
}

/// Finds the virtual key and the config for a request.
pub fn resolve(snapshot: &Snapshot, headers: &HeaderMap) -> Result<Resolved, GatewayError> {
    resolve_with(snapshot, headers, Origin::default())
}

/// Resolution, in this order (docs/configuration.md): a virtual key (`x-portkey-virtual-key`,
/// or the credential when it names one) → a named or inline config (`x-portkey-config`), else
/// the key's own, else `default_config`, else the key alone → `x-portkey-provider`
/// (passthrough) → `default_config`, only for a request without a credential (or the
/// portkey-ai SDK's placeholder) → the intercepted host's provider (forward-proxy mode) →
/// passthrough's default provider with the caller's credential, when passthrough is on → a
/// 401 ([`GatewayError::NoRoute`]) saying what was presented and what is expected.
pub fn resolve_with(
    snapshot: &Snapshot,
    headers: &HeaderMap,
    origin: Origin<'_>,
) -> Result<Resolved, GatewayError> {
    let config_header = CONFIG_NAMES.iter().find_map(|n| header(headers, n));
    let provider_header = header(headers, &PROVIDER_NAME);
    let presented = credential(headers);
    let virtual_key = presented_key(snapshot, headers, presented, provider_header)?;
    let passthrough = &snapshot.passthrough;
    // Never guessed: a credential that is not a virtual key is refused, not served by
    // `default_config` (a mistyped key would escape its own limits). It is the caller's own
    // provider key only where that is what the request says: next to a config header (the
    // config selects the route, DESIGN §3), `x-portkey-provider`, forward-proxy mode, or
    // with passthrough on.
    if let (None, Some((carrier, _))) = (&virtual_key, presented) {
        let explained = config_header.is_some() || origin.intercepted;
        if !explained && !passthrough.enabled {
            return Err(unknown_credential(carrier, provider_header.is_some()));
        }
    }
    let route = if let Some(config) = config_header {
        config_route(snapshot, config)?
    } else if let Some(key) = &virtual_key {
        key_route(snapshot, key)?
    } else if let Some(id) = provider_header {
        provider_route(snapshot, headers, id, presented)?
    } else if let Some(route) = fallback_route(snapshot, presented, origin) {
        route.clone()
    } else {
        return Err(no_route(passthrough.enabled, presented.is_some()));
    };
    Ok(Resolved { route, virtual_key })
}

/// `x-portkey-provider`: passthrough to that provider (or `@<virtual key>`, Portkey's slug).
pub const PROVIDER_HEADER: &str = "x-portkey-provider";
/// `x-portkey-custom-host`: the passthrough provider's base URL, one of `passthrough.custom_hosts`.
pub const CUSTOM_HOST_HEADER: &str = "x-portkey-custom-host";

/// The virtual key the request presents: a virtual-key header (which must name one), an
/// `x-portkey-provider: @<name>` slug, or the credential when it is a key's name.
fn presented_key(
    snapshot: &Snapshot,
    headers: &HeaderMap,
    presented: Option<(&'static str, &str)>,
    provider_header: Option<&str>,
) -> Result<Option<Arc<VirtualKey>>, GatewayError> {
    let key_header = VIRTUAL_KEY_HEADERS
        .iter()
        .zip(&VIRTUAL_KEY_NAMES)
        .find_map(|(carrier, n)| header(headers, n).map(|v| (*carrier, v)))
        .or_else(|| {
            provider_header
                .and_then(|p| p.strip_prefix('@'))
                .map(|slug| (PROVIDER_HEADER, slug))
        });
    if let Some((carrier, name)) = key_header {
        return snapshot
            .virtual_keys
            .get(name)
            .ok_or_else(|| unknown_credential(carrier, false))
            .and_then(usable)
            .map(Some);
    }
    match presented.and_then(|(_, value)| snapshot.virtual_keys.get(value)) {
        Some(key) => usable(key).map(Some),
        None => Ok(None),
    }
}

/// A named config, or an inline JSON one.
fn config_route(snapshot: &Snapshot, config: &str) -> Result<Arc<RouteConfig>, GatewayError> {
    if config.starts_with('{') {
        return crate::config::compile::inline_route(snapshot, config)
            .map_err(|e| GatewayError::InvalidRequest(e.to_string()));
    }
    snapshot.configs.get(config).cloned().ok_or_else(|| {
        GatewayError::InvalidRequest(format!("unknown config \"{}\"", truncate(config)))
    })
}

/// The route Portkey's model-catalog spelling `"model": "@<slug>/<model>"` names: the virtual
/// key called `<slug>` (its config, else `default_config`, else the key alone), or with
/// passthrough on, provider id `<slug>` with the caller's own key. `None`: the slug names
/// neither.
pub fn slug_route(
    snapshot: &Snapshot,
    headers: &HeaderMap,
    slug: &str,
) -> Result<Option<Resolved>, GatewayError> {
    if let Some(key) = snapshot.virtual_keys.get(slug) {
        let key = usable(key)?;
        let route = key_route(snapshot, &key)?;
        return Ok(Some(Resolved {
            route,
            virtual_key: Some(key),
        }));
    }
    if snapshot.passthrough.enabled && portkey_provider(slug).is_some() {
        let route = provider_route(snapshot, headers, slug, credential(headers))?;
        return Ok(Some(Resolved {
            route,
            virtual_key: None,
        }));
    }
    Ok(None)
}

/// The key's own config, else `default_config`, else the key alone.
fn key_route(snapshot: &Snapshot, key: &VirtualKey) -> Result<Arc<RouteConfig>, GatewayError> {
    match key.config.as_ref().or(snapshot.default_config.as_ref()) {
        Some(name) => config_route(snapshot, name),
        None => snapshot
            .direct_routes
            .get(&key.name)
            .cloned()
            .ok_or_else(|| GatewayError::Internal("virtual key without a route".into())),
    }
}

/// `x-portkey-provider: <id>` (with `x-portkey-custom-host` when set): the caller's own key to
/// that provider.
fn provider_route(
    snapshot: &Snapshot,
    headers: &HeaderMap,
    id: &str,
    presented: Option<(&'static str, &str)>,
) -> Result<Arc<RouteConfig>, GatewayError> {
    let passthrough = &snapshot.passthrough;
    if !passthrough.enabled {
        return Err(GatewayError::Unauthorized(format!(
            "`{PROVIDER_HEADER}` asks for provider passthrough, which is off here (passthrough.enabled: false): send a virtual key"
        )));
    }
    if portkey_provider(id).is_none() {
        return Err(GatewayError::InvalidRequest(format!(
            "`{PROVIDER_HEADER}` names an unknown provider \"{}\": one of {}",
            truncate(id),
            portkey_provider_ids()
        )));
    }
    if presented.is_none() {
        return Err(GatewayError::Unauthorized(format!(
            "`{PROVIDER_HEADER}: {id}` sends your own provider key, and none was presented: send it as `Authorization: Bearer <key>` or `x-api-key`"
        )));
    }
    match header(headers, CUSTOM_HOST_HEADER) {
        Some(host) => crate::config::compile::custom_host_route(snapshot, id, host)
            .map_err(|e| GatewayError::InvalidRequest(format!("`{CUSTOM_HOST_HEADER}`: {e}"))),
        None => passthrough.route(id).cloned().ok_or_else(|| {
            GatewayError::InvalidRequest(format!(
                "provider \"{id}\" has no standard base URL: send `{CUSTOM_HOST_HEADER}` (one of passthrough.custom_hosts)"
            ))
        }),
    }
}

/// What runs a request that selected nothing: `default_config` (no credential presented),
/// the intercepted host's provider, or passthrough's default provider (a credential presented).
fn fallback_route<'s>(
    snapshot: &'s Snapshot,
    presented: Option<(&'static str, &str)>,
    origin: Origin<'s>,
) -> Option<&'s Arc<RouteConfig>> {
    let anonymous = presented.is_none() || origin.intercepted;
    if anonymous {
        if let Some(route) = snapshot
            .default_config
            .as_deref()
            .and_then(|d| snapshot.configs.get(d))
        {
            return Some(route);
        }
    }
    if let Some(route) = origin.inferred {
        return Some(route);
    }
    let passthrough = &snapshot.passthrough;
    if presented.is_none() || origin.intercepted || !passthrough.enabled {
        return None;
    }
    let id = match &passthrough.default_provider {
        Some(id) => id.as_str(),
        None if origin.anthropic_api => "anthropic",
        None => "openai",
    };
    passthrough.route(id)
}

/// The 401 for a request that selected nothing: no credential, or (forward-proxy mode) only the
/// app's own provider key.
fn no_route(passthrough: bool, presented: bool) -> GatewayError {
    let own = if passthrough {
        ", or your own provider key (provider passthrough is on)"
    } else {
        ""
    };
    let what = if presented {
        "no virtual key or config selected"
    } else {
        "no credential"
    };
    GatewayError::NoRoute(format!(
        "{what}: send a virtual key as `Authorization: Bearer <virtual key>`, `x-api-key` or `x-portkey-virtual-key`, or name a config in `x-portkey-config`{own}"
    ))
}

/// The 401 for a credential that names no virtual key: which header carried it, never its value
/// (it may be a real provider key sent by mistake).
fn unknown_credential(carrier: &str, asked_passthrough: bool) -> GatewayError {
    let hint = if asked_passthrough {
        " (provider passthrough is off here: passthrough.enabled)"
    } else {
        ""
    };
    GatewayError::Unauthorized(format!(
        "the credential in the `{carrier}` header is not a configured virtual key: no such key exists (the value is not shown){hint}"
    ))
}

/// Bounds what we echo back from a client header.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(default_config: bool) -> Snapshot {
        let text = format!(
            r#"
{default}
providers:
  p: {{ kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: sk-real }}
virtual_keys:
  vk-app: {{ provider: p }}
configs:
  chat: {{ virtual_key: vk-app }}
"#,
            default = if default_config {
                "default_config: chat"
            } else {
                ""
            }
        );
        crate::config::load_str(&text, None).unwrap_or_else(|e| panic!("{e}"))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn intercepted(inferred: Option<&Arc<RouteConfig>>) -> Origin<'_> {
        Origin {
            inferred,
            intercepted: true,
            anthropic_api: false,
        }
    }

    fn refusal(s: &Snapshot, pairs: &[(&'static str, &str)]) -> String {
        match resolve(s, &headers(pairs)) {
            Err(GatewayError::Unauthorized(m) | GatewayError::NoRoute(m)) => m,
            other => panic!("{pairs:?}: expected a 401, got {other:?}"),
        }
    }

    #[test]
    fn a_credential_naming_no_virtual_key_is_refused_with_or_without_default_config() {
        for with_default in [true, false] {
            let s = snapshot(with_default);
            for (pairs, carrier) in [
                (&[("authorization", "Bearer vk-ap")][..], "`Authorization`"),
                (
                    &[("authorization", "bearer sk-proj-123")][..],
                    "`Authorization`",
                ),
                (&[("x-api-key", "vk-nope")][..], "`x-api-key`"),
                (
                    &[("x-portkey-virtual-key", "vk-ap")][..],
                    "`x-portkey-virtual-key`",
                ),
            ] {
                let m = refusal(&s, pairs);
                assert!(m.contains(carrier) && m.contains("no such key"), "{m}");
                assert!(!m.contains("vk-ap") && !m.contains("sk-proj") && !m.contains("vk-nope"));
            }
        }
        // No credential at all and no default_config: the "send one" hint.
        let m = refusal(&snapshot(false), &[]);
        assert!(m.starts_with("no credential: send a virtual key"), "{m}");
    }

    #[test]
    fn default_config_serves_only_requests_without_a_credential() {
        let s = snapshot(true);
        let r = resolve(&s, &HeaderMap::new()).unwrap();
        assert_eq!(r.route.name, "chat");
        assert!(r.virtual_key.is_none());
        // The portkey-ai SDK's placeholder counts as no credential.
        let r = resolve(&s, &headers(&[("authorization", "Bearer OPENAI_API_KEY")])).unwrap();
        assert_eq!(r.route.name, "chat");
        // A real virtual key still selects itself.
        let r = resolve(&s, &headers(&[("authorization", "Bearer vk-app")])).unwrap();
        assert_eq!(r.virtual_key.unwrap().name, "vk-app");
    }

    #[test]
    fn a_config_header_or_forward_mode_ignores_a_non_virtual_key_credential() {
        let s = snapshot(false);
        for auth in [
            "Bearer OPENAI_API_KEY",
            "Bearer sk-anything",
            "Bearer vk-ap",
        ] {
            let h = headers(&[("authorization", auth), ("x-portkey-config", "chat")]);
            let r = resolve(&s, &h).unwrap();
            assert_eq!(r.route.name, "chat");
            assert!(r.virtual_key.is_none());
        }
        let inferred = s.configs["chat"].clone();
        let h = headers(&[("authorization", "Bearer sk-app-own-key")]);
        let r = resolve_with(&s, &h, intercepted(Some(&inferred))).unwrap();
        assert_eq!(r.route.name, "chat");
        // Intercepted for a host without a provider: default_config (here: none → the hint).
        let m = match resolve_with(&s, &h, intercepted(None)) {
            Err(GatewayError::NoRoute(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(m.starts_with("no virtual key"), "{m}");
        assert!(resolve_with(&snapshot(true), &h, intercepted(None)).is_ok());
    }

    fn load(text: &str) -> Snapshot {
        crate::config::load_str(text, None).unwrap_or_else(|e| panic!("{e}"))
    }

    fn provider_of(r: &Resolved) -> &crate::config::Provider {
        match &r.route.root.kind {
            crate::config::TargetKind::Leaf { virtual_key } => &virtual_key.provider,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn without_virtual_keys_passthrough_is_on_and_picks_the_provider_by_api() {
        let s = load("listen: 127.0.0.1:8080\n");
        assert!(s.passthrough.enabled);
        let h = headers(&[("authorization", "Bearer sk-own")]);
        let r = resolve(&s, &h).unwrap();
        assert_eq!(r.config_label(), "passthrough");
        assert_eq!(provider_of(&r).name, "openai");
        assert!(provider_of(&r).caller_credential && provider_of(&r).api_key.is_none());
        let anthropic = Origin {
            anthropic_api: true,
            ..Origin::default()
        };
        let h = headers(&[("x-api-key", "sk-ant-own")]);
        let r = resolve_with(&s, &h, anthropic).unwrap();
        assert_eq!(provider_of(&r).name, "anthropic");
        let h = headers(&[
            ("authorization", "Bearer g"),
            ("x-portkey-provider", "google"),
        ]);
        assert_eq!(provider_of(&resolve(&s, &h).unwrap()).name, "google");
        // No credential, or only the portkey-ai placeholder: the 401 says what to send.
        for pairs in [&[][..], &[("authorization", "Bearer OPENAI_API_KEY")][..]] {
            let m = refusal(&s, pairs);
            assert!(
                m.starts_with("no credential") && m.contains("passthrough is on"),
                "{m}"
            );
        }
        let m = refusal(&s, &[("x-portkey-provider", "openai")]);
        assert!(m.contains("none was presented"), "{m}");
    }

    #[test]
    fn with_virtual_keys_passthrough_is_opt_in_so_a_mistyped_key_is_a_401() {
        let s = snapshot(false);
        assert!(!s.passthrough.enabled);
        let m = refusal(
            &s,
            &[
                ("authorization", "Bearer vk-ap"),
                ("x-portkey-provider", "openai"),
            ],
        );
        assert!(
            m.contains("passthrough is off") && !m.contains("vk-ap"),
            "{m}"
        );
        let m = refusal(&s, &[("x-portkey-provider", "openai")]);
        assert!(m.contains("passthrough.enabled: false"), "{m}");
        // `@<virtual key>` is Portkey's slug for a key.
        let r = resolve(&s, &headers(&[("x-portkey-provider", "@vk-app")])).unwrap();
        assert_eq!(r.virtual_key.unwrap().name, "vk-app");
        let m = refusal(&s, &[("x-portkey-provider", "@vk-nope")]);
        assert!(
            m.contains("`x-portkey-provider`") && !m.contains("vk-nope"),
            "{m}"
        );
    }

    #[test]
    fn unknown_provider_ids_and_hosts_outside_custom_hosts_are_400s() {
        let s = load("passthrough: { enabled: true, custom_hosts: [\"llm.internal:8443\"] }\n");
        let bad = |pairs: &[(&'static str, &str)]| match resolve(&s, &headers(pairs)) {
            Err(GatewayError::InvalidRequest(m)) => m,
            other => panic!("{pairs:?}: {other:?}"),
        };
        let m = bad(&[
            ("authorization", "Bearer k"),
            ("x-portkey-provider", "nope"),
        ]);
        assert!(
            m.contains("unknown provider") && m.contains("openai"),
            "{m}"
        );
        // Other spellings of a host that is not the listed one: another port, a suffix, user
        // info in front of or after it, a scheme-less value.
        for host in [
            "http://127.0.0.1:9/v1",
            "https://llm.internal/v1",
            "llm.internal:8443",
            "https://llm.internal.evil.example:8443/v1",
            "https://evil@llm.internal:8443/v1",
            "https://llm.internal:8443@evil.example/v1",
            "https://llm.internal:8443%2F@evil.example/v1",
        ] {
            let m = bad(&[
                ("authorization", "Bearer k"),
                ("x-portkey-provider", "openai"),
                ("x-portkey-custom-host", host),
            ]);
            assert!(m.contains("x-portkey-custom-host"), "{host}: {m}");
        }
        let h = headers(&[
            ("authorization", "Bearer k"),
            ("x-portkey-provider", "openai-compatible"),
            ("x-portkey-custom-host", "https://llm.internal:8443/v1"),
        ]);
        let r = resolve(&s, &h).unwrap();
        assert_eq!(provider_of(&r).base_url.host, "llm.internal");
        assert_eq!(r.config_label(), "inline");
        // Host names compare case-insensitively; provider ids are Portkey's, lowercase.
        let h = headers(&[
            ("authorization", "Bearer k"),
            ("x-portkey-provider", "openai-compatible"),
            ("x-portkey-custom-host", "https://LLM.Internal:8443/v1"),
        ]);
        assert!(resolve(&s, &h).is_ok());
        let m = bad(&[
            ("authorization", "Bearer k"),
            ("x-portkey-provider", "OpenAI"),
        ]);
        assert!(m.contains("unknown provider"), "{m}");
        // openai-compatible has no standard URL.
        let m = bad(&[
            ("authorization", "Bearer k"),
            ("x-portkey-provider", "openai-compatible"),
        ]);
        assert!(m.contains("no standard base URL"), "{m}");
    }

    #[test]
    fn inline_configs_compile_once_name_their_json_path_and_can_be_disabled() {
        let s = snapshot(false);
        let inline = r#"{"strategy":{"mode":"fallback"},"targets":[{"virtual_key":"vk-app"},{"virtual_key":"vk-app","override_params":{"model":"m2"}}]}"#;
        let h = headers(&[("x-portkey-config", inline)]);
        let a = resolve(&s, &h).unwrap();
        let b = resolve(&s, &h).unwrap();
        assert!(Arc::ptr_eq(&a.route, &b.route), "compiled once");
        assert_eq!(a.config_label(), "inline");
        assert!(a.route.root.breaker_key.starts_with("inline:"));
        let bad = |text: &str| match resolve(&s, &headers(&[("x-portkey-config", text)])) {
            Err(GatewayError::InvalidRequest(m)) => m,
            other => panic!("{text}: {other:?}"),
        };
        let m = bad(r#"{"targets":[{"virtual_key":"vk-app"},{"virtual_key":"vk-secret-typo"}]}"#);
        assert!(
            m.contains("$.targets[1].virtual_key") && !m.contains("vk-secret-typo"),
            "{m}"
        );
        let m = bad(r#"{"retry":{"attempts":"x"},"virtual_key":"vk-app"}"#);
        assert!(m.contains("$.retry.attempts"), "{m}");
        let m = bad("{not json");
        assert!(m.contains("not valid JSON"), "{m}");
        let m = bad(r#"{"provider":"openai","api_key":"sk-x"}"#);
        assert!(m.contains("$.provider") && m.contains("passthrough"), "{m}");
        let m = bad(
            r#"{"virtual_key":"vk-app","cache":{"mode":"semantic","embedder":{"local":"/etc"}}}"#,
        );
        assert!(m.contains("$.cache.embedder.local"), "{m}");
        let deep = format!("{}{}", "{\"targets\":[".repeat(2000), "]}".repeat(2000));
        assert!(bad(&deep).contains("invalid inline config") || bad(&deep).contains("bytes"));
        let off = load(
            "allow_inline_configs: false\nproviders: { p: { kind: openai, api_key: k } }\nvirtual_keys: { v: { provider: p } }\n",
        );
        let e = resolve(
            &off,
            &headers(&[("x-portkey-config", "{\"virtual_key\":\"v\"}")]),
        );
        assert!(
            matches!(e, Err(GatewayError::InvalidRequest(m)) if m.contains("allow_inline_configs: false"))
        );
    }
}
