//! Ingress: which virtual key a request carries and which config runs it (DESIGN.md §3), read
//! from the request headers against one snapshot.

pub mod body;
pub mod path;

use std::sync::Arc;

use http::HeaderMap;

use crate::config::{RouteConfig, Snapshot, VirtualKey};
use crate::error::GatewayError;

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

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn first_header<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| header(headers, n))
}

/// The placeholder the `portkey-ai` Python SDK sends as `Authorization: Bearer OPENAI_API_KEY`
/// (its vendored OpenAI client needs an API key; the real ones travel in `x-portkey-*` headers).
/// It is a public constant, never a mistyped virtual key, so it counts as no credential.
pub const PORTKEY_PLACEHOLDER: &str = "OPENAI_API_KEY";

/// A credential the client sent that may be a virtual key's name: the header that carried it
/// and its value (the token of `Authorization: Bearer <token>`, or `x-api-key`).
fn credential(headers: &HeaderMap) -> Option<(&'static str, &str)> {
    if let Some(auth) = header(headers, "authorization") {
        let token = match auth.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => &auth[7..],
            _ if auth.eq_ignore_ascii_case("bearer") => "",
            _ => auth,
        };
        let token = token.trim();
        return (!token.is_empty()).then_some(("Authorization", token));
    }
    header(headers, "x-api-key").map(|v| ("x-api-key", v))
}

fn usable(key: &Arc<VirtualKey>) -> Result<Arc<VirtualKey>, GatewayError> {
    if key.disabled {
        return Err(GatewayError::Unauthorized(format!(
            "virtual key \"{}\" is disabled",
            key.name
        )));
    }
    Ok(key.clone())
}

/// Finds the virtual key and the config for a request.
pub fn resolve(snapshot: &Snapshot, headers: &HeaderMap) -> Result<Resolved, GatewayError> {
    resolve_with(snapshot, headers, None, false)
}

/// Like [`resolve`], with the route to run when the request selects nothing and there is no
/// `default_config` (forward-proxy mode: the intercepted host's provider) instead of a 401.
/// `intercepted`: the request came through forward-proxy interception, where the app's own
/// provider key is expected (and never sent upstream), so a credential that is not a virtual
/// key is ignored rather than refused.
pub fn resolve_with(
    snapshot: &Snapshot,
    headers: &HeaderMap,
    inferred: Option<&Arc<RouteConfig>>,
    intercepted: bool,
) -> Result<Resolved, GatewayError> {
    let named_config = first_header(headers, &CONFIG_HEADERS);
    let key_header = VIRTUAL_KEY_HEADERS
        .iter()
        .find_map(|n| header(headers, n).map(|v| (*n, v)));
    let virtual_key = match key_header {
        Some((carrier, name)) => Some(
            snapshot
                .virtual_keys
                .get(name)
                .ok_or_else(|| unknown_credential(carrier))
                .and_then(usable)?,
        ),
        None => match credential(headers) {
            Some((carrier, value)) => match snapshot.virtual_keys.get(value) {
                Some(key) => Some(usable(key)?),
                // Never guessed: a credential that is not a virtual key is refused, not served by
                // `default_config` (a mistyped key would escape its own limits). It is ignored
                // only next to a config header (DESIGN §3: that header selects the route, whose
                // keys' limits govern it), in forward-proxy mode (the app's own provider key,
                // never sent upstream), and when it is the portkey-ai SDK's placeholder.
                None if named_config.is_none() && !intercepted && value != PORTKEY_PLACEHOLDER => {
                    return Err(unknown_credential(carrier));
                }
                None => None,
            },
            None => None,
        },
    };

    let config_name = match named_config {
        Some(inline) if inline.starts_with('{') => {
            return Err(GatewayError::InvalidRequest(
                if snapshot.allow_inline_configs {
                    "inline JSON configs are not supported yet: name a config from the config file"
                        .into()
                } else {
                    "inline JSON configs are disabled (allow_inline_configs: false): name a config from the config file".into()
                },
            ));
        }
        Some(name) => Some(name),
        None => virtual_key
            .as_ref()
            .and_then(|k| k.config.as_deref())
            .or(snapshot.default_config.as_deref()),
    };

    let route = match (config_name, &virtual_key) {
        (Some(name), _) => snapshot.configs.get(name).cloned().ok_or_else(|| {
            GatewayError::InvalidRequest(format!("unknown config \"{}\"", truncate(name)))
        })?,
        (None, Some(key)) => snapshot
            .direct_routes
            .get(&key.name)
            .cloned()
            .ok_or_else(|| GatewayError::Internal("virtual key without a route".into()))?,
        (None, None) => match inferred {
            Some(route) => route.clone(),
            None => return Err(GatewayError::Unauthorized(
                "no virtual key: send one as `Authorization: Bearer <virtual key>`, `x-api-key`, or `x-switchyard-virtual-key`".into(),
            ))
        }
    };
    Ok(Resolved { route, virtual_key })
}

/// The 401 for a credential that names no virtual key: which header carried it, never its value
/// (it may be a real provider key sent by mistake).
fn unknown_credential(carrier: &str) -> GatewayError {
    GatewayError::Unauthorized(format!(
        "the credential in the `{carrier}` header is not a configured virtual key: no such key exists (the value is not shown)"
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

    fn refusal(s: &Snapshot, pairs: &[(&'static str, &str)]) -> String {
        match resolve(s, &headers(pairs)) {
            Err(GatewayError::Unauthorized(m)) => m,
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
        assert!(m.starts_with("no virtual key"), "{m}");
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
        let r = resolve_with(&s, &h, Some(&inferred), true).unwrap();
        assert_eq!(r.route.name, "chat");
        // Intercepted for a host without a provider: default_config (here: none → the hint).
        let m = match resolve_with(&s, &h, None, true) {
            Err(GatewayError::Unauthorized(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(m.starts_with("no virtual key"), "{m}");
        assert!(resolve_with(&snapshot(true), &h, None, true).is_ok());
    }
}
